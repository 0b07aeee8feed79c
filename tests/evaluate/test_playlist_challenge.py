"""The RecSys Challenge 2018 protocol: split, the 10 categories, evaluation, paired comparison."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from setlist.errors import ConfigError, DataError
from setlist.evaluate.playlist_challenge import (
    CATEGORIES,
    ChallengeCase,
    ChallengeSet,
    build_challenge_set,
    compare_challenge,
    evaluate_challenge,
    split_playlists,
)
from setlist.evaluate.playlists import no_hit_clicks

BY_NAME = {c.name: c for c in CATEGORIES}
N_TRACKS = 1000
ARTIST = np.arange(N_TRACKS) // 10  # artist of track t is t // 10


def fake_playlists(n: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    """n playlists of 3 to 250 tracks (some repeated), pids 1000.. in a shuffled order."""
    rng = np.random.default_rng(seed)
    pids = 1000 + rng.permutation(n)
    lengths = rng.integers(3, 250, size=n)
    tracks = [rng.choice(N_TRACKS, size=m, replace=True) for m in lengths]
    return pids, tracks, [f"list {p}" for p in pids]


# ---------------------------------------------------------------- split


def test_split_is_a_seeded_partition_by_pid() -> None:
    pids = np.arange(500, 600)
    train, held = split_playlists(pids, 10, seed=3)
    assert len(held) == 10 and len(train) == 90
    assert set(train) | set(held) == set(pids) and not set(train) & set(held)
    again = split_playlists(pids[::-1], 10, seed=3)
    np.testing.assert_array_equal(again[1], held)  # the order pids come in does not matter
    assert not np.array_equal(split_playlists(pids, 10, seed=4)[1], held)


def test_split_refuses_bad_input() -> None:
    with pytest.raises(DataError, match="pid 3 more than once"):
        split_playlists([1, 3, 3], 1)
    with pytest.raises(ConfigError, match="n_holdout must be between 1 and 2"):
        split_playlists([1, 2, 3], 3)
    with pytest.raises(DataError, match="integers"):
        split_playlists(["a", "b"], 1)


# ---------------------------------------------------------------- categories


def test_every_case_has_its_categorys_seeds_and_the_rest_as_truth() -> None:
    pids, tracks, names = fake_playlists(300)
    challenge = build_challenge_set(pids, tracks, names, seed=1)
    by_pid = dict(zip(pids.tolist(), tracks, strict=True))
    assert [c.pid for c in challenge.cases] == sorted(c.pid for c in challenge.cases)
    for case in challenge.cases:
        cat = BY_NAME[case.category]
        playlist = by_pid[case.pid]
        _, first = np.unique(playlist, return_index=True)
        distinct = playlist[np.sort(first)]
        assert len(case.seeds) == cat.n_seeds
        assert len(case.truth) >= challenge.min_truth
        assert not set(case.seeds) & set(case.truth)  # seeds are never in the truth
        assert len(set(case.truth)) == len(case.truth)  # each held-out track once
        # seeds and truth together are the playlist's distinct tracks, in playlist order
        merged = sorted(
            [*case.seeds, *case.truth], key=lambda t: int(np.flatnonzero(distinct == t)[0])
        )
        np.testing.assert_array_equal(merged, distinct)
        if not cat.random_seeds:
            np.testing.assert_array_equal(case.seeds, distinct[: cat.n_seeds])
        assert case.name == (f"list {case.pid}" if cat.with_title else None)
    title_only = [c for c in challenge.cases if c.category == "title_only"]
    assert title_only and all(len(c.seeds) == 0 and c.name for c in title_only)


def test_short_playlists_are_skipped_and_long_ones_fill_every_category() -> None:
    pids, tracks, names = fake_playlists(300)
    challenge = build_challenge_set(pids, tracks, names, seed=1, min_truth=5)
    n_distinct = {int(p): len(np.unique(t)) for p, t in zip(pids, tracks, strict=True)}
    assert set(challenge.skipped) == {p for p, m in n_distinct.items() if m < 5}
    assert len(challenge.cases) + len(challenge.skipped) == 300
    counts = challenge.counts()
    assert list(counts) == [c.name for c in CATEGORIES]
    # 100-seed categories need >= 105 distinct tracks; the short categories take the rest
    long_enough = sum(m >= 105 for m in n_distinct.values())
    assert counts["title_first_100"] + counts["title_random_100"] <= long_enough
    assert min(counts.values()) >= 15


def test_playlists_that_are_all_long_are_split_evenly() -> None:
    rng = np.random.default_rng(0)
    tracks = [rng.permutation(N_TRACKS)[:120] for _ in range(100)]
    challenge = build_challenge_set(np.arange(100), tracks, ["x"] * 100, seed=2)
    assert set(challenge.counts().values()) == {10}


def test_random_seeds_are_seeded_reproducible_and_not_the_first_tracks() -> None:
    rng = np.random.default_rng(0)
    tracks = [rng.permutation(N_TRACKS)[:200] for _ in range(40)]
    random_cats = [BY_NAME["title_random_25"], BY_NAME["title_random_100"]]
    build = lambda seed: build_challenge_set(  # noqa: E731
        np.arange(40), tracks, ["x"] * 40, seed=seed, categories=random_cats
    )
    a, b, c = build(7), build(7), build(8)
    for x, y in zip(a.cases, b.cases, strict=True):
        assert x.category == y.category
        np.testing.assert_array_equal(x.seeds, y.seeds)
    assert any(
        not np.array_equal(x.seeds, y.seeds)
        for x, y in zip(a.cases, c.cases, strict=True)
        if x.category == y.category
    )
    for case in a.cases:
        n = len(case.seeds)
        assert not np.array_equal(case.seeds, tracks[case.pid][:n])


def test_playlists_with_tracks_unseen_in_training_are_skipped() -> None:
    tracks = [np.arange(0, 20), np.arange(20, 40)]
    challenge = build_challenge_set([1, 2], tracks, ["a", "b"], train_tracks=np.arange(0, 30))
    assert [c.pid for c in challenge.cases] == [1]
    assert challenge.skipped.tolist() == [2]


def test_bad_challenge_input_is_refused() -> None:
    with pytest.raises(DataError, match="one entry per held-out playlist"):
        build_challenge_set([1, 2], [[1, 2]], ["a", "b"])
    with pytest.raises(DataError, match="unique and non-negative"):
        build_challenge_set([1, 1], [[1], [2]], ["a", "b"])
    with pytest.raises(DataError, match="pids must be a 1-D array of integers"):
        build_challenge_set(["a"], [[1]], ["a"])
    with pytest.raises(DataError, match="playlist 1 has no name"):
        build_challenge_set([1], [[1]], [None])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="min_truth must be at least 1"):
        build_challenge_set([1], [[1]], ["a"], min_truth=0)
    with pytest.raises(DataError, match="tracks of playlist 1 must be a flat list of integer"):
        build_challenge_set([1], [["a", "b"]], ["a"])


# ---------------------------------------------------------------- evaluation


def oracle(challenge: ChallengeSet) -> Callable[[np.ndarray, str | None, int], list[int]]:
    """Answers each case with its own truth (cases told apart by their seeds and name)."""
    truth = {(tuple(c.seeds.tolist()), c.name): c.truth for c in challenge.cases}
    assert len(truth) == len(challenge.cases)

    def recommend(seeds: np.ndarray, name: str | None, k: int) -> list[int]:
        answer: list[int] = truth[(tuple(seeds.tolist()), name)][:k].tolist()
        return answer

    return recommend


def test_a_recommender_that_returns_the_truth_scores_perfectly() -> None:
    pids, tracks, names = fake_playlists(120)
    challenge = build_challenge_set(pids, tracks, names, seed=0)
    report = evaluate_challenge(challenge, oracle(challenge), ARTIST, n_resamples=50)
    assert report.per_playlist.height == len(challenge.cases)
    assert (report.per_playlist["r_precision"] == 1.0).all()
    np.testing.assert_allclose(report.per_playlist["ndcg"].to_numpy(), 1.0)
    assert (report.per_playlist["clicks"] == 0.0).all()
    table = report.table
    assert table["category"].to_list() == [*challenge.counts(), "all"]
    assert table["n_playlists"].to_list() == [
        *challenge.counts().values(),
        120 - len(challenge.skipped),
    ]
    assert (table["r_precision"] == 1.0).all() and (table["r_precision_low"] == 1.0).all()


# Two hand-made cases; the artist of track t is t // 10.
#   pid 1, title only, G = {10, 11, 12, 13} (artist 1)
#   pid 2, first 5,    G = {20, 21} (artist 2), seeds 1..5
# The "popular" recommender always answers [10, 20, 30, 31, 32, ...]:
#   pid 1: R[:4] = 10 20 30 31 -> 1 hit; missed artist 1, wrong artists 2, 3 -> R-prec 1/4
#          NDCG: hit at rank 1 over 4 ideal hits; clicks 0
#   pid 2: R[:2] = 10 20 -> 1 hit; missed 21 (artist 2), wrong 10 (artist 1) -> R-prec 1/2
#          NDCG: hit at rank 2 over 2 ideal hits; clicks 0
HAND = ChallengeSet(
    cases=(
        ChallengeCase(1, "title_only", "rainy day", np.zeros(0, np.int64), np.arange(10, 14)),
        ChallengeCase(2, "first_5", None, np.arange(1, 6), np.array([20, 21])),
    ),
    skipped=np.zeros(0, np.int64),
    min_truth=1,
    seed=0,
)
POPULAR = [10, 20, *range(30, 60)]


def popular(seeds: np.ndarray, name: str | None, k: int) -> list[int]:
    return [t for t in POPULAR if t not in set(seeds.tolist())][:k]


def test_a_popularity_recommender_scores_what_the_definitions_give_by_hand() -> None:
    report = evaluate_challenge(HAND, popular, ARTIST, n_resamples=20)
    rows = report.per_playlist.sort("pid")
    idcg4 = 1 + 1 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    np.testing.assert_allclose(rows["r_precision"].to_numpy(), [0.25, 0.5])
    np.testing.assert_allclose(
        rows["ndcg"].to_numpy(), [1 / idcg4, (1 / math.log2(3)) / (1 + 1 / math.log2(3))]
    )
    np.testing.assert_allclose(rows["clicks"].to_numpy(), [0, 0])
    every = report.table.filter(pl.col("category") == "all")
    assert every["r_precision"].item() == pytest.approx(0.375)
    # precomputed lists keyed by pid give the same report
    lists = {c.pid: popular(c.seeds, c.name, 500) for c in HAND.cases}
    assert evaluate_challenge(HAND, lists, ARTIST, n_resamples=20).table.equals(report.table)


def test_nothing_relevant_scores_zero_and_51_clicks() -> None:
    report = evaluate_challenge(HAND, lambda s, n, k: list(range(100, 600)), ARTIST, n_resamples=20)
    assert no_hit_clicks(500) == 51
    assert (report.per_playlist["clicks"] == 51).all()
    assert (report.per_playlist["r_precision"] == 0).all()


def test_evaluation_refuses_missing_lists_and_seeds_in_the_answer() -> None:
    with pytest.raises(DataError, match="no recommendations for 1 test playlists, e.g. pid 2"):
        evaluate_challenge(HAND, {1: [10]}, ARTIST)
    with pytest.raises(DataError, match="playlist 2 recommends its seed track 3"):
        evaluate_challenge(HAND, lambda s, n, k: [3, 20], ARTIST)


def test_paired_comparison_of_two_recommenders() -> None:
    pids, tracks, names = fake_playlists(150, seed=4)
    challenge = build_challenge_set(pids, tracks, names, seed=0)
    good = evaluate_challenge(challenge, oracle(challenge), ARTIST, n_resamples=200)
    none = evaluate_challenge(challenge, lambda s, n, k: [], ARTIST, n_resamples=200)
    better = compare_challenge(good, none, n_resamples=200)
    assert better.diff.mean == pytest.approx(1.0)
    assert better.significantly_better() and better.wins == len(challenge.cases)
    same = compare_challenge(good, good, metric="ndcg", category="title_only")
    assert same.p_value == 1.0 and same.n_users == challenge.counts()["title_only"]
    with pytest.raises(DataError, match="same cases"):
        compare_challenge(good, evaluate_challenge(HAND, popular, ARTIST, n_resamples=10))
    with pytest.raises(ConfigError, match="metric must be one of"):
        compare_challenge(good, none, metric="map")


def test_the_recommender_sees_seeds_title_and_k_as_the_category_allows() -> None:
    calls: list[tuple[list[int], str | None, int]] = []

    def recording(seeds: np.ndarray, name: str | None, k: int) -> list[int]:
        calls.append((seeds.tolist(), name, k))
        return [3, 20]  # 3 is a seed of pid 2

    report = evaluate_challenge(HAND, recording, ARTIST, k=50, on_seed="miss", n_resamples=10)
    assert calls == [([], "rainy day", 50), ([1, 2, 3, 4, 5], None, 50)]
    assert report.k == 50
    # pid 2: the seed at rank 1 is a miss, 20 at rank 2 a hit -> clicks 0, R-precision 1/2
    row = report.per_playlist.filter(pl.col("pid") == 2)
    assert row["r_precision"].item() == pytest.approx(0.5)
    assert row["ndcg"].item() == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
