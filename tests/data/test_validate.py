"""Validation: each kind of bad value, fail vs quarantine, reports, and quality figures."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from setlist.data.validate import (
    MAX_PROBLEMS,
    parse_timestamps,
    quality_figures,
    validate_interactions,
)
from setlist.errors import ConfigError, ValidationError


def _raw(**columns: Sequence[str | None]) -> pl.DataFrame:
    return pl.DataFrame(columns, schema={k: pl.String() for k in columns})


def test_good_rows_are_typed() -> None:
    raw = _raw(
        user=["u1", "u2"], item=["a", "b"], weight=["3", " 4.5 "],
        timestamp=["2009-05-04T23:08:57Z", "1241478537"],
    )  # fmt: skip
    good, report = validate_interactions(raw, "f.csv")
    assert good.columns == ["user", "item", "weight", "timestamp"]
    assert good.get_column("weight").to_list() == [3.0, 4.5]
    stamp = datetime(2009, 5, 4, 23, 8, 57, tzinfo=UTC)
    assert good.get_column("timestamp").to_list() == [stamp, stamp]
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (2, 2, 0)


def test_missing_weight_column_means_one_play() -> None:
    good, _ = validate_interactions(_raw(user=["u"], item=["i"]), "f.csv")
    assert good.get_column("weight").to_list() == [1.0]
    assert good.get_column("timestamp").null_count() == 1


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("user", "", "empty user id"),
        ("user", None, "empty user id"),
        ("item", "  ", "empty item id"),
        ("weight", "lots", "weight is not a number"),
        ("weight", "", "empty weight"),
        ("weight", "-2", "weight is negative"),
        ("weight", "NaN", "weight is NaN"),
        ("weight", "inf", "weight is infinite"),
        ("timestamp", "yesterday", "timestamp is neither ISO-8601 nor unix seconds"),
    ],
)
def test_fail_names_file_line_column_value(column: str, value: str | None, reason: str) -> None:
    values = {"user": "u", "item": "i", "weight": "1", "timestamp": "2020-01-01"}
    rows: dict[str, list[str | None]] = {k: [v, v, v] for k, v in values.items()}
    rows[column][1] = value
    with pytest.raises(ValidationError) as info:
        validate_interactions(_raw(**rows), "plays.csv", first_line=2)
    message = str(info.value)
    assert "plays.csv, line 3" in message  # header is line 1, the bad row the second
    assert repr(column) in message and reason in message
    assert info.value.details["line"] == 3
    assert info.value.details["value"] == (value or "")


def test_reader_line_numbers_and_reasons_are_used() -> None:
    raw = _raw(user=["u", "u"], item=["a", "b"], _reason=[None, "5 fields where 3 are expected"])
    raw = raw.with_columns(_line=pl.Series([7, 9]))
    with pytest.raises(ValidationError, match=r"line 9, column '\(row\)': 5 fields"):
        validate_interactions(raw, "f.tsv")


def test_quarantine_writes_bad_rows_and_keeps_going(tmp_path: Path) -> None:
    raw = _raw(user=["u1", "", "u3", "u4"], item=["a", "b", "c", "d"], weight=["1", "2", "x", "4"])
    path = tmp_path / "q" / "bad.csv"
    good, report = validate_interactions(
        raw, "f.csv", on_bad_rows="quarantine", quarantine_path=path
    )
    assert good.get_column("user").to_list() == ["u1", "u4"]
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (4, 2, 2)
    assert report.quarantine_path == path and report.problems_total == 2
    assert [(p.line, p.column, p.value) for p in report.problems] == [
        (3, "user", ""),
        (4, "weight", "x"),
    ]
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["line"], r["reason"], r["weight"]) for r in rows] == [
        ("3", "empty user id", "2"),
        ("4", "weight is not a number", "x"),
    ]


def test_problems_are_capped_but_all_counted(tmp_path: Path) -> None:
    n = MAX_PROBLEMS + 50
    raw = _raw(user=["u"] * n, item=["i"] * n, weight=["bad"] * n)
    _, report = validate_interactions(
        raw, "f.csv", on_bad_rows="quarantine", quarantine_path=tmp_path / "q.csv"
    )
    assert len(report.problems) == MAX_PROBLEMS
    assert report.problems_total == report.rows_quarantined == n
    json.dumps(report.to_dict())  # serialisable for run tracking


def test_quarantine_needs_a_path() -> None:
    with pytest.raises(ConfigError, match="quarantine_path"):
        validate_interactions(_raw(user=["u"], item=["i"]), "f", on_bad_rows="quarantine")


def test_missing_required_columns() -> None:
    with pytest.raises(ValidationError, match=r"f.csv: missing required column\(s\) item"):
        validate_interactions(_raw(user=["u"], plays=["1"]), "f.csv")


def test_duplicates_are_counted_not_refused() -> None:
    raw = _raw(user=["u", "u", "u", "v"], item=["a", "a", "b", "a"], weight=["1", "2", "1", "1"])
    good, report = validate_interactions(raw, "f")
    assert report.duplicate_rows == 1 and good.height == 4
    timed = raw.with_columns(timestamp=pl.Series(["1", "2", "3", "4"]))
    assert validate_interactions(timed, "f")[1].duplicate_rows == 0


def test_parse_timestamps_formats() -> None:
    values = pl.Series(
        ["2009-05-04T23:08:57Z", "2009-05-04T23:08:57.500+02:00", "2009-05-04 23:08:57",
         "2009-05-04", "1241478537", "1241478537.25", "", None, "soon", "1e9"]
    )  # fmt: skip
    parsed = parse_timestamps(values).to_list()
    assert parsed[0] == datetime(2009, 5, 4, 23, 8, 57, tzinfo=UTC)
    assert parsed[1] == datetime(2009, 5, 4, 21, 8, 57, 500000, tzinfo=UTC)
    assert parsed[2] == parsed[0] == parsed[4]
    assert parsed[3] == datetime(2009, 5, 4, tzinfo=UTC)
    assert parsed[5] == datetime(2009, 5, 4, 23, 8, 57, 250000, tzinfo=UTC)
    assert parsed[6:] == [None, None, None, None]


def test_typed_columns_from_parquet_are_accepted() -> None:
    raw = pl.DataFrame(
        {
            "user": [1, 2],
            "item": ["a", "b"],
            "weight": [3, -1],
            "timestamp": [datetime(2020, 1, 1), datetime(2020, 1, 2)],
        }
    )
    with pytest.raises(ValidationError, match="line 3, column 'weight': weight is negative"):
        validate_interactions(raw, "f.parquet")
    good, _ = validate_interactions(raw.head(1), "f.parquet")
    assert good.row(0) == ("1", "a", 3.0, datetime(2020, 1, 1, tzinfo=UTC))


weights = st.one_of(
    st.integers(-5, 10_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "x", " 7 ", "1e3", "-0"]),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(weights, min_size=1, max_size=30))
def test_quarantine_partitions_rows(tmp_path: Path, values: list[str]) -> None:
    n = len(values)
    raw = _raw(user=[f"u{i}" for i in range(n)], item=["i"] * n, weight=values)
    good, report = validate_interactions(
        raw, "f", on_bad_rows="quarantine", quarantine_path=tmp_path / "q.csv"
    )
    assert report.rows_accepted + report.rows_quarantined == report.rows_read == n
    assert all(math.isfinite(w) and w >= 0 for w in good.get_column("weight").to_list())
    if report.rows_quarantined:
        with pytest.raises(ValidationError):
            validate_interactions(raw, "f")
    else:
        assert validate_interactions(raw, "f")[0].equals(good)


def test_quality_figures() -> None:
    df = pl.DataFrame(
        {"user": ["a", "a", "b", "b", "c"], "item": ["x", "y", "x", "x", "z"],
         "weight": [1.0, 3.0, 5.0, 7.0, 9.0]},
    ).with_columns(timestamp=pl.lit(None, dtype=pl.Datetime("us", "UTC")))  # fmt: skip
    figures = quality_figures(df)
    assert (figures["rows"], figures["users"], figures["items"]) == (5.0, 3.0, 3.0)
    assert figures["density"] == pytest.approx(4 / 9)
    assert figures["nulls.timestamp"] == 5.0 and figures["nulls.weight"] == 0.0
    assert (figures["plays.min"], figures["plays.median"], figures["plays.max"]) == (1, 5, 9)
    assert figures["plays.mean"] == 5.0
    assert figures["plays.p90"] == pytest.approx(8.2)
    assert figures["items_per_user.median"] == 1.0
    assert figures["items_per_user.mean"] == pytest.approx(4 / 3)


def test_quality_figures_of_nothing() -> None:
    empty = pl.DataFrame(
        schema={"user": pl.String, "item": pl.String, "weight": pl.Float64,
                "timestamp": pl.Datetime("us", "UTC")}
    )  # fmt: skip
    figures = quality_figures(empty)
    assert figures["rows"] == 0.0 and figures["density"] == 0.0
    assert math.isnan(figures["plays.median"]) and math.isnan(figures["items_per_user.mean"])
