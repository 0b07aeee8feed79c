"""`setlist serve`: the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from setlist.cli.common import app, settings_with
from setlist.config import Settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Serve this bundle folder instead of the champion.")
    ] = None,
) -> None:
    """Serve the `champion` model over HTTP (FastAPI + uvicorn).

    Example: setlist serve --port 8000, then open http://127.0.0.1:8000/docs
    """
    settings = settings_with(host=host, port=port)
    serve_forever(settings, bundle)


def serve_forever(settings: Settings, bundle: Path | None = None) -> None:
    import uvicorn

    from setlist.serve.app import create_app

    uvicorn.run(create_app(settings, bundle), host=settings.host, port=settings.port)
