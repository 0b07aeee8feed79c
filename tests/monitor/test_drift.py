"""Drift statistics on simulated traffic: listeners with hidden tastes react to slates.

The traffic comes from :class:`setlist.simulate.ListenerModel` on the ``synthetic:tiny`` world:
each request shows a listener ten artists drawn the way a model that learned their tastes
would pick them (taste of the genre x popularity, plus 15% exploration), and the listener
listens, likes, skips or dislikes. A taste shift moves every listener's taste to another genre
while the model stays stale (or, in one test, follows them at once).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from setlist.config import DriftConfig, Settings, WeightConfig
from setlist.data.clean import aggregate
from setlist.data.synthetic import generate_preset
from setlist.errors import ConfigError, DataError
from setlist.events.store.base import FRAME_SCHEMA
from setlist.matrix import build_matrix, weight
from setlist.models.als import ALSRecommender
from setlist.monitor.drift import (
    CHECKS,
    check_drift,
    engagement,
    listens_per_user,
    ratio_bootstrap,
    windows,
)
from setlist.monitor.drift_report import write_html
from setlist.simulate import ListenerModel

WINDOW_S = 3600.0
US = 1_000_000
START_US = 1_735_689_600 * US  # 2025-01-01T00:00:00Z
REQUESTS = 300  # per window: about 1,300 engagement events
EXPLORE = 0.15


class Traffic:
    """Windows of events from listeners reacting to slates of a (possibly stale) model."""

    def __init__(self, listeners: ListenerModel, popularity: np.ndarray, seed: int = 1) -> None:
        self.listeners = listeners
        self.popularity = popularity
        rng = np.random.default_rng(seed)
        activity = rng.lognormal(0.0, 0.7, len(listeners.user_ids))  # heavy and light listeners
        self.activity = activity / activity.sum()

    def slates_for(self, taste: np.ndarray) -> np.ndarray:
        """Per user, the probability of showing each item: what a model of ``taste`` shows."""
        score = taste[:, self.listeners.item_genre] * self.popularity[None, :]
        score /= score.sum(axis=1, keepdims=True)
        return (1 - EXPLORE) * score + EXPLORE / score.shape[1]

    def window(
        self,
        index: int,
        listeners: ListenerModel,
        shown: np.ndarray,
        rng: np.random.Generator,
        requests: int = REQUESTS,
    ) -> pl.DataFrame:
        """Events of window ``index`` (a frame like ``EventStore.frame()``)."""
        start = START_US + index * int(WINDOW_S * US)
        times = np.sort(rng.integers(start, start + int(WINDOW_S * US) - 1000, requests))
        users = rng.choice(len(self.listeners.user_ids), size=requests, p=self.activity)
        rows: list[tuple[Any, ...]] = []
        for ts, u in zip(times.tolist(), users.tolist(), strict=True):
            items = rng.choice(shown.shape[1], size=10, replace=False, p=shown[u])
            user, ids = self.listeners.user_ids[u], [self.listeners.item_ids[i] for i in items]
            rows += [(user, item, "impression", ts, None, p, 1.0) for p, item in enumerate(ids)]
            for n, (item, kind, ms) in enumerate(listeners.react(user, ids, rng), start=1):
                rows.append((user, item, kind, ts + n * 100, ms or None, None, None))
        return events_frame(rows)


def events_frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    """(user, item, type, ts_us, play_ms, position, propensity) rows as a store frame."""
    columns = ["user_id", "item_id", "type", "ts_us", "play_ms", "position", "propensity"]
    frame = pl.DataFrame(rows, schema={c: FRAME_SCHEMA[c] for c in columns}, orient="row")
    n = frame.height
    return frame.with_columns(
        seq=pl.int_range(1, n + 1, dtype=pl.Int64),
        event_id=pl.format("e{}", pl.int_range(n)),
        received_us=pl.col("ts_us"),
        arm=pl.lit(None, pl.String),
        model_version=pl.lit("1"),
        playlist_id=pl.lit(None, pl.String),
    ).select(list(FRAME_SCHEMA))


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    dataset = generate_preset("tiny")
    listeners = ListenerModel.from_world(dataset)
    train = build_matrix(aggregate(dataset.interactions))
    model = ALSRecommender(factors=16, iterations=5, seed=0, threads=1)
    model.fit(weight(train.csr, WeightConfig()))
    row = {item: i for i, item in enumerate(listeners.item_ids)}
    listeners_per_item = np.zeros(len(listeners.item_ids))
    for item in dataset.interactions.get_column("item").to_list():
        listeners_per_item[row[item]] += 1
    assert model.item_factors_ is not None
    return {
        "listeners": listeners,
        "traffic": Traffic(listeners, listeners_per_item + 1),
        "known": {
            "known_users": set(train.users.ids.tolist()),
            "known_items": set(train.items.ids.tolist()),
            "item_vectors": (train.items.ids.tolist(), model.item_factors_),
        },
    }


@pytest.fixture(scope="module")
def stable(world: dict[str, Any]) -> pl.DataFrame:
    """21 windows of traffic with no drift: 20 consecutive (reference, current) pairs."""
    traffic, listeners = world["traffic"], world["listeners"]
    rng = np.random.default_rng(0)
    shown = traffic.slates_for(listeners.taste)
    return pl.concat([traffic.window(i, listeners, shown, rng) for i in range(21)])


def shifted(listeners: ListenerModel, taste: np.ndarray) -> ListenerModel:
    return ListenerModel(listeners.user_ids, listeners.item_ids, listeners.item_genre, taste)


def end_of(index: int) -> int:
    return START_US + (index + 1) * int(WINDOW_S * US)


def test_stable_traffic_drifts_in_at_most_one_of_20_windows(
    stable: pl.DataFrame, world: dict[str, Any]
) -> None:
    reports = [
        check_drift(*windows(stable, WINDOW_S, end_of(i)), DriftConfig(), **world["known"])
        for i in range(1, 21)
    ]
    assert all(r.enough for r in reports)
    for r in reports:  # every check ran: a stable verdict is not a skipped one
        assert [c.name for c in r.checks] == list(CHECKS)
        assert all(math.isfinite(c.statistic) for c in r.checks), r.checks
    alarms = [r.reason() for r in reports if r.drifted]
    assert len(alarms) <= 1, alarms


def test_a_taste_shift_drifts_in_the_first_window_after_it(
    stable: pl.DataFrame, world: dict[str, Any]
) -> None:
    """Listeners move to other genres; the model keeps showing what they used to like."""
    traffic, listeners = world["traffic"], world["listeners"]
    moved = shifted(listeners, np.roll(listeners.taste, 1, axis=1))
    after = traffic.window(21, moved, traffic.slates_for(listeners.taste), np.random.default_rng(5))
    events = pl.concat([stable, after])
    before = check_drift(*windows(events, WINDOW_S, end_of(20)), DriftConfig(), **world["known"])
    report = check_drift(*windows(events, WINDOW_S, end_of(21)), DriftConfig(), **world["known"])
    assert not before.drifted, before.reason()
    assert report.drifted and report.outcome == "drift"
    assert report.performance_drifted and report.data_drifted
    assert report.check("listen_through").drifted
    assert report.check("activity_ks").drifted
    assert "listen_through" in report.reason() and "activity_ks" in report.reason()


def test_listeners_moving_to_one_genre_move_item_popularity(
    stable: pl.DataFrame, world: dict[str, Any]
) -> None:
    """Everyone turns to the least followed genre and the model follows them (online
    updates): what is listened to changes, which the item popularity checks see."""
    traffic, listeners = world["traffic"], world["listeners"]
    genre = int(np.argmin(listeners.taste.mean(axis=0)))
    taste = 0.3 * listeners.taste + 0.7 * np.eye(listeners.taste.shape[1])[genre]
    rng = np.random.default_rng(6)
    after = traffic.window(21, shifted(listeners, taste), traffic.slates_for(taste), rng)
    report = check_drift(
        *windows(pl.concat([stable, after]), WINDOW_S, end_of(21)), DriftConfig(), **world["known"]
    )
    assert report.data_drifted
    assert report.check("popularity_psi").drifted, report.check("popularity_psi").detail
    assert report.check("popularity_chi2").drifted, report.check("popularity_chi2").detail


def test_new_users_and_new_items_are_shares_of_current_engagement(
    stable: pl.DataFrame, world: dict[str, Any]
) -> None:
    reference, current = windows(stable, WINDOW_S, end_of(20))
    users = sorted(current.get_column("user_id").unique().to_list())
    items = sorted(current.get_column("item_id").unique().to_list())
    newcomers, fresh = set(users[::2]), set(items[::4])
    current = current.with_columns(
        pl.when(pl.col("user_id").is_in(newcomers))
        .then("new-" + pl.col("user_id"))
        .otherwise(pl.col("user_id"))
        .alias("user_id"),
        pl.when(pl.col("item_id").is_in(fresh))
        .then("new-" + pl.col("item_id"))
        .otherwise(pl.col("item_id"))
        .alias("item_id"),
    )
    report = check_drift(reference, current, DriftConfig(), **world["known"])
    chosen = current.filter(
        pl.col("type").is_in(["like", "playlist_add"])
        | ((pl.col("type") == "listen") & (pl.col("play_ms").fill_null(30_000) >= 30_000))
    )
    known_users, known_items = world["known"]["known_users"], world["known"]["known_items"]
    share_users = sum(u not in known_users for u in chosen.get_column("user_id")) / chosen.height
    share_items = sum(i not in known_items for i in chosen.get_column("item_id")) / chosen.height
    assert share_users > 0.3 and share_items > 0.15  # the renamed ones, and any the model lacks
    assert report.check("new_users").statistic == pytest.approx(share_users)
    assert report.check("new_items").statistic == pytest.approx(share_items)
    assert report.check("new_users").drifted and report.check("new_items").drifted
    untouched = check_drift(*windows(stable, WINDOW_S, end_of(20)), DriftConfig(), **world["known"])
    assert not untouched.check("new_users").drifted


def _listens(users: range, items: list[str], rng: np.random.Generator, base: int) -> list[Any]:
    return [
        (f"u{u}", str(item), "listen", base + u * 1000 + n, None, None, None)
        for u in users
        for n, item in enumerate(rng.choice(items, size=5, replace=False))
    ]


def test_user_vectors_leaving_the_reference_subspace_drift(world: dict[str, Any]) -> None:
    listeners = world["listeners"]
    ids, _ = world["known"]["item_vectors"]
    genre = dict(zip(listeners.item_ids, listeners.item_genre.tolist(), strict=True))
    old = [i for i in ids if genre.get(i, -1) in (0, 1, 2)]
    new = [i for i in ids if genre.get(i, -1) in (3, 4, 5)]
    rng = np.random.default_rng(3)
    reference = events_frame(_listens(range(120), old, rng, START_US))
    same = events_frame(_listens(range(120, 220), old, rng, START_US + 10**10))
    moved = events_frame(_listens(range(120, 220), new, rng, START_US + 10**10))
    vectors = {"item_vectors": world["known"]["item_vectors"]}
    stay = check_drift(reference, same, DriftConfig(), **vectors).check("user_vectors_pca")
    leave = check_drift(reference, moved, DriftConfig(), **vectors).check("user_vectors_pca")
    assert not stay.drifted and stay.statistic < 1.5, stay.detail
    assert leave.drifted and leave.statistic > 2 * stay.statistic, leave.detail
    assert leave.p_value is not None and leave.p_value < 0.01


def test_checks_without_their_input_are_reported_as_not_checked(stable: pl.DataFrame) -> None:
    reference, current = windows(stable.filter(pl.col("type") != "impression"), WINDOW_S)
    report = check_drift(reference, current, DriftConfig())
    assert [c.name for c in report.checks] == list(CHECKS)
    for name in ("new_users", "new_items", "user_vectors_pca", "listen_through"):
        check = report.check(name)
        assert not check.drifted and math.isnan(check.statistic)
        assert check.detail.startswith("not checked:"), check.detail
    assert math.isfinite(report.check("activity_ks").statistic)


def test_too_few_events_give_no_verdict(stable: pl.DataFrame) -> None:
    reference, current = windows(stable, WINDOW_S, end_of(20))
    few = current.head(60)
    report = check_drift(reference, few, DriftConfig(min_events=100))
    assert not report.enough and not report.drifted and report.outcome == "too_few_events"
    n = engagement(few).height
    assert report.current.engagement == n < 100
    assert report.reason().startswith("too few events") and f"{n:,} current" in report.reason()
    assert all(not c.drifted and c.detail.startswith("not checked") for c in report.checks)


def test_windows_are_half_open_and_end_after_the_newest_event() -> None:
    base = START_US
    rows = [("u", "a", "listen", base + s * US, None, None, None) for s in (0, 9, 10, 19, 20)]
    frame = events_frame(rows)
    reference, current = windows(frame, 10.0, base + 20 * US)
    assert reference.get_column("ts_us").to_list() == [base, base + 9 * US]
    assert current.get_column("ts_us").to_list() == [base + 10 * US, base + 19 * US]
    reference, current = windows(frame, 10.0)  # end = newest + 1 us
    assert current.get_column("ts_us").to_list() == [base + 19 * US, base + 20 * US]
    assert reference.get_column("ts_us").to_list() == [base + 9 * US, base + 10 * US]
    with pytest.raises(ConfigError, match="window must be a positive"):
        windows(frame, 0.0)


def test_engagement_is_what_listeners_chose() -> None:
    rows = [
        ("u", "a", "listen", 1, 29_999, None, None),
        ("u", "b", "listen", 2, 30_000, None, None),
        ("u", "c", "listen", 3, None, None, None),
        ("u", "d", "like", 4, None, None, None),
        ("u", "e", "playlist_add", 5, None, None, None),
        ("u", "f", "skip", 6, 1_000, None, None),
        ("u", "g", "dislike", 7, None, None, None),
        ("u", "h", "impression", 8, None, 0, 1.0),
    ]
    assert engagement(events_frame(rows)).get_column("item_id").to_list() == list("bcde")


def test_listen_through_counts_listens_after_the_impression() -> None:
    rows = [
        ("a", "x", "impression", 10, None, 0, 1.0),
        ("a", "y", "impression", 10, None, 1, 1.0),
        ("a", "x", "listen", 20, 60_000, None, None),  # after its impression: a hit
        ("a", "y", "listen", 5, 60_000, None, None),  # before it: not caused by it
        ("b", "z", "impression", 10, None, 0, 1.0),
        ("b", "z", "listen", 11, 10_000, None, None),  # too short: a skip
        ("b", "w", "impression", 10, None, 1, 1.0),
        ("b", "w", "like", 12, None, None, None),  # a like is not a listen
    ]
    shown, listened = listens_per_user(events_frame(rows))
    assert sorted(zip(shown.tolist(), listened.tolist(), strict=True)) == [(2, 0), (2, 1)]


def test_the_listen_through_bootstrap_resamples_listeners_not_impressions() -> None:
    # Ten listeners who always listen and ten who never do, 50 impressions each: the spread of
    # the rate is that of 20 listeners (sd ~0.11), not of 1,000 impressions (sd ~0.016).
    shown = np.full(20, 50, dtype=np.int64)
    listened = np.array([50] * 10 + [0] * 10, dtype=np.int64)
    rates = ratio_bootstrap(shown, listened, 2000, np.random.default_rng(0))
    assert rates.mean() == pytest.approx(0.5, abs=0.02)
    assert 0.08 < rates.std() < 0.14


def _slates(users: int, rate: float, rng: np.random.Generator, base: int) -> pl.DataFrame:
    rows: list[tuple[Any, ...]] = []
    for u in range(users):
        for i in range(10):
            rows.append((f"u{u}", f"i{i}", "impression", base + u, None, i, 1.0))
            if rng.random() < rate:
                rows.append((f"u{u}", f"i{i}", "listen", base + u + 1, 90_000, None, None))
    return events_frame(rows)


@pytest.mark.parametrize(("before", "after", "drifted"), [(0.4, 0.2, True), (0.4, 0.4, False)])
def test_a_significant_listen_through_drop_is_performance_drift(
    before: float, after: float, drifted: bool
) -> None:
    rng = np.random.default_rng(4)
    reference, current = _slates(200, before, rng, START_US), _slates(200, after, rng, START_US)
    check = check_drift(reference, current, DriftConfig()).check("listen_through")
    assert check.drifted is drifted, check.detail
    assert check.statistic == pytest.approx(before - after, abs=0.04)


def test_item_vectors_must_match_their_ids(stable: pl.DataFrame) -> None:
    reference, current = windows(stable, WINDOW_S, end_of(20))
    with pytest.raises(DataError, match="item_vectors: 2 item ids but a matrix of shape"):
        check_drift(reference, current, DriftConfig(), item_vectors=(["a", "b"], np.ones((3, 4))))


def test_every_drift_setting_reaches_the_config() -> None:
    values: dict[str, Any] = {
        "window_s": 120.0, "min_events": 7, "ks_alpha": 0.02, "ks_min_d": 0.3,
        "psi_threshold": 0.3, "psi_alpha": 0.02, "psi_bins": 7, "chi2_alpha": 0.03,
        "chi2_min_v": 0.2, "new_user_rate": 0.5, "new_item_rate": 0.4, "pca_error_ratio": 3.0,
        "pca_variance": 0.8, "pca_alpha": 0.03, "perf_alpha": 0.1, "perf_min_drop": 0.05,
        "bootstrap": 50,
    }  # fmt: skip
    fields = {f.name for f in dataclasses.fields(DriftConfig)}
    assert fields - set(values) == {"seed"}  # a new threshold needs its setting here
    config = Settings(seed=11, **{f"drift_{k}": v for k, v in values.items()}).drift()
    assert dataclasses.asdict(config) == {**values, "seed": 11}


@pytest.mark.parametrize(
    ("field", "value"), [("ks_alpha", 0.0), ("psi_threshold", math.nan), ("bootstrap", 1)]
)
def test_a_threshold_out_of_range_is_refused_by_name(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"drift {field} must be in") as caught:
        DriftConfig(**{field: value})
    assert caught.value.details["field"] == f"drift_{field}"


def test_the_html_report_is_self_contained(
    stable: pl.DataFrame, world: dict[str, Any], tmp_path: Path
) -> None:
    reference, current = windows(stable, WINDOW_S, end_of(20))
    report = check_drift(reference, current, DriftConfig(), **world["known"])
    path = write_html(report, reference, current, tmp_path / "out" / "drift.html")
    text = path.read_text()
    assert text.count("<img") == text.count("data:image/png;base64,") == 3
    assert "src='http" not in text and "<script" not in text and "<link" not in text
    assert all(name in text for name in CHECKS)
    assert report.reason() in text
