"""The ``setlist`` command line (typer). With serve/app.py and ui/app.py, the only places that
read Settings.

Each command group lives in its own module and registers itself on the shared app on import.
"""

from __future__ import annotations

from setlist.cli import (  # noqa: F401  (registers the commands)
    canary,
    data,
    drift,
    events,
    export,
    keys,
    loop,
    organic,
    serve,
    train,
    tune,
    ui,
)
from setlist.cli.common import app, console
from setlist.errors import SetlistError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: project errors become a one-line message and exit code 2."""
    try:
        app()
    except SetlistError as exc:
        console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise SystemExit(2) from None
