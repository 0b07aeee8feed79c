"""`setlist data ...`: fetch and validate datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from setlist.cli.common import (
    BadRowsOpt,
    RayAddressOpt,
    check_bad_rows,
    console,
    data_app,
    fmt,
    settings_with,
    sources,
    stages,
)
from setlist.cli.common import ray_address as cluster
from setlist.config import Settings

MAX_LISTED = 30


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
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    table = Table("file", "bytes", title=f"{name} in {folder}")
    for path in files[:MAX_LISTED]:
        table.add_row(str(path.relative_to(folder)), f"{path.stat().st_size:,}")
    if len(files) > MAX_LISTED:  # the MPD: hundreds of slices
        rest = files[MAX_LISTED:]
        table.add_row(
            f"... and {len(rest):,} more file(s)", f"{sum(p.stat().st_size for p in rest):,}"
        )
    console.print(table)
    if len(files) > MAX_LISTED:
        total = sum(p.stat().st_size for p in files)
        console.print(f"{len(files):,} files, {total:,} bytes in all")


@data_app.command("validate")
def data_validate(
    source: Annotated[
        str,
        typer.Argument(help="Dataset name, interactions file, or MPD slice folder or file."),
    ],
    on_bad_rows: BadRowsOpt = "fail",
    quarantine_dir: Annotated[
        Path | None, typer.Option(help="Where quarantined rows go (default: home/quarantine).")
    ] = None,
) -> None:
    """Validate a source row by row (playlists: playlist by playlist) and print the report.

    Examples: setlist data validate hetrec-lastfm-2k;
    setlist data validate plays.csv --on-bad-rows quarantine;
    setlist data validate spotify-mpd (or a folder of mpd.slice.*.json files)
    """
    from setlist.data.playlists import is_playlist_source

    settings = settings_with()
    qdir = quarantine_dir or settings.home / "quarantine"
    if is_playlist_source(source):
        _validate_playlists(source, settings, check_bad_rows(on_bad_rows), qdir)
        return
    from setlist.pipeline import ingest

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


def _validate_playlists(source: str, settings: Settings, on_bad_rows: Any, qdir: Path) -> None:
    """MPD slices: read (or reuse) the Parquet store, print the playlist report."""
    from setlist.data.playlists import load_playlist_source
    from setlist.data.sources import SourceConfig

    with stages(1) as say:
        dataset, report = load_playlist_source(
            source, SourceConfig.from_settings(settings), on_bad_rows=on_bad_rows,
            quarantine_dir=qdir,
        )  # fmt: skip
        say("reused the stored copy" if report.reused else "read and stored")
    table = Table("figure", "value", title=f"validation of {source} (playlists)")
    for key, value in report.figures().items():
        table.add_row(key, fmt(value))
    table.add_row("rows.playlists", fmt(dataset.playlists.height))
    table.add_row("rows.tracks", fmt(dataset.tracks.height))
    table.add_row("rows.playlist_tracks", fmt(dataset.playlist_tracks.height))
    table.add_row("fingerprint", dataset.fingerprint)
    table.add_row("store", str(dataset.store))
    console.print(table)
    for problem in report.problems[:20]:
        console.print(f"[yellow]bad playlist[/yellow] {problem}")


@data_app.command("etl")
def data_etl(
    source: Annotated[
        str,
        typer.Argument(help="lastfm-360k, spotify-mpd, a Last.fm-360K-shaped TSV, or MPD slices."),
    ],
    out: Annotated[Path, typer.Option(help="Folder of the Parquet shards.")],
    backend: Annotated[str, typer.Option(help="local (this process) or ray (Ray Data).")] = "local",
    on_bad_rows: BadRowsOpt = "fail",
    part_mb: Annotated[
        float, typer.Option(min=0.001, help="TSV part size in MiB (one shard each).")
    ] = 64.0,
    cpus: Annotated[int, typer.Option(min=1, help="CPUs of a local Ray.")] = 2,
    ray_address: RayAddressOpt = None,
) -> None:
    """Convert a source to Parquet shards, here or on Ray Data (the same shards either way).

    TSV: OUT/plays/part-NNNNN.parquet (user, item, weight, name, mbid); MPD slices:
    OUT/{playlists,tracks,playlist_tracks}/<slice>.parquet; bad rows: OUT/quarantine/.
    Examples: setlist data etl lastfm-360k --out shards/360k --backend ray;
    setlist data etl ./mpd/data --out shards/mpd --on-bad-rows quarantine
    """
    from setlist.data.etl import etl

    if backend not in ("local", "ray"):
        raise typer.BadParameter(f"--backend must be local or ray, got {backend!r}")
    settings = settings_with()
    with stages(1) as say:
        result = etl(
            source,
            out,
            backend="ray" if backend == "ray" else "local",
            on_bad_rows=check_bad_rows(on_bad_rows),
            config=sources(settings),
            part_bytes=max(1, int(part_mb * 2**20)),
            ray_address=cluster(ray_address) if backend == "ray" else None,
            cpus=cpus,
        )
        say(f"{result.parts} part(s) written")
    unit = "playlists" if result.kind == "mpd" else "rows"
    table = Table("figure", "value", title=f"etl of {source} ({result.backend})")
    table.add_row("parts", fmt(result.parts))
    table.add_row(f"{unit} read", fmt(result.rows_read))
    table.add_row(f"{unit} written", fmt(result.rows_written))
    table.add_row(f"{unit} quarantined", fmt(result.rows_quarantined))
    table.add_row("seconds", fmt(result.seconds))
    table.add_row(f"{unit}/s", fmt(round(result.rate) if result.rate >= 100 else result.rate))
    table.add_row("out", str(result.out))
    console.print(table)
    for path in result.quarantine[:MAX_LISTED]:
        console.print(f"[yellow]quarantine[/yellow] {path}")
