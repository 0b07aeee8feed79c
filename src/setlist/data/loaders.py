"""Loaders: a known source, ``synthetic:<preset>`` or a file -> (Dataset, ValidationReport).

Files are read with polars as all-string columns plus ``_line``, the row's 1-based line in
the file (the header is line 1), so that validation can name the exact line of a bad value.
The Last.fm files have no quoting (artist names contain bare ``"``), so they are read with
quoting off; generic ``.csv`` files are read with standard CSV quoting. A file polars refuses
(a line with too many fields) is re-read line by line, slower but exact, and each such line
is reported as a bad row; a file that is not valid in its encoding is refused outright.

Item ids: HetRec uses its artist ids. Last.fm 360K and 1K use the MusicBrainz artist id where
the row has one and the artist name as written otherwise (about a third of 360K's artists have
no MBID), so the same artist without an MBID under two spellings counts as two items.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import polars as pl

from setlist.data.playlists import is_playlist_source, load_playlist_source
from setlist.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA, Dataset, conform, empty_items
from setlist.data.sources import SOURCES, SourceConfig, fetch
from setlist.data.synthetic import generate_preset
from setlist.data.validate import (
    LINE,
    REASON,
    OnBadRows,
    ValidationReport,
    check_part,
    check_text,
    duplicate_rows,
    validate_interactions,
)
from setlist.errors import ConfigError, ValidationError

log = logging.getLogger(__name__)

Format = Literal["csv", "tsv", "parquet"]
MUSICBRAINZ_ARTIST = "https://musicbrainz.org/artist/"


def load(
    source: str,
    config: SourceConfig,
    *,
    on_bad_rows: OnBadRows = "fail",
    quarantine_dir: Path | None = None,
) -> tuple[Dataset, ValidationReport]:
    """Load a known source name, ``synthetic:<preset>[:<seed>]`` or an interactions file.

    Bad rows fail the load at the first one, or with ``quarantine`` go to CSV files under
    ``quarantine_dir`` (default ``<cache_dir>/quarantine``).
    """
    qdir = quarantine_dir or config.cache_dir / "quarantine"
    if source.startswith("synthetic:"):
        return _load_synthetic(source)
    if is_playlist_source(source):
        return _load_playlists(source, config, on_bad_rows, qdir)
    if source in SOURCES:
        return _LOADERS[source](fetch(source, config), on_bad_rows, qdir)
    path = Path(source).expanduser()
    if path.is_file():
        return load_file(path, on_bad_rows=on_bad_rows, quarantine_dir=qdir)
    raise ConfigError(
        f"unknown source {source!r}: not a known dataset ({', '.join(sorted(SOURCES))}), "
        "not synthetic:<preset>, not an existing file and not a folder of MPD slices"
    )


def _load_playlists(
    source: str, config: SourceConfig, on_bad_rows: OnBadRows, qdir: Path
) -> tuple[Dataset, ValidationReport]:
    """MPD slices as interactions: each playlist a user, each of its tracks an item (weight 1).

    The report counts interaction rows; ``rows_quarantined`` counts whole playlists (their
    problems are in the quarantine file and in :func:`load_playlist_source`'s own report).
    """
    playlists, preport = load_playlist_source(
        source, config, on_bad_rows=on_bad_rows, quarantine_dir=qdir
    )
    interactions = playlists.interactions()
    report = ValidationReport(
        preport.source,
        rows_read=interactions.height,
        rows_accepted=interactions.height,
        rows_quarantined=preport.playlists_quarantined,
        problems_total=preport.problems_total,
        quarantine_path=preport.quarantine_path,
        duplicate_rows=duplicate_rows(interactions),
        encoding="utf-8 (JSON)",
    )
    return Dataset(playlists.name, interactions, conform(playlists.items(), ITEM_SCHEMA)), report


def _load_synthetic(source: str) -> tuple[Dataset, ValidationReport]:
    preset, _, seed = source.removeprefix("synthetic:").partition(":")
    if seed and not seed.lstrip("-").isdigit():
        raise ConfigError(f"synthetic source {source!r}: seed {seed!r} is not an integer")
    dataset = generate_preset(preset, seed=int(seed) if seed else 0)
    rows = dataset.interactions.height
    report = ValidationReport(
        source,
        rows_read=rows,
        rows_accepted=rows,
        duplicate_rows=duplicate_rows(dataset.interactions),
        encoding="n/a",
    )
    return dataset, report


def _quarantine_path(qdir: Path, dataset: str | None, file: Path) -> Path:
    prefix = f"{dataset}." if dataset else ""
    return qdir / f"{prefix}{file.stem}.quarantine.csv"


# ---------------------------------------------------------------- reading delimited text


def read_table(
    path: Path,
    *,
    separator: str = "\t",
    names: list[str] | None = None,
    encoding: str = "utf-8",
    quoted: bool = False,
) -> pl.DataFrame:
    """All-string columns plus ``_line``; ``names`` for header-less files, else the header.

    Blank lines are skipped; rows with too many fields carry a ``_reason``.
    """
    utf8 = encoding.replace("_", "-").lower() in ("utf-8", "utf8")
    source: Path | io.BytesIO = path
    if not utf8:  # polars reads UTF-8 only; the small files in other encodings are re-encoded
        source = io.BytesIO(_decode_all(path, encoding).encode("utf-8"))
    header = names is None
    try:
        frame = pl.read_csv(
            source,
            separator=separator,
            has_header=header,
            schema=None if header else {n: pl.String() for n in names or []},
            quote_char='"' if quoted else None,
            infer_schema=False,
            row_index_name=LINE,
            row_index_offset=2 if header else 1,
            raise_if_empty=False,
        )
    except pl.exceptions.ComputeError:
        # Bad encoding, NUL bytes or a line with too many fields: find out which, exactly.
        check_text(path, encoding)
        if isinstance(source, io.BytesIO):
            source.seek(0)
        read = _read_quoted_rows if quoted else _read_lines
        try:
            frame = read(source, separator, names)
        except (pl.exceptions.PolarsError, csv.Error) as exc:
            raise ValidationError(f"{path}: cannot be read: {exc}", file=str(path)) from exc
    except pl.exceptions.PolarsError as exc:
        raise ValidationError(f"{path}: cannot be read: {exc}", file=str(path)) from exc
    data = [c for c in frame.columns if c not in (LINE, REASON)]
    if not data:
        return frame
    return frame.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in data))


def _decode_all(path: Path, encoding: str) -> str:
    check_text(path, encoding)
    return path.read_bytes().decode(encoding)


def _read_lines(source: Path | io.BytesIO, separator: str, names: list[str] | None) -> pl.DataFrame:
    """The exact, slower reader for unquoted text with ragged lines: one string per line."""
    lines = pl.read_csv(
        source,
        separator="\x00",  # absent from text (checked): each whole line is one field
        has_header=False,
        schema={"_text": pl.String()},
        quote_char=None,
        row_index_name=LINE,
        row_index_offset=1,
        raise_if_empty=False,
    )
    if names is None:
        head = lines.filter(pl.col(LINE) == 1).get_column("_text")
        names = head.item().split(separator) if head.len() and head.item() else []
        lines = lines.filter(pl.col(LINE) > 1)
    n_fields = pl.col("_text").str.count_matches(separator, literal=True) + 1
    fields = pl.col("_text").str.splitn(separator, len(names)).struct.rename_fields(names)
    frame = lines.select(
        LINE,
        pl.when(n_fields > len(names))
        .then(pl.format("{} fields where {} are expected", n_fields, pl.lit(len(names))))
        .alias(REASON),
        fields.alias("_fields"),
    ).unnest("_fields")
    return frame.with_columns(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in names)


def _read_quoted_rows(
    source: Path | io.BytesIO, separator: str, names: list[str] | None
) -> pl.DataFrame:
    """The exact, slower reader for quoted CSV with ragged rows (Python's csv module)."""
    data = source.read_bytes() if isinstance(source, Path) else source.getvalue()
    text = io.StringIO(data.decode("utf-8-sig"), newline="")
    reader = csv.reader(text, delimiter=separator)
    if names is None:
        names = next(reader, [])
    columns: dict[str, list[str | None]] = {n: [] for n in names}
    lines: list[int] = []
    reasons: list[str | None] = []
    start = reader.line_num + 1
    for row in reader:
        if row:
            lines.append(start)
            reasons.append(
                f"{len(row)} fields where {len(names)} are expected"
                if len(row) > len(names)
                else None
            )
            for i, name in enumerate(names):
                value = row[i] if i < len(row) else None
                columns[name].append(value or None)
        start = reader.line_num + 1
    schema = {n: pl.String() for n in names}
    return pl.DataFrame(
        {LINE: lines, REASON: reasons, **columns},
        schema={LINE: pl.Int64(), REASON: pl.String(), **schema},
    )


def _require(frame: pl.DataFrame, path: Path, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        found = [c for c in frame.columns if c not in (LINE, REASON)]
        raise ValidationError(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            f"found: {', '.join(found) or 'none'}",
            file=str(path),
            missing=missing,
        )


def _metadata(frame: pl.DataFrame, path: Path, key: str, on_bad_rows: OnBadRows) -> pl.DataFrame:
    """Metadata rows (names, tags) with a usable key; bad ones fail or are skipped and logged."""
    bad = pl.col(key).is_null()
    if REASON in frame.columns:
        bad = bad | pl.col(REASON).is_not_null()
    rejected = frame.filter(bad)
    if rejected.height:
        first = rejected.get_column(LINE).min()
        line = first if isinstance(first, int) else 0
        if on_bad_rows == "fail":
            raise ValidationError(
                f"{path}, line {line}, column {key!r}: bad metadata row ({rejected.height} in all)",
                file=str(path),
                line=line,
                column=key,
            )
        log.warning(
            "%s: skipped %d bad metadata row(s), first at line %d", path, rejected.height, line
        )
    return frame.filter(~bad)


# ---------------------------------------------------------------- generic files


def file_format(path: Path) -> Format:
    """CSV, TSV or Parquet by extension, else sniffed from the first bytes."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv", ".tab"):
        return "csv" if suffix == ".csv" else "tsv"
    with path.open("rb") as handle:
        head = handle.read(65536)
    if head.startswith(b"PAR1"):
        return "parquet"
    first = head.split(b"\n", 1)[0]
    if first.count(b"\t") >= max(1, first.count(b",")):
        return "tsv"
    if b"," in first:
        return "csv"
    raise ValidationError(
        f"{path}: cannot tell the format: not .csv/.tsv/.parquet and the first line has "
        "neither tabs nor commas",
        file=str(path),
    )


def load_file(
    path: Path, *, on_bad_rows: OnBadRows = "fail", quarantine_dir: Path
) -> tuple[Dataset, ValidationReport]:
    """A generic interactions file: columns user, item and optional weight, timestamp, name.

    Header names are matched without regard to case or surrounding spaces.
    """
    fmt = file_format(path)
    if fmt == "parquet":
        raw = _read_parquet(path)
    else:
        raw = read_table(path, separator="," if fmt == "csv" else "\t", quoted=fmt == "csv")
    raw = raw.rename({c: c.strip().lower() for c in raw.columns if c not in (LINE, REASON)})
    extra = ("name",) if "name" in raw.columns else ()
    interactions, report = validate_interactions(
        raw,
        str(path),
        on_bad_rows=on_bad_rows,
        quarantine_path=_quarantine_path(quarantine_dir, None, path),
        extra=extra,
    )
    items = _named_items(interactions) if extra else empty_items()
    return Dataset(path.stem, conform(interactions, INTERACTION_SCHEMA), items), report


def _read_parquet(path: Path) -> pl.DataFrame:
    """Parquet keeps its types; ``_line`` is the 1-based row number."""
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise ValidationError(
            f"{path}: not a readable Parquet file: {exc}", file=str(path)
        ) from exc
    return frame.with_row_index(LINE, offset=1)


def _named_items(interactions: pl.DataFrame) -> pl.DataFrame:
    """One name per item: the spelling with the most plays (ties: alphabetical).

    Items with a MusicBrainz id link to their MusicBrainz page.
    """
    has_mbid = "mbid" in interactions.columns
    named = (
        interactions.filter(pl.col("name").is_not_null())
        .group_by("item", "name")
        .agg(
            pl.col("weight").sum(),
            (pl.col("mbid").max() if has_mbid else pl.lit(None, dtype=pl.String)).alias("mbid"),
        )
        .sort(["item", "weight", "name"], descending=[False, True, False])
        .unique("item", keep="first", maintain_order=True)
    )
    url = pl.when(pl.col("mbid").is_not_null()).then(pl.lit(MUSICBRAINZ_ARTIST) + pl.col("mbid"))
    return conform(named.with_columns(url.alias("url")), ITEM_SCHEMA)


# ---------------------------------------------------------------- known datasets


def _load_hetrec(
    folder: Path, on_bad_rows: OnBadRows, qdir: Path
) -> tuple[Dataset, ValidationReport]:
    """user_artists.dat (plays), artists.dat (names, links), tags via user_taggedartists.dat."""
    plays_path = folder / "user_artists.dat"
    raw = read_table(plays_path)
    _require(raw, plays_path, ["userID", "artistID", "weight"])
    interactions, report = validate_interactions(
        raw.rename({"userID": "user", "artistID": "item"}),
        str(plays_path),
        on_bad_rows=on_bad_rows,
        quarantine_path=_quarantine_path(qdir, "hetrec-lastfm-2k", plays_path),
    )
    artists_path = folder / "artists.dat"
    artists = read_table(artists_path)
    _require(artists, artists_path, ["id", "name", "url"])
    items = _metadata(artists, artists_path, "id", on_bad_rows).rename({"id": "item"})
    items = conform(items.unique("item", keep="first", maintain_order=True), ITEM_SCHEMA)
    tags = _hetrec_tags(folder, on_bad_rows)
    return Dataset("hetrec-lastfm-2k", interactions, items, tags), report


def _hetrec_tags(folder: Path, on_bad_rows: OnBadRows) -> pl.DataFrame:
    """(item, tag, count): how many users gave each artist each tag."""
    tags_path = folder / "tags.dat"
    tags = read_table(tags_path, encoding="latin-1")
    _require(tags, tags_path, ["tagID", "tagValue"])
    tags = _metadata(tags, tags_path, "tagID", on_bad_rows)
    given_path = folder / "user_taggedartists.dat"
    given = read_table(given_path)
    _require(given, given_path, ["userID", "artistID", "tagID"])
    given = _metadata(
        _metadata(given, given_path, "artistID", on_bad_rows), given_path, "tagID", on_bad_rows
    )
    return (
        given.join(tags.select("tagID", "tagValue"), on="tagID", how="inner")
        .group_by(pl.col("artistID").alias("item"), pl.col("tagValue").alias("tag"))
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort(["item", "count", "tag"], descending=[False, True, False])
    )


def _unquote(names: pl.Series) -> pl.Series:
    """Undo CSV-style quoting: ``"lee ""scratch"" perry"`` -> ``lee "scratch" perry``.

    Last.fm 360K writes names that contain a quote that way (the rest of the file is bare);
    only those few rows are rewritten.
    """
    quoted = names.str.starts_with('"') & names.str.ends_with('"') & (names.str.len_bytes() >= 2)
    rows = quoted.arg_true()
    if rows.len() == 0:
        return names
    values = names.gather(rows)
    inner = pl.DataFrame({"v": values}).select(
        pl.col("v")
        .str.slice(1, pl.col("v").str.len_chars() - 2)
        .str.replace_all('""', '"', literal=True)
    )
    return names.scatter(rows, inner.to_series())


def read_block(path: Path, data: bytes, first_line: int, names: list[str]) -> pl.DataFrame:
    """:func:`read_table` for one block of a header-less, unquoted UTF-8 file.

    ``data`` holds whole lines of ``path`` starting at line ``first_line``; ``_line`` numbers
    them as lines of the whole file.
    """
    source = io.BytesIO(data)
    try:
        frame = pl.read_csv(
            source,
            separator="\t",
            has_header=False,
            schema={n: pl.String() for n in names},
            quote_char=None,
            infer_schema=False,
            row_index_name=LINE,
            row_index_offset=first_line,
            raise_if_empty=False,
        )
    except pl.exceptions.ComputeError:
        check_part(path, data, first_line, "utf-8")
        source.seek(0)
        try:
            frame = _read_lines(source, "\t", names)
        except pl.exceptions.PolarsError as exc:
            raise ValidationError(f"{path}: cannot be read: {exc}", file=str(path)) from exc
        frame = frame.with_columns(pl.col(LINE) + (first_line - 1))
    except pl.exceptions.PolarsError as exc:
        raise ValidationError(f"{path}: cannot be read: {exc}", file=str(path)) from exc
    return frame.filter(pl.any_horizontal(pl.col(c).is_not_null() for c in names))


def lastfm_interactions(
    raw: pl.DataFrame,
    file: str,
    *,
    on_bad_rows: OnBadRows,
    quarantine_path: Path,
    quoted_names: bool = False,
) -> tuple[pl.DataFrame, ValidationReport]:
    """Raw Last.fm rows (user, mbid, name, ...) validated; the item is the MBID, else the name."""
    if quoted_names:
        raw = raw.with_columns(_unquote(raw.get_column("name")))
    # Empty fields read as null; fill_null stays fast on the reader's chunked columns.
    raw = raw.with_columns(item=pl.col("mbid").fill_null(pl.col("name")))
    return validate_interactions(
        raw,
        file,
        first_line=1,
        on_bad_rows=on_bad_rows,
        quarantine_path=quarantine_path,
        extra=("name", "mbid"),
    )


LASTFM_360K_FILE = "usersha1-artmbid-artname-plays.tsv"
LASTFM_360K_COLUMNS = ["user", "mbid", "name", "weight"]


def _load_lastfm(
    name: str, file: str, columns: list[str], *, quoted_names: bool = False
) -> Callable[[Path, OnBadRows, Path], tuple[Dataset, ValidationReport]]:
    """A loader for a header-less Last.fm TSV with user, MBID and artist name columns."""

    def loader(
        folder: Path, on_bad_rows: OnBadRows, qdir: Path
    ) -> tuple[Dataset, ValidationReport]:
        path = folder / file
        interactions, report = lastfm_interactions(
            read_table(path, names=columns),
            str(path),
            on_bad_rows=on_bad_rows,
            quarantine_path=_quarantine_path(qdir, name, path),
            quoted_names=quoted_names,
        )
        items = _named_items(interactions)
        return Dataset(name, conform(interactions, INTERACTION_SCHEMA), items), report

    return loader


_LOADERS: dict[str, Callable[[Path, OnBadRows, Path], tuple[Dataset, ValidationReport]]] = {
    "hetrec-lastfm-2k": _load_hetrec,
    "lastfm-360k": _load_lastfm(
        "lastfm-360k", LASTFM_360K_FILE, LASTFM_360K_COLUMNS, quoted_names=True
    ),
    "lastfm-1k": _load_lastfm(
        "lastfm-1k",
        "userid-timestamp-artid-artname-traid-traname.tsv",
        ["user", "timestamp", "mbid", "name", "track_mbid", "track_name"],
    ),
}
