"""``python -m setlist`` is the ``setlist`` command."""

from setlist.cli import main

main()
