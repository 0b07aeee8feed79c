"""Cleaning (aggregate, k-core) and splits, with property tests for their invariants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from setlist.config import CleanConfig, SplitConfig
from setlist.data.clean import aggregate, kcore
from setlist.data.schema import INTERACTION_SCHEMA, conform
from setlist.data.split import fixed_split, split
from setlist.errors import ConfigError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _frame(rows: Sequence[tuple[str, str, float, int | None]]) -> pl.DataFrame:
    """Rows of (user, item, weight, day offset or None)."""
    return pl.DataFrame(
        {
            "user": [r[0] for r in rows],
            "item": [r[1] for r in rows],
            "weight": [r[2] for r in rows],
            "timestamp": [None if r[3] is None else T0 + timedelta(days=r[3]) for r in rows],
        },
        schema=INTERACTION_SCHEMA,
    )


def _pairs(df: pl.DataFrame) -> set[tuple[str, str]]:
    return set(df.select("user", "item").iter_rows())


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort("user", "item")


def test_aggregate_sums_plays_and_keeps_first_time() -> None:
    df = _frame([("u", "a", 2, 5), ("u", "a", 3, 1), ("u", "b", 1, None), ("v", "a", 1, 2)])
    out = _sorted(aggregate(df))
    assert out.rows() == [
        ("u", "a", 5.0, T0 + timedelta(days=1)),
        ("u", "b", 1.0, None),
        ("v", "a", 1.0, T0 + timedelta(days=2)),
    ]
    assert out.schema == pl.Schema(INTERACTION_SCHEMA)


def test_aggregate_leaves_unique_frames_alone() -> None:
    df = _frame([("u", "a", 2, None), ("v", "a", 1, None)])
    assert aggregate(df).equals(df)


def test_kcore_iterates_until_stable() -> None:
    # w has one item, so w goes; then b has one user (u), so b goes; then u has one item.
    df = _frame(
        [("u", "a", 1, None), ("u", "b", 1, None), ("v", "a", 1, None), ("v", "d", 1, None),
         ("x", "a", 1, None), ("x", "d", 1, None), ("w", "b", 1, None)]
    )  # fmt: skip
    out = kcore(df, CleanConfig(min_user_items=2, min_item_users=2))
    assert _pairs(out) == {("v", "a"), ("v", "d"), ("x", "a"), ("x", "d")}


def test_kcore_counts_distinct_items_and_keeps_repeats() -> None:
    df = _frame([("u", "a", 1, 1), ("u", "a", 1, 2), ("v", "a", 1, 1)])
    assert kcore(df, CleanConfig(2, 1)).height == 0
    assert kcore(df, CleanConfig(1, 2)).height == 3


def test_kcore_rejects_bad_thresholds() -> None:
    with pytest.raises(ConfigError):
        kcore(_frame([]), CleanConfig(0, 1))


def _reference_kcore(pairs: set[tuple[str, str]], mu: int, mi: int) -> set[tuple[str, str]]:
    while True:
        users: dict[str, int] = {}
        items: dict[str, int] = {}
        for u, i in pairs:
            users[u] = users.get(u, 0) + 1
            items[i] = items.get(i, 0) + 1
        kept = {(u, i) for u, i in pairs if users[u] >= mu and items[i] >= mi}
        if kept == pairs:
            return kept
        pairs = kept


interactions = st.lists(
    st.tuples(st.sampled_from("abcdefgh"), st.sampled_from("pqrstuvwxyz")), max_size=60
)


@settings(max_examples=80, deadline=None)
@given(rows=interactions, mu=st.integers(1, 4), mi=st.integers(1, 4))
def test_kcore_property(rows: list[tuple[str, str]], mu: int, mi: int) -> None:
    df = _frame([(u, i, 1.0, None) for u, i in rows])
    out = kcore(df, CleanConfig(mu, mi))
    if out.height:
        per_user = out.group_by("user").agg(pl.col("item").n_unique()).get_column("item")
        per_item = out.group_by("item").agg(pl.col("user").n_unique()).get_column("user")
        assert per_user.min() >= mu and per_item.min() >= mi  # type: ignore[operator]
    assert _pairs(out) == _reference_kcore(set(rows), mu, mi)  # and it is the largest such set
    assert kcore(out, CleanConfig(mu, mi)).height == out.height


def test_temporal_split_takes_each_users_latest() -> None:
    rows = [("u", f"i{d}", 1.0, d) for d in range(10)] + [("v", "a", 1, 0), ("v", "b", 1, 1)]
    rows += [("w", "a", 1.0, 3)]
    parts = split(_frame(rows), SplitConfig(test_fraction=0.2))
    assert parts.strategy == "temporal"
    assert _pairs(parts.test) == {("u", "i8"), ("u", "i9"), ("v", "b")}
    assert ("w", "a") in _pairs(parts.train)  # a single item stays in train


def test_random_split_is_seeded_and_order_independent() -> None:
    rows = [(f"u{u}", f"i{i}", 1.0, None) for u in range(20) for i in range(u % 7 + 1)]
    df = _frame(rows)
    first = split(df, SplitConfig(0.3, seed=4))
    shuffled = split(df.sample(fraction=1.0, shuffle=True, seed=1), SplitConfig(0.3, seed=4))
    assert first.strategy == "random"
    assert _sorted(first.test).equals(_sorted(shuffled.test))
    assert _sorted(first.train).equals(_sorted(shuffled.train))
    others = [split(df, SplitConfig(0.3, seed=s)).test for s in range(1, 6)]
    assert any(_pairs(o) != _pairs(first.test) for o in others)


def test_split_refuses_repeated_pairs_and_bad_fraction() -> None:
    with pytest.raises(ConfigError, match="aggregate"):
        split(_frame([("u", "a", 1, None), ("u", "a", 2, None)]), SplitConfig())
    with pytest.raises(ConfigError, match="test_fraction"):
        split(_frame([]), SplitConfig(test_fraction=1.0))


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from("abcdef"), st.integers(0, 40), st.one_of(st.none(), st.integers(0, 9))
        ),
        max_size=80,
        unique_by=lambda r: (r[0], r[1]),
    ),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 5),
)
def test_split_partitions_rows_exactly(
    rows: list[tuple[str, int, int | None]], fraction: float, seed: int
) -> None:
    df = _frame([(u, f"i{i}", 1.0, t) for u, i, t in rows])
    parts = split(df, SplitConfig(fraction, seed))
    assert parts.train.height + parts.test.height == df.height
    assert _sorted(pl.concat([parts.train, parts.test])).equals(_sorted(df))
    assert not (_pairs(parts.train) & _pairs(parts.test))
    sizes = df.group_by("user").len()
    tested = parts.test.group_by("user").len().rename({"len": "n_test"})
    joined = sizes.join(tested, on="user", how="left").fill_null(0)
    for user, n, n_test in joined.iter_rows():
        expected = 0 if n < 2 else min(n - 1, max(1, int(n * fraction + 0.5)))
        assert n_test == expected, user


def test_fixed_split_removes_test_pairs_from_train() -> None:
    df = _frame([("u", "a", 1, None), ("u", "b", 2, None), ("v", "a", 3, None)])
    test = conform(pl.DataFrame({"user": ["u", "z"], "item": ["b", "q"]}), INTERACTION_SCHEMA)
    parts = fixed_split(df, test)
    assert parts.strategy == "fixed"
    assert _pairs(parts.train) == {("u", "a"), ("v", "a")}
    assert _pairs(parts.test) == {("u", "b"), ("z", "q")}
