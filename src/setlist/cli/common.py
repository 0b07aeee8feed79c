"""Shared pieces of the command line: the typer app, console, options and progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: implicit's solver threads itself

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: E402

from setlist.config import Settings, get_settings  # noqa: E402

app = typer.Typer(
    help="setlist: music recommendations from real listening data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Fetch and validate datasets.", no_args_is_help=True)
models_app = typer.Typer(help="Inspect registered model versions.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
# Piped output (logs, CI, tests) gets a wide table rather than rich's 80-column default, which
# would cut version tables and metric names.
console = Console(width=None if sys.stdout.isatty() else 160)

DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        "-d",
        help="Known name (hetrec-lastfm-2k, lastfm-360k, lastfm-1k), synthetic:<size>, "
        "or a CSV/TSV/Parquet file with columns user,item[,weight,timestamp].",
    ),
]
TestOpt = Annotated[
    Path | None,
    typer.Option("--test", help="A fixed test set (same columns) instead of the built-in split."),
]
BadRowsOpt = Annotated[
    str,
    typer.Option("--on-bad-rows", help="fail: stop at the first bad row; quarantine: set aside."),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Join this Ray cluster (auto, ray://HOST:10001) instead of starting a local Ray; "
        "default SETLIST_RAY_ADDRESS.",
    ),
]


def ray_address(value: str | None) -> str | None:
    """The cluster a Ray command joins: the option, else SETLIST_RAY_ADDRESS, else none."""
    return value or get_settings().ray_address


@contextmanager
def stages(total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar advanced once per pipeline stage."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("starting", total=total)

        def advance(message: str) -> None:
            bar.update(task, description=message, advance=1)

        yield advance
        bar.update(task, description="done", completed=total)


def settings_with(**overrides: Any) -> Settings:
    base = get_settings()
    update = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=update) if update else base


def sources(settings: Settings) -> Any:
    from setlist.data.sources import SourceConfig

    return SourceConfig(settings.data_mirror, settings.cache_dir, settings.download)


def check_bad_rows(value: str) -> Any:
    if value not in ("fail", "quarantine"):
        raise typer.BadParameter(f"--on-bad-rows must be fail or quarantine, got {value!r}")
    return value


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
