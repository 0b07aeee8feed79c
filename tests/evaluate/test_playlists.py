"""RecSys Challenge 2018 metrics: hand-computed answers, a naive reference, properties, errors."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from setlist.errors import ConfigError, DataError
from setlist.evaluate.playlists import (
    challenge_metrics,
    ndcg,
    no_hit_clicks,
    r_precision,
    recommended_songs_clicks,
    track_r_precision,
)

# Artists A=0, B=1, C=2: tracks 1, 2, 5, 6 are by A; 3, 7 by B; 4, 8, 9 by C.
ART = {1: 0, 2: 0, 3: 1, 4: 2, 5: 0, 6: 0, 7: 1, 8: 2, 9: 2}


def rp(recs: list[int], truth: list[int], **kw: object) -> float:
    return float(r_precision([recs], [truth], ART, **kw)[0])  # type: ignore[arg-type]


# ---------------------------------------------------------------- R-precision, artist credit


def test_r_precision_counts_tracks_and_a_quarter_per_missed_artist() -> None:
    # G = {1 (A), 2 (A), 3 (B)}, R[:3] = [1, 5 (A), 7 (B)]: track 1 right; 2 (A) and 3 (B)
    # missed, and the wrong 5 and 7 bring their artists A and B: (1 + 0.25 * 2) / 3
    assert rp([1, 5, 7, 4], [1, 2, 3]) == pytest.approx(0.5)
    assert float(track_r_precision([[1, 5, 7, 4]], [[1, 2, 3]])[0]) == pytest.approx(1 / 3)


def test_a_right_artist_counts_once_per_artist() -> None:
    # G = {1, 2}, both by A; R = [5, 6], both by A and wrong: one artist, one credit
    assert rp([5, 6], [1, 2]) == pytest.approx(0.25 / 2)


def test_a_track_match_never_also_counts_its_artist() -> None:
    # perfect list: exactly 1, no 0.25 on top
    assert rp([1, 3], [1, 3]) == pytest.approx(1.0)
    # G = {1 (A), 3 (B)}, R = [1, 5 (A)]: A's only held-out track was matched, 3 (B) was missed
    assert rp([1, 5], [1, 3]) == pytest.approx(0.5)
    # G = {1 (A), 2 (A)}, R = [1, 5 (A)]: 2 by A was missed, so 5 earns A's credit
    assert rp([1, 5], [1, 2]) == pytest.approx((1 + 0.25) / 2)


def test_only_the_first_g_recommendations_count_for_r_precision() -> None:
    # |G| = 2: tracks and artists at rank 3 and beyond are ignored
    assert rp([8, 9, 1, 2], [1, 2]) == 0.0
    assert rp([8, 9, 5], [1, 2]) == 0.0


def test_duplicate_truth_counts_once() -> None:
    assert rp([1, 8], [1, 1, 3]) == pytest.approx(0.5)


# ---------------------------------------------------------------- NDCG


def test_ndcg_by_hand() -> None:
    # hits at ranks 2 and 4 of G = {1, 2, 3}: (1/log2 3 + 1/log2 5) / (1 + 1/log2 3 + 1/log2 4)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.5)
    assert float(ndcg([[9, 1, 8, 2]], [[1, 2, 3]])[0]) == pytest.approx(expected)


def test_ndcg_ideal_is_capped_at_k() -> None:
    # |G| = 3 > k = 2: the ideal holds 2 hits, so two hits first is perfect
    assert float(ndcg([[1, 2]], [[1, 2, 3]], k=2)[0]) == pytest.approx(1.0)
    # a hit past k does not count
    assert float(ndcg([[8, 9, 1]], [[1]], k=2)[0]) == 0.0


# ---------------------------------------------------------------- clicks


@pytest.mark.parametrize(
    ("rank", "clicks"), [(1, 0), (10, 0), (11, 1), (20, 1), (21, 2), (500, 49)]
)
def test_clicks_are_pages_of_ten_before_the_first_hit(rank: int, clicks: int) -> None:
    recs = list(range(100, 100 + rank - 1)) + [1]
    assert float(recommended_songs_clicks([recs], [[1, 2]])[0]) == clicks


def test_no_relevant_track_gives_51_clicks() -> None:
    assert float(recommended_songs_clicks([list(range(100, 600))], [[1]])[0]) == 51.0
    assert float(recommended_songs_clicks([[]], [[1]])[0]) == 51.0
    # a hit past k = 500 is not seen
    assert float(recommended_songs_clicks([[*range(100, 600), 1]], [[1]])[0]) == 51.0
    assert no_hit_clicks(500) == 51
    assert no_hit_clicks(100) == 11
    assert no_hit_clicks(25) == 4  # ceil(25 / 10) + 1


def test_k_other_than_500_cuts_the_lists() -> None:
    out = challenge_metrics([[9, 8, 1]], [[1]], ART, k=2)
    assert out["clicks"][0] == no_hit_clicks(2) == 2
    assert out["ndcg"][0] == 0.0


def test_challenge_metrics_agree_with_the_single_functions() -> None:
    recs = [[1, 5, 7, 4], [9, 1, 8, 2], [8, 9]]
    truth = [[1, 2, 3], [1, 2, 3], [4]]
    out = challenge_metrics(recs, truth, ART)
    np.testing.assert_allclose(out["r_precision"], r_precision(recs, truth, ART))
    np.testing.assert_allclose(out["ndcg"], ndcg(recs, truth))
    np.testing.assert_allclose(out["clicks"], recommended_songs_clicks(recs, truth))
    np.testing.assert_allclose(out["n_truth"], [3, 3, 1])
    # artists as an array indexed by track id give the same answer
    as_array = np.array([ART.get(t, 3) for t in range(10)])
    np.testing.assert_allclose(r_precision(recs, truth, as_array), out["r_precision"])


# ---------------------------------------------------------------- seeds and bad input


def test_a_seed_in_the_recommendations_is_an_error_naming_the_playlist() -> None:
    with pytest.raises(DataError, match=r"playlist 'p7' recommends its seed track 6 at rank 2"):
        challenge_metrics([[1, 6]], [[1, 2]], ART, seeds=[[6]], playlist_ids=["p7"])


def test_a_seed_can_be_scored_as_a_miss_without_artist_credit() -> None:
    # seed 6 (A) at rank 2 takes its position, is no hit and earns no credit for A (track 2)
    out = challenge_metrics([[1, 6, 2]], [[1, 2]], ART, seeds=[[6]], on_seed="miss")
    assert out["r_precision"][0] == pytest.approx(0.5)
    # the same list without the seed flag: 6 is a wrong track by A, credit for the missed 2
    plain = challenge_metrics([[1, 6, 2]], [[1, 2]], ART)
    assert plain["r_precision"][0] == pytest.approx(0.625)
    assert out["ndcg"][0] == plain["ndcg"][0]


def test_a_duplicate_recommendation_is_an_error_naming_the_playlist() -> None:
    with pytest.raises(DataError, match=r"playlist 12 lists track 5 twice in its first 500"):
        challenge_metrics([[1, 2], [5, 3, 5]], [[1], [3]], ART, playlist_ids=[11, 12])
    # a duplicate beyond k is cut away with the rest of the list
    out = challenge_metrics([[5, 3, 5]], [[3]], ART, k=2)
    assert out["clicks"][0] == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"truth": [[]]}, DataError, "playlist 0 has no held-out track"),
        ({"recommendations": [[1, -2]]}, DataError, "negative track id -2"),
        ({"recommendations": [[1.5]]}, DataError, "integer track ids"),
        ({"recommendations": [[1], [2]]}, DataError, "recommendations has 2 entries"),
        ({"k": 0}, ConfigError, "k must be a positive integer"),
        ({"on_seed": "skip"}, ConfigError, "on_seed must be"),
        ({"seeds": [[3]]}, DataError, "seed track 3 in its truth"),
        ({"truth": [[42]]}, DataError, "no artist for track 42 in the truth"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    args: dict[str, object] = {"recommendations": [[1, 8]], "truth": [[3]], "artist_of": ART}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        challenge_metrics(**args)  # type: ignore[arg-type]


# ---------------------------------------------------------------- a naive reference, properties

N_TRACKS = 40


def artist(track: int) -> int:
    return track % 7


def naive(recs: list[int], truth: list[int], k: int = 500) -> tuple[float, float, float]:
    """The definitions written out per playlist, loops and sets."""
    r = recs[:k]
    g = set(truth)
    head = r[: len(g)]
    matched = [t for t in head if t in g]
    missed_artists = {artist(t) for t in g if t not in head}
    wrong_artists = {artist(t) for t in head if t not in g}
    rprec = (len(matched) + 0.25 * len(missed_artists & wrong_artists)) / len(g)
    dcg = sum(1 / math.log2(i + 2) for i, t in enumerate(r) if t in g)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(len(g), k)))
    first = next((i for i, t in enumerate(r) if t in g), None)
    clicks = (first // 10) if first is not None else math.ceil(k / 10) + 1
    return rprec, dcg / idcg, float(clicks)


playlist = st.tuples(
    st.permutations(list(range(N_TRACKS))).flatmap(
        lambda p: st.integers(0, N_TRACKS).map(lambda m: list(p[:m]))
    ),
    st.sets(st.integers(0, N_TRACKS - 1), min_size=1, max_size=15).map(sorted),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(playlist, min_size=1, max_size=6), st.integers(1, 45))
def test_vectorised_metrics_match_the_naive_definitions(
    cases: list[tuple[list[int], list[int]]], k: int
) -> None:
    recs, truth = [c[0] for c in cases], [c[1] for c in cases]
    art = np.array([artist(t) for t in range(N_TRACKS)])
    out = challenge_metrics(recs, truth, art, k=k)
    expected = np.array([naive(r, g, k) for r, g in cases])
    np.testing.assert_allclose(out["r_precision"], expected[:, 0])
    np.testing.assert_allclose(out["ndcg"], expected[:, 1])
    np.testing.assert_allclose(out["clicks"], expected[:, 2])
    assert ((out["r_precision"] >= 0) & (out["r_precision"] <= 1)).all()
    assert ((out["ndcg"] >= 0) & (out["ndcg"] <= 1 + 1e-12)).all()


@settings(max_examples=60, deadline=None)
@given(playlist, st.randoms(use_true_random=False))
def test_a_perfect_list_scores_one_one_and_zero_clicks(
    case: tuple[list[int], list[int]], rnd: random.Random
) -> None:
    recs, truth = case
    head = list(truth)
    rnd.shuffle(head)
    tail = [t for t in recs if t not in set(truth)]
    art = np.array([artist(t) for t in range(N_TRACKS)])
    out = challenge_metrics([head + tail], [truth], art)
    assert out["r_precision"][0] == pytest.approx(1.0)
    assert out["ndcg"][0] == pytest.approx(1.0)
    assert out["clicks"][0] == 0


@settings(max_examples=60, deadline=None)
@given(playlist, st.randoms(use_true_random=False))
def test_shuffling_beyond_g_leaves_r_precision_unchanged(
    case: tuple[list[int], list[int]], rnd: random.Random
) -> None:
    recs, truth = case
    cut = len(set(truth))
    tail = recs[cut:]
    rnd.shuffle(tail)
    art = np.array([artist(t) for t in range(N_TRACKS)])
    before = r_precision([recs], [truth], art)
    after = r_precision([recs[:cut] + tail], [truth], art)
    assert before[0] == after[0]
