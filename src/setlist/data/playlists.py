"""The Spotify Million Playlist Dataset (MPD) in its own format: folders of JSON slices.

A slice ``mpd.slice.<a>-<b>.json`` is ``{"info": {...}, "playlists": [...]}``, each playlist
``{"pid", "name", "num_followers", "num_tracks", "tracks": [{"track_uri", "track_name",
"artist_name", ...}], ...}``. The optional fields of the official schema (``pos``,
``album_name``, ``album_uri``, ``artist_uri``, per-track ``duration_ms``, ``collaborative``,
``modified_at``, ``description``, ``num_edits``, ``num_artists``, ``num_albums``,
``duration_ms``) are used where present and null where absent.

Reading streams slice by slice: one slice's JSON is in memory at a time, its rows go out as
Arrow tables (to Parquet writers in :func:`build_store`), and only the set of pids and track
URIs seen so far is kept across slices (to refuse duplicate pids and emit each track once).

Validation, as for listening logs: a file that is not valid JSON (a truncated download) is
refused in either mode, naming the file and the byte offset, since no playlist of it can be
trusted to be complete. A playlist with a missing or malformed field (a pid that is not an
integer, tracks that are not a list, a track without ``track_uri``, a pid seen before...) stops
the load with ``fail``, naming file, pid and field; with ``quarantine`` it is written whole,
with its pid and the reason, to a JSON-lines quarantine file, and the other playlists are kept.

Folders: slice files are those named ``mpd.slice.<a>-<b>.json`` (read in order of ``a``), in the
folder itself or, as in the official download, in its ``data/`` subfolder. Every other file
(README, md5sums, stats.txt, other JSON) is ignored and listed in the report, so a stray file
never mixes another format into the playlists. A single file given by path is read as a slice
whatever its name.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from setlist.data.schema import (
    PLAYLIST_SCHEMA,
    PLAYLIST_TRACK_SCHEMA,
    TRACK_SCHEMA,
    PlaylistDataset,
)
from setlist.data.sources import SourceConfig, fetch
from setlist.data.validate import MAX_PROBLEMS, MAX_VALUE_CHARS, OnBadRows
from setlist.errors import ConfigError, DataError, ValidationError

log = logging.getLogger(__name__)

READER_VERSION = "mpd-reader-1"
"""Part of every fingerprint: a change to what the reader produces invalidates stored copies."""

SLICE_PATTERN = re.compile(r"^mpd\.slice\.(\d+)-(\d+)\.json$")
TABLES = ("playlists", "tracks", "playlist_tracks")
MANIFEST = "manifest.json"
PLAYLIST = "(playlist)"  # the field named by problems that concern the whole playlist

_PLAYLIST_INTS = ("num_edits", "num_artists", "num_albums", "duration_ms")
_TRACK_STRINGS = ("artist_uri", "album_name", "album_uri")


def _arrow_schema(schema: dict[str, pl.DataType]) -> Any:
    return pl.DataFrame(schema=schema).to_arrow().schema


_PA_PLAYLISTS = _arrow_schema(PLAYLIST_SCHEMA)
_PA_TRACKS = _arrow_schema(TRACK_SCHEMA)
_PA_PLAYLIST_TRACKS = _arrow_schema(PLAYLIST_TRACK_SCHEMA)


# ---------------------------------------------------------------- report


@dataclass
class PlaylistProblem:
    """One refused playlist: where it is (file, index in the file, pid), which field, and why."""

    file: str
    index: int
    pid: int | None
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        pid = "no pid" if self.pid is None else f"pid {self.pid}"
        return (
            f"{self.file}, playlist #{self.index} ({pid}), field {self.field!r}: "
            f"{self.reason}: {self.value}"
        )


@dataclass
class PlaylistReport:
    """What reading the slices saw: counts, problems per field, the first problems in full."""

    source: str
    files_read: int = 0
    files_ignored: list[str] = field(default_factory=list)
    playlists_read: int = 0
    playlists_kept: int = 0
    playlists_quarantined: int = 0
    playlist_tracks: int = 0
    distinct_tracks: int = 0
    num_tracks_mismatch: int = 0
    problems_by_field: dict[str, int] = field(default_factory=dict)
    problems: list[PlaylistProblem] = field(default_factory=list)
    problems_total: int = 0
    quarantine_path: Path | None = None
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["quarantine_path"] = str(self.quarantine_path) if self.quarantine_path else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlaylistReport:
        values = dict(data)
        values["problems"] = [PlaylistProblem(**p) for p in values.get("problems", [])]
        qpath = values.get("quarantine_path")
        values["quarantine_path"] = Path(qpath) if qpath else None
        return cls(**values)

    def figures(self) -> dict[str, Any]:
        """The report as flat figures for a table: counts first, then problems per field."""
        figures: dict[str, Any] = {
            k: v
            for k, v in self.to_dict().items()
            if k not in ("problems", "problems_by_field", "files_ignored")
        }
        figures["files_ignored"] = ", ".join(self.files_ignored) or "none"
        figures["reused"] = "yes" if self.reused else "no"
        for name, count in sorted(self.problems_by_field.items()):
            figures[f"problems.{name}"] = count
        return figures


# ---------------------------------------------------------------- finding slices


def slice_files(path: Path) -> tuple[list[Path], list[str]]:
    """The slice files under ``path`` in order, and the names of the other files, ignored.

    A file is taken as it is; a folder holds ``mpd.slice.<a>-<b>.json`` files itself or in
    ``data/`` (the official download's layout).
    """
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise ConfigError(f"{path}: no such file or folder of MPD slices")
    folder = path
    if not _slices_in(path) and _slices_in(path / "data"):
        folder = path / "data"
    slices: list[tuple[int, int, str, Path]] = []
    ignored: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        match = SLICE_PATTERN.match(entry.name)
        if match:
            slices.append((int(match[1]), int(match[2]), entry.name, entry))
        else:
            ignored.append(str(entry.relative_to(path)))
    if not slices:
        shown = ", ".join(ignored[:5]) + (
            f" and {len(ignored) - 5} more" if len(ignored) > 5 else ""
        )
        raise ValidationError(
            f"{path}: no MPD slice files (mpd.slice.<a>-<b>.json) in the folder"
            + (" or its data/ subfolder" if folder == path else "")
            + f"; found: {shown or 'no files'} (give a single file by its path to read it)",
            file=str(path),
        )
    if ignored:
        log.warning("%s: ignored %d file(s) that are not MPD slices", path, len(ignored))
    return [s[3] for s in sorted(slices)], ignored


def _slices_in(folder: Path) -> bool:
    return folder.is_dir() and any(SLICE_PATTERN.match(p.name) for p in folder.iterdir())


def is_playlist_path(path: Path) -> bool:
    """A ``.json`` file, or a folder with slice files (or other ``.json`` files, which
    :func:`slice_files` then refuses by name) in it or in its ``data/`` subfolder."""
    if path.is_file():
        return path.suffix.lower() == ".json"
    return _slices_in(path) or _slices_in(path / "data") or _json_in(path)


def has_slices(folder: Path) -> bool:
    """Slice files in the folder or its ``data/`` subfolder."""
    return _slices_in(folder) or _slices_in(folder / "data")


def _json_in(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() == ".json" for p in folder.iterdir())


# ---------------------------------------------------------------- parsing one slice


def parse_slice(path: Path, data: bytes) -> list[Any]:
    """The slice's playlist list; invalid JSON or structure names the file and byte offset."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        offset, why = _byte_offset(data, exc)
        raise ValidationError(
            f"{path}: not valid JSON at byte {offset:,} of {len(data):,}: {why}"
            " (a truncated or corrupt slice: fetch it again)",
            file=str(path),
            offset=offset,
            size=len(data),
        ) from None
    if not isinstance(document, dict):
        raise ValidationError(
            f"{path}: not an MPD slice: the top level is a {type(document).__name__}, "
            'not an object with "playlists"',
            file=str(path),
        )
    playlists = document.get("playlists")
    if not isinstance(playlists, list):
        found = "missing" if playlists is None else f"a {type(playlists).__name__}"
        raise ValidationError(
            f'{path}: not an MPD slice: field "playlists" is {found}, not a list',
            file=str(path),
            field="playlists",
        )
    return playlists


def _byte_offset(data: bytes, exc: orjson.JSONDecodeError) -> tuple[int, str]:
    """orjson counts characters of the decoded text: convert its position to bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as bad:
        return bad.start, f"not valid UTF-8 ({bad.reason})"
    why = exc.msg.split(": line ")[0]
    return len(text[: exc.pos].encode("utf-8")), why


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Bad(Exception):
    def __init__(self, field_name: str, reason: str, value: Any) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason
        self.value = value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(playlist: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = playlist.get(name)
    if value is None:
        if required:
            raise _Bad(name, f"missing {name}", _MISSING if name not in playlist else None)
        return None
    if not _is_int(value) or value < 0:
        raise _Bad(name, f"{name} is not a non-negative integer", value)
    return int(value)


def _text(playlist: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = playlist.get(name)
    if value is None:
        if required:
            raise _Bad(name, f"missing {name}", _MISSING if name not in playlist else None)
        return None
    if not isinstance(value, str):
        raise _Bad(name, f"{name} is not a string", value)
    return value


def _collaborative(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Bad("collaborative", 'collaborative is not true/false (or "true"/"false")', value)


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


@dataclass
class SliceTables:
    """One slice's rows as Arrow tables; ``tracks`` holds only tracks not seen before."""

    file: Path
    playlists: Any
    tracks: Any
    playlist_tracks: Any
    sha256: str


class _Columns:
    """Column lists for one slice, filled playlist by playlist (only after it validates)."""

    def __init__(self) -> None:
        self.playlists: dict[str, list[Any]] = {n: [] for n in PLAYLIST_SCHEMA}
        self.tracks: dict[str, list[Any]] = {n: [] for n in TRACK_SCHEMA}
        self.pt_pid: list[int] = []
        self.pt_pos: list[int] = []
        self.pt_uri: list[str] = []

    def tables(self, file: Path, sha: str) -> SliceTables:
        return SliceTables(
            file,
            pa.table(self.playlists, schema=_PA_PLAYLISTS),
            pa.table(self.tracks, schema=_PA_TRACKS),
            pa.table(
                {"pid": self.pt_pid, "pos": self.pt_pos, "track_uri": self.pt_uri},
                schema=_PA_PLAYLIST_TRACKS,
            ),
            sha,
        )


class PlaylistReader:
    """Reads slices one at a time, remembering pids and tracks seen, writing quarantine."""

    def __init__(
        self,
        source: str,
        *,
        on_bad_rows: OnBadRows = "fail",
        quarantine_path: Path | None = None,
    ) -> None:
        if on_bad_rows not in ("fail", "quarantine"):
            raise ConfigError(f"on_bad_rows must be 'fail' or 'quarantine', got {on_bad_rows!r}")
        if on_bad_rows == "quarantine" and quarantine_path is None:
            raise ConfigError("on_bad_rows='quarantine' needs a quarantine_path")
        self.on_bad_rows = on_bad_rows
        self.quarantine_path = quarantine_path
        self.report = PlaylistReport(source)
        self._pids: dict[int, str] = {}
        self._tracks: set[str] = set()
        self._quarantine: IO[bytes] | None = None
        if quarantine_path is not None:
            quarantine_path.unlink(missing_ok=True)  # a stale one from an earlier run misleads

    def close(self) -> None:
        if self._quarantine is not None:
            self._quarantine.close()
            self._quarantine = None

    def __enter__(self) -> PlaylistReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, path: Path) -> SliceTables:
        """Parse and validate one slice file; its good rows as Arrow tables.

        Two things keep a 33 MB slice fast: the file's SHA-256 is computed in a thread while
        orjson parses (hashlib releases the GIL), and the cyclic garbage collector is paused
        while the slice's ~70,000 fresh dicts and lists are alive (JSON makes no cycles, and
        each collection would walk all of them again; it is restored as it was afterwards).
        """
        data = path.read_bytes()
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            with ThreadPoolExecutor(1) as pool:
                digest = pool.submit(_sha256_hex, data)
                playlists = parse_slice(path, data)
                sha = digest.result()
            del data
            columns = _Columns()
            name = path.name
            for index, playlist in enumerate(playlists):
                self.report.playlists_read += 1
                try:
                    self._add(playlist, name, index, columns)
                except _Bad as bad:
                    self._refuse(path, index, playlist, bad)
            self.report.files_read += 1
            return columns.tables(path, sha)
        finally:
            if was_enabled:
                gc.enable()

    def _add(self, playlist: Any, file: str, index: int, out: _Columns) -> None:
        if not isinstance(playlist, dict):
            raise _Bad(PLAYLIST, "playlist is not a JSON object", playlist)
        pid = playlist.get("pid")
        if pid is None:
            raise _Bad("pid", "missing pid", _MISSING if "pid" not in playlist else None)
        if not _is_int(pid) or pid < 0:
            raise _Bad("pid", "pid is not a non-negative integer", pid)
        if pid in self._pids:
            raise _Bad("pid", f"duplicate pid (first in {self._pids[pid]})", pid)
        name = _text(playlist, "name", required=True)
        followers = _count(playlist, "num_followers", required=True)
        num_tracks = _count(playlist, "num_tracks", required=True)
        optional = [_count(playlist, n, required=False) for n in _PLAYLIST_INTS]
        description = _text(playlist, "description", required=False)
        modified = playlist.get("modified_at")
        if modified is not None and (not _is_int(modified) or modified < 0):
            raise _Bad("modified_at", "modified_at is not unix seconds", modified)
        collaborative = _collaborative(playlist.get("collaborative"))
        tracks = playlist.get("tracks")
        if not isinstance(tracks, list):
            reason = "missing tracks" if tracks is None else "tracks is not a list"
            raise _Bad("tracks", reason, _MISSING if "tracks" not in playlist else tracks)
        uris, positions = _track_columns(tracks)
        # Valid: only now does anything of this playlist reach the tables.
        self._pids[pid] = file
        p = out.playlists
        for key, value in (
            ("pid", pid),
            ("name", name),
            ("num_followers", followers),
            ("num_tracks", num_tracks),
            *zip(_PLAYLIST_INTS, optional, strict=True),
            ("description", description),
            ("modified_at", None if modified is None else modified * 1_000_000),
            ("collaborative", collaborative),
            ("slice", file),
        ):
            p[key].append(value)
        n = len(uris)
        out.pt_pid.extend([pid] * n)
        out.pt_pos.extend(positions)
        out.pt_uri.extend(uris)
        seen = self._tracks
        new = [i for i, uri in enumerate(uris) if uri not in seen]
        if new:
            t = out.tracks
            for i in new:
                uri = uris[i]
                if uri in seen:  # twice in this playlist: the first time counts
                    continue
                seen.add(uri)
                track = tracks[i]
                t["track_uri"].append(uri)
                t["track_name"].append(track["track_name"])
                t["artist_name"].append(track["artist_name"])
                t["artist_uri"].append(track.get("artist_uri"))
                t["album_name"].append(track.get("album_name"))
                t["album_uri"].append(track.get("album_uri"))
                t["duration_ms"].append(track.get("duration_ms"))
        self.report.playlists_kept += 1
        self.report.playlist_tracks += n
        self.report.distinct_tracks = len(seen)
        if num_tracks != n:
            self.report.num_tracks_mismatch += 1

    def _refuse(self, path: Path, index: int, playlist: Any, bad: _Bad) -> None:
        pid = playlist.get("pid") if isinstance(playlist, dict) else None
        pid = pid if _is_int(pid) else None
        value = bad.value if isinstance(bad.value, _Missing) else orjson.dumps(bad.value).decode()
        text = str(value)
        if len(text) > MAX_VALUE_CHARS:
            text = text[:MAX_VALUE_CHARS] + "..."
        problem = PlaylistProblem(str(path), index, pid, bad.field, text, bad.reason)
        if self.on_bad_rows == "fail":
            raise ValidationError(
                f"{problem} (use on_bad_rows='quarantine' / --on-bad-rows quarantine to set "
                "bad playlists aside)",
                file=str(path),
                index=index,
                pid=pid,
                field=bad.field,
                value=text,
            )
        report = self.report
        report.playlists_quarantined += 1
        report.problems_total += 1
        key = re.sub(r"\[\d+\]", "[]", bad.field)
        report.problems_by_field[key] = report.problems_by_field.get(key, 0) + 1
        if len(report.problems) < MAX_PROBLEMS:
            report.problems.append(problem)
        assert self.quarantine_path is not None
        if self._quarantine is None:
            self.quarantine_path.parent.mkdir(parents=True, exist_ok=True)
            self._quarantine = self.quarantine_path.open("ab")
            report.quarantine_path = self.quarantine_path
        record = {
            "file": str(path),
            "index": index,
            "pid": pid,
            "field": bad.field,
            "reason": bad.reason,
            "playlist": playlist,
        }
        self._quarantine.write(orjson.dumps(record) + b"\n")


_POS_LIMIT = 2**31


def _track_columns(tracks: list[Any]) -> tuple[list[str], list[int]]:
    """Each track's URI and position after checking its fields; the first bad one raises.

    The hot loop of the reader (66M tracks in the MPD): one inline test per track of exactly
    what :func:`_check_track` checks (orjson gives exact ``str``, ``int``, ``dict`` types, so
    ``type(x) is T`` is the same test as the ``isinstance`` checks there, bool excluded), and
    only a track that fails it goes through :func:`_check_track` for the field and reason.
    """
    uris: list[str] = []
    positions: list[int] = []
    for i, track in enumerate(tracks):
        if type(track) is dict:
            get = track.get
            uri = get("track_uri")
            pos = get("pos", i)
            duration = get("duration_ms")
            if (
                type(uri) is str
                and type(get("track_name")) is str
                and type(get("artist_name")) is str
                and type(pos) is int
                and 0 <= pos < _POS_LIMIT
                and (duration is None or (type(duration) is int and duration >= 0))
                and ((v := get("artist_uri")) is None or type(v) is str)
                and ((v := get("album_name")) is None or type(v) is str)
                and ((v := get("album_uri")) is None or type(v) is str)
                and uri.strip()
            ):
                uris.append(uri)
                positions.append(pos)
                continue
        uri, pos = _check_track(i, track)
        uris.append(uri)
        positions.append(pos)
    return uris, positions


def _check_track(i: int, track: Any) -> tuple[str, int]:
    """One track's checks, field by field: raises naming the first bad field, else its
    (URI, position)."""
    where = f"tracks[{i}]"
    if not isinstance(track, dict):
        raise _Bad(where, "track is not a JSON object", track)
    for key in ("track_uri", "track_name", "artist_name"):
        value = track.get(key)
        if not isinstance(value, str) or (key == "track_uri" and not value.strip()):
            reason = f"missing {key}" if value is None else f"{key} is not a string"
            if key == "track_uri" and isinstance(value, str):
                reason = "empty track_uri"
            raise _Bad(f"{where}.{key}", reason, value if key in track else _MISSING)
    for key in _TRACK_STRINGS:
        value = track.get(key)
        if value is not None and not isinstance(value, str):
            raise _Bad(f"{where}.{key}", f"{key} is not a string", value)
    duration = track.get("duration_ms")
    if duration is not None and (not _is_int(duration) or duration < 0):
        raise _Bad(f"{where}.duration_ms", "duration_ms is not a non-negative integer", duration)
    pos = track.get("pos", i)
    if not _is_int(pos) or not 0 <= pos < _POS_LIMIT:
        raise _Bad(f"{where}.pos", "pos is not a non-negative integer", pos)
    return track["track_uri"], pos


# ---------------------------------------------------------------- whole folders


def iter_slices(
    path: Path,
    *,
    on_bad_rows: OnBadRows = "fail",
    quarantine_path: Path | None = None,
    report: list[PlaylistReport] | None = None,
) -> Iterator[SliceTables]:
    """Each slice's tables in turn (one slice in memory at a time).

    The report, complete once the iterator is exhausted, is appended to ``report``.
    """
    files, ignored = slice_files(path)
    with PlaylistReader(str(path), on_bad_rows=on_bad_rows, quarantine_path=quarantine_path) as r:
        r.report.files_ignored = ignored
        if report is not None:
            report.append(r.report)
        for file in files:
            yield r.read(file)


def fingerprint(digests: list[tuple[str, str]]) -> str:
    """SHA-256 over the reader's version and each (file name, SHA-256) in reading order."""
    hasher = hashlib.sha256(READER_VERSION.encode())
    for name, digest in digests:
        hasher.update(f"\n{name}\t{digest}".encode())
    return hasher.hexdigest()


def read_playlists(
    path: Path,
    *,
    name: str | None = None,
    on_bad_rows: OnBadRows = "fail",
    quarantine_path: Path | None = None,
) -> tuple[PlaylistDataset, PlaylistReport]:
    """All slices under ``path`` into memory (small folders; for the full MPD see
    :func:`load_playlists`, which streams into Parquet)."""
    reports: list[PlaylistReport] = []
    parts = list(
        iter_slices(path, on_bad_rows=on_bad_rows, quarantine_path=quarantine_path, report=reports)
    )
    tables = [pl.from_arrow(pa.concat_tables([getattr(p, t) for p in parts])) for t in TABLES]
    frames = [t if isinstance(t, pl.DataFrame) else t.to_frame() for t in tables]
    digest = fingerprint([(p.file.name, p.sha256) for p in parts])
    playlists, tracks, pairs = frames
    dataset = PlaylistDataset(name or path.stem, playlists, tracks, pairs, fingerprint=digest)
    return dataset, reports[0]


# ---------------------------------------------------------------- the Parquet store


def store_name(path: Path) -> str:
    """A stable store folder name for an arbitrary input path (its name and a path hash)."""
    resolved = str(path.expanduser().resolve())
    return f"{path.stem or 'mpd'}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


def _stats(files: list[Path]) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "size": (s := f.stat()).st_size, "mtime_ns": s.st_mtime_ns} for f in files
    ]


def load_playlists(
    path: Path,
    store_dir: Path,
    *,
    name: str | None = None,
    on_bad_rows: OnBadRows = "fail",
    quarantine_dir: Path | None = None,
) -> tuple[PlaylistDataset, PlaylistReport]:
    """The playlists of ``path`` from their Parquet copy under ``store_dir/<name>``.

    The copy is reused when the input is unchanged: the same files with the same size and
    modification time, or else the same fingerprint (every file hashed again). Otherwise the
    slices are streamed into a fresh copy, which replaces the old one only once complete.
    A reused copy keeps its report; in ``fail`` mode a copy built with quarantined playlists
    fails as the input would.
    """
    name = name or store_name(path)
    folder = store_dir / name
    qpath = (quarantine_dir or store_dir / "quarantine") / f"{name}.playlists.quarantine.jsonl"
    files, _ = slice_files(path)
    manifest = read_manifest(folder)
    if manifest is not None and _unchanged(manifest, files):
        report = PlaylistReport.from_dict(manifest["report"])
        report.reused = True
        if on_bad_rows == "fail" and report.problems:
            first = report.problems[0]
            raise ValidationError(
                f"{first} ({report.problems_total} bad playlist(s) in all; use "
                "on_bad_rows='quarantine' / --on-bad-rows quarantine to set them aside)",
                file=first.file,
                pid=first.pid,
                field=first.field,
                value=first.value,
            )
        log.info("%s: reusing %s (fingerprint %s)", path, folder, manifest["fingerprint"][:12])
        return read_store(folder), report
    report = build_store(path, folder, name=name, on_bad_rows=on_bad_rows, quarantine_path=qpath)
    return read_store(folder), report


def _unchanged(manifest: dict[str, Any], files: list[Path]) -> bool:
    if [f["name"] for f in manifest["files"]] != [f.name for f in files]:
        return False
    if manifest["files"] == _stats(files):
        return True
    from setlist.data.sources import file_digest

    digests = [(f.name, file_digest(f, "sha256")) for f in files]
    if fingerprint(digests) != manifest["fingerprint"]:
        return False
    manifest["files"] = [
        {**s, "sha256": d} for s, (_, d) in zip(_stats(files), digests, strict=True)
    ]
    _write_manifest(Path(manifest["store"]), manifest)  # same content: remember the new times
    return True


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The store's manifest, or None where there is no complete store."""
    path = folder / MANIFEST
    if not path.is_file() or not all((folder / f"{t}.parquet").is_file() for t in TABLES):
        return None
    try:
        manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        log.warning("%s: unreadable manifest, the store is rebuilt", path)
        return None
    if manifest.get("reader") != READER_VERSION:
        return None
    manifest["store"] = str(folder)
    return manifest


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    data = {k: v for k, v in manifest.items() if k != "store"}
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, folder / MANIFEST)


def build_store(
    path: Path,
    folder: Path,
    *,
    name: str | None = None,
    on_bad_rows: OnBadRows = "fail",
    quarantine_path: Path | None = None,
) -> PlaylistReport:
    """Stream every slice of ``path`` into ``folder``'s three Parquet files and manifest.

    Written into a temporary folder beside ``folder`` and swapped in only when complete, so
    a failed or interrupted build leaves the previous copy (if any) as it was.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    files, _ = slice_files(path)
    reports: list[PlaylistReport] = []
    digests: list[tuple[str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        writers = {
            t: pq.ParquetWriter(tmp / f"{t}.parquet", schema)
            for t, schema in zip(
                TABLES, (_PA_PLAYLISTS, _PA_TRACKS, _PA_PLAYLIST_TRACKS), strict=True
            )
        }
        # One slice is written (pyarrow releases the GIL) while the next is read; waiting
        # for the previous write before handing over the next keeps at most two in memory.
        writing: Future[None] | None = None

        def write(part: SliceTables) -> None:
            for t in TABLES:
                writers[t].write_table(getattr(part, t))

        try:
            with ThreadPoolExecutor(1) as pool:
                for part in iter_slices(
                    path, on_bad_rows=on_bad_rows, quarantine_path=quarantine_path, report=reports
                ):
                    if writing is not None:
                        writing.result()
                    writing = pool.submit(write, part)
                    digests.append((part.file.name, part.sha256))
                if writing is not None:
                    writing.result()
        finally:
            for writer in writers.values():
                writer.close()
        report = reports[0]
        manifest = {
            "reader": READER_VERSION,
            "name": name or folder.name,
            "source": str(path),
            "fingerprint": fingerprint(digests),
            "files": [{**s, "sha256": d} for s, (_, d) in zip(_stats(files), digests, strict=True)],
            "report": report.to_dict(),
        }
        _write_manifest(tmp, manifest)
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("%s: %d playlists stored in %s", path, report.playlists_kept, folder)
    return report


def _swap_in(new: Path, folder: Path) -> None:
    if folder.exists():
        old = folder.parent / f".{folder.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(new, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, folder)


def read_store(folder: Path) -> PlaylistDataset:
    """A stored copy back as a :class:`PlaylistDataset` (fingerprint from its manifest)."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise DataError(
            f"{folder}: no complete playlist store ({', '.join(TABLES)} .parquet and "
            f"{MANIFEST} with reader {READER_VERSION})",
            store=str(folder),
        )
    playlists, tracks, pairs = (pl.read_parquet(folder / f"{t}.parquet") for t in TABLES)
    return PlaylistDataset(
        manifest["name"],
        playlists,
        tracks,
        pairs,
        fingerprint=manifest["fingerprint"],
        store=folder,
    )


# ---------------------------------------------------------------- sources by name or path

MPD_SOURCE = "spotify-mpd"


def is_playlist_source(source: str) -> bool:
    """``spotify-mpd``, a folder of MPD slices or a ``.json`` file."""
    if source == MPD_SOURCE:
        return True
    path = Path(source).expanduser()
    return path.exists() and is_playlist_path(path)


def load_playlist_source(
    source: str,
    config: SourceConfig,
    *,
    on_bad_rows: OnBadRows = "fail",
    quarantine_dir: Path | None = None,
) -> tuple[PlaylistDataset, PlaylistReport]:
    """``spotify-mpd`` (fetched: mirror or cache) or a path, through the Parquet store.

    The known dataset is stored as ``<store_dir>/spotify-mpd``; a path under its folder name
    and a hash of its absolute path, so two folders never share a store.
    """
    if source == MPD_SOURCE:
        path, name = fetch(MPD_SOURCE, config), MPD_SOURCE
    else:
        path = Path(source).expanduser()
        name = store_name(path)
    return load_playlists(
        path,
        config.store_dir,
        name=name,
        on_bad_rows=on_bad_rows,
        quarantine_dir=quarantine_dir or config.cache_dir / "quarantine",
    )
