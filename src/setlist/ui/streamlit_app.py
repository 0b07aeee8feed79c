"""The script ``streamlit run`` executes (``setlist ui`` passes this file's path)."""

from setlist.ui.app import main

main()
