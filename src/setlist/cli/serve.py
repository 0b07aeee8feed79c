"""`setlist serve`: the HTTP API; `setlist recommend-all`: top-k for every user to Parquet."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.table import Table

from setlist.cli.common import RayAddressOpt, app, console, fmt, settings_with
from setlist.cli.common import ray_address as cluster
from setlist.config import Settings
from setlist.errors import ConfigError


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Worker processes; /metrics adds them up."),
    ] = None,
    bundle: Annotated[
        list[str] | None,
        typer.Option(
            metavar="[CATALOGUE=]DIR",
            help="Serve a catalogue from this bundle folder instead of its champion (repeat "
            "for several catalogues; no CATALOGUE: artists).",
        ),
    ] = None,
) -> None:
    """Serve each catalogue's `champion` model over HTTP (FastAPI + uvicorn).

    Examples: setlist serve --port 8000, then open http://127.0.0.1:8000/docs;
    setlist serve --workers 4 (four processes, one /metrics for all of them);
    setlist serve --bundle artists=./artists --bundle tracks=./tracks (two catalogues)
    """
    from setlist.serve.api.app import parse_bundles

    settings = settings_with(host=host, port=port, workers=workers)
    serve_forever(settings, parse_bundles(bundle or []))


def with_champions(settings: Settings) -> Settings:
    """``settings`` serving every catalogue setlist knows that has a champion in the registry.

    ``setlist serve`` serves what was trained: a tracks champion (``{model_name}-tracks``) is
    served beside artists without listing it in ``SETLIST_CATALOGUES``; a catalogue with no
    registered model is left out (artists stays listed: the routes without a catalogue in their
    path answer from it, 503 naming it while it has no model).
    """
    from setlist.catalogue import known_catalogues, served_catalogues, with_catalogues
    from setlist.registry import Registry, RegistryConfig

    listed = {c.name for c in served_catalogues(settings)}
    found = []
    for name in known_catalogues():
        if name in listed:
            continue
        own = settings.model_copy(update={"model_name": f"{settings.model_name}-{name}"})
        try:
            champion = Registry(RegistryConfig.from_settings(own)).champion()
        except Exception:  # an unreachable registry: serve what is listed, the loader says why
            champion = None
        if champion is not None:
            found.append(name)
    return with_catalogues(settings, found)


def serve_forever(settings: Settings, bundle: Mapping[str, Path] | None = None) -> None:
    import uvicorn

    if not bundle:
        settings = with_champions(settings)

    if settings.workers > 1:
        serve_workers(settings, bundle)
        return
    from setlist.serve.api.app import create_app

    uvicorn.run(
        create_app(settings, bundle),
        host=settings.host,
        port=settings.port,
        loop="auto",
        http="auto",
        access_log=False,
    )


def serve_workers(settings: Settings, bundle: Mapping[str, Path] | None = None) -> None:
    """``settings.workers`` uvicorn workers, each building its app from the environment.

    The workers are fresh processes, each on its own ``SO_REUSEPORT`` socket (see
    :mod:`setlist.serve.runtime.workers`): they get this command's settings as environment
    variables, and a metrics folder (``PROMETHEUS_MULTIPROC_DIR``) set before they import
    prometheus_client, so that ``/metrics`` on any worker adds up all of them.
    """
    from setlist.serve.api.app import WORKER_BUNDLE_ENV
    from setlist.serve.runtime.workers import WorkerSpec, run_workers

    if settings.online_updates and settings.events_bus_url.startswith("memory://"):
        raise ConfigError(
            f"--workers {settings.workers} with online updates needs a bus shared by the "
            "workers (SETLIST_EVENTS_BUS_URL=redis://... or kafka://...): the in-process bus "
            "cannot carry one worker's events to the others; or set SETLIST_ONLINE_UPDATES=false",
            field="workers",
        )
    with metrics_folder() as folder:
        os.environ.update(settings_environment(settings))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        if bundle:
            os.environ[WORKER_BUNDLE_ENV] = os.pathsep.join(
                f"{name}={folder.resolve()}" for name, folder in bundle.items()
            )
        spec = WorkerSpec("setlist.serve.api.app:worker_app", settings.host, settings.port)
        code = run_workers(spec, settings.workers)
    if code:
        raise typer.Exit(code)


@contextmanager
def metrics_folder() -> Iterator[Path]:
    """A fresh folder for the workers' metric files: the one named in the environment, else
    a temporary one (removed at exit). Files of an earlier run would add into this run's."""
    named = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not named:
        with tempfile.TemporaryDirectory(prefix="setlist-metrics-") as tmp:
            yield Path(tmp)
        return
    folder = Path(named)
    folder.mkdir(parents=True, exist_ok=True)
    stale = sorted(p.name for p in folder.glob("*.db"))
    if stale:
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR {folder} holds metric files of an earlier run "
            f"({', '.join(stale[:3])}); empty it or unset it",
            field="PROMETHEUS_MULTIPROC_DIR",
        )
    yield folder


def settings_environment(settings: Settings) -> dict[str, str]:
    """Every set value of ``settings`` as the environment variable that sets it."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):  # dumped as "**********": the workers need the value
            value = secret.get_secret_value()
        key = "MLFLOW_TRACKING_URI" if name == "mlflow_tracking_uri" else f"SETLIST_{name.upper()}"
        env[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return env


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
    ray_address: RayAddressOpt = None,
) -> None:
    """Top-k unheard items for every user ("top picks for today") into one Parquet file.

    Columns: user_id, rank, item_id, score. Examples:
    setlist recommend-all --k 100 --out picks.parquet;
    setlist recommend-all --backend ray --bundle ./bundle --out picks.parquet
    [--ray-address auto]
    """
    if backend not in ("local", "ray"):
        raise typer.BadParameter(f"--backend must be local or ray, got {backend!r}")
    from setlist.offline.topk import recommend_all_local, recommend_all_ray
    from setlist.serve.runtime.settings import ranking_config

    settings = settings_with()
    ranking = ranking_config(settings)  # the service's rules: SETLIST_RANK_*
    with tempfile.TemporaryDirectory(prefix="setlist-topk-") as tmp:
        folder = bundle or _download(settings, version, Path(tmp))
        if backend == "ray":
            address = cluster(ray_address)
            result = recommend_all_ray(folder, k, out, cpus, ranking, address)
        else:
            from setlist.bundle import ModelBundle

            result = recommend_all_local(
                ModelBundle.load(folder), k, out, cpus, settings.index_min_recall, ranking
            )
    table = Table(title="recommend-all")
    for name in ("users", "k", "seconds", "users/s", "index", f"recall@{k}", "file"):
        table.add_column(name)
    rate = result.users / result.seconds if result.seconds else 0.0
    recall = "-" if result.recall is None else f"{result.recall:.3f}"
    table.add_row(
        fmt(result.users), fmt(result.k), fmt(result.seconds), fmt(rate),
        result.index or "model", recall, str(result.path),
    )  # fmt: skip
    console.print(table)


def _download(settings: Settings, version: str, dest: Path) -> Path:
    from setlist.registry import Registry, RegistryConfig

    return Registry(RegistryConfig.from_settings(settings)).download(version, dest)
