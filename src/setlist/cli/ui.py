"""`setlist ui`: the listener's app and the data dashboard (Streamlit), beside the API."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from setlist.cli.common import app, console, settings_with

APP_SCRIPT = Path(__file__).resolve().parent.parent / "ui" / "streamlit_app.py"


def streamlit_command(script: Path, host: str, port: int) -> list[str]:
    """The `streamlit run` command line: headless (no browser opened), no usage statistics."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]


@app.command()
def ui(
    api_url: Annotated[
        str | None, typer.Option(help="The setlist API to talk to (default: ui_api_url).")
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address of the app.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the app.")] = 8501,
) -> None:
    """Start the listener's app and the data dashboard (Streamlit); it talks only to the API.

    Example: setlist serve & setlist ui, then open http://127.0.0.1:8501
    """
    settings = settings_with(ui_api_url=api_url)
    env = {**os.environ, "SETLIST_UI_API_URL": settings.ui_api_url}
    console.print(f"setlist ui on http://{host}:{port} (API: {settings.ui_api_url})")
    # Become Streamlit (exec, not a child): a signal to this process reaches the server itself,
    # so stopping `setlist ui` (Ctrl-C, kill, a test's terminate) never leaves an orphan behind.
    command = streamlit_command(APP_SCRIPT, host, port)
    sys.stdout.flush()
    os.execve(command[0], command, env)
