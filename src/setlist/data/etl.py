"""ETL to Parquet shards, in this process or on Ray Data: Last.fm-360K TSV and MPD slices.

A Last.fm-360K-shaped TSV (no header: user, artist MBID, artist name, plays) is cut into parts
of about ``part_bytes`` at line boundaries (the driver counts lines on the way, so that every
part knows the file line it starts at); each part is read, validated exactly as the 360K loader
does (:func:`setlist.data.loaders.lastfm_interactions`) and written to
``OUT/plays/part-NNNNN.parquet`` (user, item, weight, name, mbid). A folder of MPD slices gives
one task per slice, read by :class:`setlist.data.playlists.PlaylistReader` into
``OUT/{playlists,tracks,playlist_tracks}/<slice>.parquet``; what only the whole folder shows (a
pid repeated in a later slice, a track first listed in an earlier one) is settled afterwards in
the driver, in slice order, so the result is the single reader's.

``local`` runs the tasks one after the other; ``ray`` maps the same task function over a Ray
Data dataset of tasks (one block each), on a local Ray or a cluster (``--ray-address``): the
shards are the same files either way. Bad rows: with ``fail`` the first bad row (in part order)
stops the run, naming file and line (slices: file, playlist and field); with ``quarantine`` each
part writes its bad rows to ``OUT/quarantine/`` (CSV with the file's line, or JSON lines with
the slice's playlist) and the run goes on. On a cluster, the source and ``OUT`` must be on
storage every node sees.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import polars as pl

from setlist.data.loaders import LASTFM_360K_COLUMNS, LASTFM_360K_FILE, lastfm_interactions
from setlist.data.loaders import read_block as _read_block
from setlist.data.playlists import (
    MPD_SOURCE,
    TABLES,
    PlaylistReader,
    is_playlist_source,
    slice_files,
)
from setlist.data.sources import SourceConfig, fetch
from setlist.data.validate import OnBadRows
from setlist.errors import ConfigError, SetlistError, ValidationError

Backend = Literal["local", "ray"]
Kind = Literal["tsv", "mpd"]
PART_BYTES = 64 * 2**20  # about a million 360K rows per part
OUTPUTS = ("plays", *TABLES, "quarantine")


@dataclass(frozen=True)
class Task:
    """One unit of work: a line-aligned byte range of a TSV, or one slice file."""

    kind: Kind
    path: str
    part: int
    start: int = 0
    end: int = 0
    first_line: int = 1


@dataclass
class EtlResult:
    source: str
    kind: Kind
    backend: Backend
    out: Path
    parts: int
    rows_read: int  # TSV rows, or playlists
    rows_written: int
    rows_quarantined: int
    seconds: float
    quarantine: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


def resolve(source: str, config: SourceConfig | None) -> tuple[Kind, Path]:
    """``lastfm-360k``, ``spotify-mpd`` (fetched), a TSV file, or MPD slices (file or folder)."""
    if source == MPD_SOURCE or source == "lastfm-360k":
        if config is None:
            raise ConfigError(f"{source} needs a source configuration (mirror or cache)")
        folder = fetch(source, config)
        return ("mpd", folder) if source == MPD_SOURCE else ("tsv", folder / LASTFM_360K_FILE)
    if is_playlist_source(source):
        return "mpd", Path(source).expanduser()
    path = Path(source).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{source}: not a file, MPD slice folder, lastfm-360k or spotify-mpd", field="source"
        )
    return "tsv", path


def plan(kind: Kind, path: Path, part_bytes: int = PART_BYTES) -> list[Task]:
    """The tasks for a source: line-aligned TSV parts, or one per slice in reading order."""
    if kind == "mpd":
        files, _ = slice_files(path)
        return [Task("mpd", str(f), i) for i, f in enumerate(files)]
    if part_bytes < 1:
        raise ConfigError(f"part_bytes must be positive, got {part_bytes}", field="part_bytes")
    size = path.stat().st_size
    tasks: list[Task] = []
    start, line = 0, 1
    with path.open("rb") as handle:
        while start < size:
            handle.seek(min(start + part_bytes, size))
            end = min(handle.tell() + len(handle.readline()), size)
            handle.seek(start)
            lines, left = 0, end - start
            while left:
                block = handle.read(min(left, 16 * 2**20))
                lines += block.count(b"\n")
                left -= len(block)
            tasks.append(Task("tsv", str(path), len(tasks), start, end, line))
            start, line = end, line + lines
    return tasks


def run_task(task: dict[str, Any], out: str, on_bad_rows: OnBadRows) -> dict[str, Any]:
    """One task, anywhere: its shards under ``out``; counts, or the error that stopped it."""
    t = Task(**task)
    try:
        part = _tsv_part if t.kind == "tsv" else _slice
        stats = part(t, Path(out), on_bad_rows)
    except SetlistError as exc:
        return {"part": t.part, "read": 0, "written": 0, "quarantined": 0, "error": exc.message}
    return {**stats, "part": t.part, "error": ""}


def _tsv_part(task: Task, out: Path, on_bad_rows: OnBadRows) -> dict[str, Any]:
    path = Path(task.path)
    with path.open("rb") as handle:
        handle.seek(task.start)
        data = handle.read(task.end - task.start)
    raw = _read_block(path, data, task.first_line, LASTFM_360K_COLUMNS)
    quarantine = out / "quarantine" / f"{path.stem}.part-{task.part:05d}.quarantine.csv"
    good, report = lastfm_interactions(
        raw, str(path), on_bad_rows=on_bad_rows, quarantine_path=quarantine, quoted_names=True
    )
    good.select("user", "item", "weight", "name", "mbid").write_parquet(
        out / "plays" / f"part-{task.part:05d}.parquet"
    )
    return {
        "read": report.rows_read,
        "written": report.rows_accepted,
        "quarantined": report.rows_quarantined,
    }


def _slice_reader(task: Task, out: Path, on_bad_rows: OnBadRows) -> PlaylistReader:
    qpath = out / "quarantine" / f"{Path(task.path).stem}.quarantine.jsonl"
    return PlaylistReader(task.path, on_bad_rows=on_bad_rows, quarantine_path=qpath)


def _slice(task: Task, out: Path, on_bad_rows: OnBadRows) -> dict[str, Any]:
    import pyarrow.parquet as pq

    path = Path(task.path)
    with _slice_reader(task, out, on_bad_rows) as reader:
        tables = reader.read(path)
    for name in TABLES:
        pq.write_table(getattr(tables, name), out / name / f"{path.stem}.parquet")
    report = reader.report
    return {
        "read": report.playlists_read,
        "written": report.playlists_kept,
        "quarantined": report.playlists_quarantined,
    }


def etl(
    source: str,
    out: Path,
    *,
    backend: Backend = "local",
    on_bad_rows: OnBadRows = "fail",
    config: SourceConfig | None = None,
    part_bytes: int = PART_BYTES,
    ray_address: str | None = None,
    cpus: int = 2,
) -> EtlResult:
    """``source`` to Parquet shards under ``out`` (its shard folders are replaced)."""
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend must be local or ray, got {backend!r}", field="backend")
    if on_bad_rows not in ("fail", "quarantine"):
        raise ConfigError(f"on_bad_rows must be fail or quarantine, got {on_bad_rows!r}")
    kind, path = resolve(source, config)
    started = time.perf_counter()
    tasks = plan(kind, path, part_bytes)
    for name in OUTPUTS:
        shutil.rmtree(out / name, ignore_errors=True)
        (out / name).mkdir(parents=True)
    rows = [asdict(t) for t in tasks]
    stats = _run(rows, str(out), on_bad_rows, backend, ray_address, cpus)
    stats.sort(key=lambda s: int(s["part"]))
    failed = [s for s in stats if s["error"]]
    if failed:
        raise ValidationError(str(failed[0]["error"]), file=str(path))
    dropped = _settle_slices(out, tasks, on_bad_rows) if kind == "mpd" else 0
    return EtlResult(
        source,
        kind,
        backend,
        out,
        len(tasks),
        sum(int(s["read"]) for s in stats),
        sum(int(s["written"]) for s in stats) - dropped,
        sum(int(s["quarantined"]) for s in stats) + dropped,
        time.perf_counter() - started,
        sorted(str(p) for p in (out / "quarantine").iterdir()),
    )


def _run(
    rows: list[dict[str, Any]],
    out: str,
    on_bad_rows: OnBadRows,
    backend: Backend,
    address: str | None,
    cpus: int,
) -> list[dict[str, Any]]:
    if backend == "local":
        stats = []
        for row in rows:
            stats.append(run_task(row, out, on_bad_rows))
            if stats[-1]["error"] and on_bad_rows == "fail":
                break
        return stats
    import ray

    from setlist.data.ray_cluster import ray_session

    if not rows:
        return []
    with ray_session(address, cpus):
        tasks: Any = ray.data.from_items(rows, override_num_blocks=len(rows))
        done = tasks.map(run_task, fn_kwargs={"out": out, "on_bad_rows": on_bad_rows})
        return [dict(row) for row in done.take_all()]


def _settle_slices(out: Path, tasks: list[Task], on_bad_rows: OnBadRows) -> int:
    """What only the whole folder shows, in slice order; the playlists dropped here.

    A pid already kept from an earlier slice fails the run or is quarantined (its playlist
    and pairs leave the later shards); a track listed in an earlier slice's ``tracks`` shard
    leaves the later one, so each track is listed once, where it first appears.
    """
    first: dict[int, str] = {}
    seen: set[str] = set()
    dropped = 0
    for task in tasks:
        file = Path(task.path)
        shard = {name: out / name / f"{file.stem}.parquet" for name in TABLES}
        playlists = pl.read_parquet(shard["playlists"])
        pids = playlists.get_column("pid").to_list()
        again = [pid for pid in pids if pid in first]
        if again:
            _repeated(file, again, first, out, on_bad_rows)
            playlists = playlists.filter(~pl.col("pid").is_in(again))
            playlists.write_parquet(shard["playlists"])
            pairs = pl.read_parquet(shard["playlist_tracks"]).filter(~pl.col("pid").is_in(again))
            pairs.write_parquet(shard["playlist_tracks"])
            dropped += len(again)
        first.update((pid, file.name) for pid in playlists.get_column("pid").to_list())
        tracks = pl.read_parquet(shard["tracks"])
        if again:  # tracks only the dropped playlists listed are not first listed here
            kept = pairs.get_column("track_uri").unique()
            tracks = tracks.filter(pl.col("track_uri").is_in(kept.implode()))
        uris = tracks.get_column("track_uri").to_list()
        new = [uri not in seen for uri in uris]
        seen.update(uris)
        if again or not all(new):
            tracks.filter(pl.Series(new, dtype=pl.Boolean)).write_parquet(shard["tracks"])
    return dropped


def _repeated(
    file: Path, pids: list[int], first: dict[int, str], out: Path, on_bad_rows: OnBadRows
) -> None:
    """Pids of ``file`` kept from an earlier slice: the error, or their quarantine records."""
    reason = f"duplicate pid (first in {first[pids[0]]})"
    if on_bad_rows == "fail":
        raise ValidationError(
            f"{file}, pid {pids[0]}, field 'pid': {reason} ({len(pids)} in this slice; use "
            "on_bad_rows='quarantine' / --on-bad-rows quarantine to set them aside)",
            file=str(file),
            pid=pids[0],
            field="pid",
        )
    path = out / "quarantine" / f"{file.stem}.quarantine.jsonl"
    with path.open("ab") as handle:
        for pid in pids:
            record = {
                "file": str(file),
                "pid": pid,
                "field": "pid",
                "reason": f"duplicate pid (first in {first[pid]})",
            }
            handle.write(orjson.dumps(record) + b"\n")
