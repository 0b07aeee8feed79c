"""`setlist serve`: the HTTP API; `setlist recommend-all`: top-k for every user to Parquet."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from setlist.cli.common import app, console, fmt, settings_with
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

    uvicorn.run(
        create_app(settings, bundle),
        host=settings.host,
        port=settings.port,
        loop="auto",
        http="auto",
        access_log=False,
    )


@app.command("recommend-all")
def recommend_all(
    out: Annotated[Path, typer.Option(help="Parquet file to write.")] = Path("top_picks.parquet"),
    k: Annotated[int, typer.Option(min=1, max=10_000, help="Items per user.")] = 100,
    version: Annotated[str, typer.Option(help="Registry version or alias to use.")] = "champion",
    bundle: Annotated[
        Path | None, typer.Option(help="Use this bundle folder instead of the registry.")
    ] = None,
    backend: Annotated[str, typer.Option(help="local (threads) or ray (Ray Data).")] = "local",
    cpus: Annotated[int, typer.Option(min=1, help="Threads or Ray CPUs.")] = 2,
) -> None:
    """Top-k unheard items for every user ("top picks for today") into one Parquet file.

    Columns: user_id, rank, item_id, score. Examples:
    setlist recommend-all --k 100 --out picks.parquet;
    setlist recommend-all --backend ray --bundle ./bundle --out picks.parquet
    """
    if backend not in ("local", "ray"):
        raise typer.BadParameter(f"--backend must be local or ray, got {backend!r}")
    from setlist.serve.topk import recommend_all_local, recommend_all_ray

    settings = settings_with()
    with tempfile.TemporaryDirectory(prefix="setlist-topk-") as tmp:
        folder = bundle or _download(settings, version, Path(tmp))
        if backend == "ray":
            result = recommend_all_ray(folder, k, out, cpus)
        else:
            from setlist.models.bundle import ModelBundle

            result = recommend_all_local(ModelBundle.load(folder), k, out, cpus)
    table = Table(title="recommend-all")
    for name in ("users", "k", "seconds", "users/s", "file"):
        table.add_column(name)
    rate = result.users / result.seconds if result.seconds else 0.0
    table.add_row(
        fmt(result.users), fmt(result.k), fmt(result.seconds), fmt(rate), str(result.path)
    )
    console.print(table)


def _download(settings: Settings, version: str, dest: Path) -> Path:
    from setlist.registry import Registry, RegistryConfig

    return Registry(RegistryConfig.from_settings(settings)).download(version, dest)
