"""Row-level validation of interactions as read, and the data-quality figures of a run.

Readers hand over the columns as strings, exactly as in the file, so that a bad value can be
reported verbatim with its line instead of vanishing in a failed cast. Every check is a polars
expression over the whole frame (17.5M rows validate in seconds); Python only touches the bad
rows, to report them.

A frame may carry two bookkeeping columns: ``_line`` (the 1-based line of each row in its file,
counting the header; where absent, rows are taken as consecutive from ``first_line``) and
``_reason`` (a problem the reader already found, such as a wrong number of fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from setlist.data.schema import INTERACTION_SCHEMA
from setlist.errors import ConfigError, ValidationError

OnBadRows = Literal["fail", "quarantine"]
LINE = "_line"
REASON = "_reason"
ROW = "(row)"  # the column named by problems that concern the whole row
MAX_PROBLEMS = 100
MAX_VALUE_CHARS = 200
REQUIRED = ("user", "item")
TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
_UNIX = r"^-?\d+(\.\d*)?$"
_BLOCK = 1 << 24


@dataclass
class Problem:
    """One bad value: where it is (file, line, column), what it is, and why it was refused."""

    file: str
    line: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.file}, line {self.line}, column {self.column!r}: {self.reason}: {self.value!r}"
        )


@dataclass
class ValidationReport:
    """What validation saw: counts, the first problems in full, and where bad rows went."""

    file: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0
    quarantine_path: Path | None = None
    duplicate_rows: int = 0
    encoding: str = "utf-8"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["quarantine_path"] = str(self.quarantine_path) if self.quarantine_path else None
        return data


def check_text(path: Path, encoding: str) -> None:
    """Raise ValidationError at the first line that does not decode or holds a NUL byte.

    Reads in blocks cut at newlines (a newline byte is never inside a multi-byte character in
    the encodings we read), so memory stays flat whatever the file size.
    """
    line = 1
    carry = b""
    with path.open("rb") as handle:
        while True:
            block = handle.read(_BLOCK)
            data = carry + block
            cut = len(data) if not block else data.rfind(b"\n") + 1
            part, carry = data[:cut], data[cut:]
            check_part(path, part, line, encoding)
            line += part.count(b"\n")
            if not block:
                return


def check_part(path: Path, part: bytes, first_line: int, encoding: str) -> None:
    try:
        part.decode(encoding)
    except UnicodeDecodeError as exc:
        line = first_line + part.count(b"\n", 0, exc.start)
        raise ValidationError(
            f"{path}, line {line}: not valid {encoding} text (byte "
            f"{part[exc.start : exc.start + 1]!r}): the file cannot be decoded",
            file=str(path),
            line=line,
            encoding=encoding,
        ) from None
    nul = part.find(b"\x00")
    if nul >= 0:
        line = first_line + part.count(b"\n", 0, nul)
        raise ValidationError(
            f"{path}, line {line}: NUL byte: not a text file", file=str(path), line=line
        )


def parse_timestamps(values: pl.Series) -> pl.Series:
    """ISO-8601 (offset, ``Z`` or naive = UTC) or unix seconds, as Datetime(us, UTC).

    Unparseable and empty values are null. Formats are tried in turn on the rows still
    unparsed only, so a file in one format pays for one parse.
    """
    if values.dtype != pl.String:
        return _typed_timestamps(values)
    text = values.str.strip_chars()
    parsed = pl.Series(values.name, [None] * len(text), dtype=pl.Datetime("us", "UTC"))
    attempts = [_parse_unix] + [_format_parser(f) for f in TIMESTAMP_FORMATS]
    for attempt in attempts:
        todo = (parsed.is_null() & text.is_not_null() & (text != "")).arg_true()
        if todo.len() == 0:
            break
        parsed = parsed.scatter(todo, attempt(text.gather(todo)))
    return parsed


def _format_parser(fmt: str) -> Any:
    def parse(text: pl.Series) -> pl.Series:
        return text.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")

    return parse


def _parse_unix(text: pl.Series) -> pl.Series:
    t = pl.col("t")
    seconds = pl.when(t.str.contains(_UNIX)).then(t.cast(pl.Float64, strict=False))
    micros = (seconds * 1_000_000).round().cast(pl.Int64, strict=False)
    stamp = micros.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return pl.DataFrame({"t": text}).select(stamp.alias(text.name)).to_series()


def _typed_timestamps(values: pl.Series) -> pl.Series:
    """Timestamps that arrive typed (Parquet): datetimes to UTC, numbers as unix seconds."""
    dtype = values.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            values = values.dt.replace_time_zone("UTC")
        return values.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if dtype == pl.Date:
        return values.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if dtype.is_numeric():
        return _parse_unix(values.cast(pl.String))
    raise ValidationError(f"timestamp column has unsupported type {dtype}", column="timestamp")


def _blank(column: str, frame: pl.DataFrame) -> pl.Expr:
    expr = pl.col(column).is_null()
    if frame.schema[column] == pl.String:
        expr = expr | pl.col(column).str.contains(r"^\s*$")  # a regex allocates no strings
    return expr


def _weights(values: pl.Series) -> pl.Series:
    """Weights as Float64 (null where not a number); only failed values are retried stripped."""
    if values.dtype.is_numeric():
        return values.cast(pl.Float64)
    if values.dtype != pl.String:
        raise ValidationError(f"weight column has unsupported type {values.dtype}", column="weight")
    weights = values.cast(pl.Float64, strict=False)
    retry = (weights.is_null() & values.is_not_null()).arg_true()
    if retry.len():
        stripped = values.gather(retry).str.strip_chars().cast(pl.Float64, strict=False)
        weights = weights.scatter(retry, stripped)
    return weights


def _checks(frame: pl.DataFrame) -> list[tuple[str, pl.Expr, str | pl.Expr]]:
    """(column, condition, reason) in the order they are reported; the first match wins."""
    checks: list[tuple[str, pl.Expr, str | pl.Expr]] = []
    if REASON in frame.columns:
        checks.append((ROW, pl.col(REASON).is_not_null(), pl.col(REASON)))
    for column in REQUIRED:
        checks.append((column, _blank(column, frame), f"empty {column} id"))
    if "weight" in frame.columns:
        w = pl.col("_weight")
        checks += [
            ("weight", _blank("weight", frame), "empty weight"),
            ("weight", w.is_null(), "weight is not a number"),
            ("weight", w.is_nan(), "weight is NaN"),
            ("weight", w.is_infinite(), "weight is infinite"),
            ("weight", w < 0, "weight is negative"),
        ]
    if "timestamp" in frame.columns:
        unparsed = ~_blank("timestamp", frame) & pl.col("_timestamp").is_null()
        checks.append(("timestamp", unparsed, "timestamp is neither ISO-8601 nor unix seconds"))
    return checks


def _flag(frame: pl.DataFrame) -> pl.DataFrame:
    """Add typed ``_weight``/``_timestamp`` and, per row, the first failing check."""
    typed = frame.with_columns(
        _weights(frame.get_column("weight")).alias("_weight")
        if "weight" in frame.columns
        else pl.lit(1.0).alias("_weight"),
        (
            parse_timestamps(frame.get_column("timestamp")).alias("_timestamp")
            if "timestamp" in frame.columns
            else pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("_timestamp")
        ),
    )
    reason: Any = pl.lit(None, dtype=pl.String)
    column: Any = pl.lit(None, dtype=pl.String)
    for name, condition, why in reversed(_checks(frame)):
        why_expr = why if isinstance(why, pl.Expr) else pl.lit(why)
        reason = pl.when(condition).then(why_expr).otherwise(reason)
        column = pl.when(condition).then(pl.lit(name)).otherwise(column)
    return typed.with_columns(reason.alias("_bad_reason"), column.alias("_bad_column"))


def _problems(bad: pl.DataFrame, file: str, limit: int) -> list[Problem]:
    """The first ``limit`` bad rows as Problems, each with the offending value verbatim."""
    rows = bad.sort(LINE).head(limit)
    problems = []
    for row in rows.iter_rows(named=True):
        column = row["_bad_column"]
        value = "" if column == ROW else row[column]
        text = "" if value is None else str(value)
        problems.append(
            Problem(file, int(row[LINE]), column, text[:MAX_VALUE_CHARS], row["_bad_reason"])
        )
    return problems


def _raise_first(bad: pl.DataFrame, file: str) -> None:
    first = _problems(bad, file, 1)[0]
    raise ValidationError(
        f"{file}, line {first.line}, column {first.column!r}: {first.reason}: {first.value!r}"
        f" ({bad.height} bad row(s) in all; use on_bad_rows='quarantine' to set them aside)",
        file=file,
        line=first.line,
        column=first.column,
        value=first.value,
        bad_rows=bad.height,
    )


def _write_quarantine(bad: pl.DataFrame, original: Sequence[str], path: Path) -> None:
    """Bad rows with their original values, line and reason, as CSV for a person to fix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values = [pl.col(c).cast(pl.String) for c in original if c not in (LINE, REASON)]
    bad.sort(LINE).select(
        pl.col(LINE).alias("line"),
        pl.col("_bad_column").alias("column"),
        pl.col("_bad_reason").alias("reason"),
        *values,
    ).write_csv(path)


def validate_interactions(
    raw: pl.DataFrame,
    file: str,
    *,
    first_line: int = 2,
    on_bad_rows: OnBadRows = "fail",
    quarantine_path: Path | None = None,
    extra: Sequence[str] = (),
) -> tuple[pl.DataFrame, ValidationReport]:
    """Check every row; return the good rows in INTERACTION_SCHEMA (then ``extra`` columns).

    ``fail`` raises ValidationError at the first bad row (file, line, column, value);
    ``quarantine`` writes bad rows to ``quarantine_path`` as CSV and goes on. Rows without a
    weight column weigh 1.0 (one play); empty timestamps are null.
    """
    if on_bad_rows not in ("fail", "quarantine"):
        raise ConfigError(f"on_bad_rows must be 'fail' or 'quarantine', got {on_bad_rows!r}")
    if on_bad_rows == "quarantine" and quarantine_path is None:
        raise ConfigError("on_bad_rows='quarantine' needs a quarantine_path")
    missing = [c for c in (*REQUIRED, *extra) if c not in raw.columns]
    if missing:
        raise ValidationError(
            f"{file}: missing required column(s) {', '.join(missing)}; "
            f"found: {', '.join(c for c in raw.columns if not c.startswith('_')) or 'none'}",
            file=file,
            missing=missing,
        )
    frame = raw if LINE in raw.columns else raw.with_row_index(LINE, offset=first_line)
    flagged = _flag(frame.with_columns(pl.col(LINE).cast(pl.Int64)))
    is_bad = pl.col("_bad_reason").is_not_null()
    n_bad = flagged.height - flagged.get_column("_bad_reason").null_count()
    report = ValidationReport(file, rows_read=frame.height)
    if n_bad:
        bad = flagged.filter(is_bad)
        if on_bad_rows == "fail":
            _raise_first(bad, file)
        assert quarantine_path is not None
        _write_quarantine(bad, raw.columns, quarantine_path)
        report.rows_quarantined = bad.height
        report.quarantine_path = quarantine_path
        report.problems = _problems(bad, file, MAX_PROBLEMS)
        report.problems_total = bad.height
        flagged = flagged.filter(~is_bad)
    good = flagged.select(
        pl.col("user").cast(pl.String),
        pl.col("item").cast(pl.String),
        pl.col("_weight").alias("weight"),
        pl.col("_timestamp").alias("timestamp"),
        *[pl.col(c) for c in extra],
    )
    report.rows_accepted = good.height
    report.duplicate_rows = duplicate_rows(good)
    return good, report


def duplicate_rows(interactions: pl.DataFrame) -> int:
    """Rows repeating an earlier (user, item[, timestamp]); aggregation merges them later."""
    if interactions.height == 0:
        return 0
    keys = pair_codes(interactions)
    stamps = interactions.get_column("timestamp")
    if stamps.null_count() < interactions.height:
        keys = keys.with_columns(stamps.to_physical().alias("_t"))
        return interactions.height - int(keys.select(pl.struct("_k", "_t").n_unique()).item())
    return interactions.height - keys.get_column("_k").n_unique()


def pair_codes(df: pl.DataFrame) -> pl.DataFrame:
    """Columns ``_u``, ``_i`` (integer codes of user and item) and ``_k`` (of the pair).

    Grouping on these is several times faster than on the id strings at 17.5M rows with
    skewed item popularity. Codes are only consistent within one call's result.
    """
    user = pl.col("user").cast(pl.Categorical).to_physical().cast(pl.UInt64)
    item = pl.col("item").cast(pl.Categorical).to_physical().cast(pl.UInt64)
    return df.select(_u=user, _i=item).with_columns(_k=pl.col("_u") * (1 << 32) + pl.col("_i"))


def quality_figures(interactions: pl.DataFrame) -> dict[str, float]:
    """Size, sparsity, nulls and play-count shape: logged with every run to spot data drift."""
    df = interactions
    codes = pair_codes(df.filter(pl.col("user").is_not_null() & pl.col("item").is_not_null()))
    users = codes.get_column("_u").to_numpy()
    pairs = codes.get_column("_k")
    n_pairs = pairs.n_unique()
    distinct = users if n_pairs == len(users) else users[pairs.is_first_distinct().to_numpy()]
    per_user = np.bincount(distinct) if len(distinct) else np.zeros(0, dtype=np.int64)
    per_user = per_user[per_user > 0]
    n_users = float(len(per_user))
    n_items = float(codes.get_column("_i").n_unique())
    figures: dict[str, float] = {
        "rows": float(df.height),
        "users": n_users,
        "items": n_items,
        "density": n_pairs / (n_users * n_items) if n_users and n_items else 0.0,
    }
    for column in INTERACTION_SCHEMA:
        if column in df.columns:
            figures[f"nulls.{column}"] = float(df.get_column(column).null_count())
    weights = df.get_column("weight").drop_nulls().cast(pl.Float64).to_numpy()
    figures.update(_distribution(weights, "plays"))
    figures["items_per_user.median"] = _stat(np.median(per_user) if len(per_user) else None)
    figures["items_per_user.mean"] = _stat(per_user.mean() if len(per_user) else None)
    return figures


def _distribution(values: npt.NDArray[np.float64], prefix: str) -> dict[str, float]:
    if len(values) == 0:
        return {
            f"{prefix}.{k}": _stat(None) for k in ("min", "median", "mean", "p90", "p99", "max")
        }
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        f"{prefix}.min": _stat(values.min()),
        f"{prefix}.median": _stat(p50),
        f"{prefix}.mean": _stat(values.mean()),
        f"{prefix}.p90": _stat(p90),
        f"{prefix}.p99": _stat(p99),
        f"{prefix}.max": _stat(values.max()),
    }


def _stat(value: Any) -> float:
    """A statistic as float; NaN where the frame is empty (there is no honest number)."""
    return float("nan") if value is None else float(value)
