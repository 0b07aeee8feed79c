"""`setlist data ...`: fetch and validate datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from setlist.cli.common import (
    BadRowsOpt,
    check_bad_rows,
    console,
    data_app,
    fmt,
    settings_with,
    sources,
    stages,
)


@data_app.command("fetch")
def data_fetch(name: Annotated[str, typer.Argument(help="Dataset name.")]) -> None:
    """Fetch a dataset (mirror, cache or download) and verify its checksums.

    Example: setlist data fetch hetrec-lastfm-2k
    """
    from setlist.data.sources import fetch

    settings = settings_with()
    with stages(1) as say:
        folder = fetch(name, sources(settings))
        say(f"fetched {name}")
    table = Table("file", "bytes", title=f"{name} in {folder}")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        table.add_row(str(path.relative_to(folder)), f"{path.stat().st_size:,}")
    console.print(table)


@data_app.command("validate")
def data_validate(
    source: Annotated[str, typer.Argument(help="Dataset name or interactions file.")],
    on_bad_rows: BadRowsOpt = "fail",
    quarantine_dir: Annotated[
        Path | None, typer.Option(help="Where quarantined rows go (default: home/quarantine).")
    ] = None,
) -> None:
    """Validate a source row by row and print the report.

    Examples: setlist data validate hetrec-lastfm-2k;
    setlist data validate plays.csv --on-bad-rows quarantine
    """
    from setlist.pipeline import ingest

    settings = settings_with()
    qdir = quarantine_dir or settings.home / "quarantine"
    with stages(1) as say:
        dataset, report = ingest(
            source,
            sources(settings),
            on_bad_rows=check_bad_rows(on_bad_rows),
            quarantine_dir=qdir,
        )
        say("validated")
    from setlist.data.validate import quality_figures

    table = Table("figure", "value", title=f"validation of {source}")
    for key, value in {**report.to_dict(), **quality_figures(dataset.interactions)}.items():
        if key != "problems":
            table.add_row(key, fmt(value))
    console.print(table)
    for problem in report.problems[:20]:
        console.print(f"[yellow]bad row[/yellow] {problem}")
