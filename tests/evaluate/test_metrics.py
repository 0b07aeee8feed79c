"""Ranking metrics: a worked example, a naive reference, properties over random rankings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from setlist.errors import ConfigError, DataError
from setlist.evaluate.metrics import (
    average_precision_at_k,
    catalogue_coverage,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

METRICS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "map": average_precision_at_k,
    "ndcg": ndcg_at_k,
    "hit_rate": hit_rate_at_k,
}


def relevant_csr(sets: list[set[int]], n_items: int) -> sp.csr_matrix:
    rows = [u for u, s in enumerate(sets) for _ in s]
    cols = [i for s in sets for i in sorted(s)]
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(sets), n_items))


# The worked example (10 items):
#   user 0 ranks [3, 1, 7, 0, 5], relevant {1, 5, 8}: hits at positions 2 and 5 (1-based)
#   user 1 ranks [2, 4, -, -, -], relevant {2}:       hit at position 1, then padding
#   user 2 ranks [0, 1, 2, 3, 4], relevant {9}:       no hit
#   user 3 ranks [6, 7, 8, 9, 0], relevant {}:        scores 0 everywhere by convention
RANKED = np.array(
    [[3, 1, 7, 0, 5], [2, 4, -1, -1, -1], [0, 1, 2, 3, 4], [6, 7, 8, 9, 0]], dtype=np.int64
)
RELEVANT = relevant_csr([{1, 5, 8}, {2}, {9}, set()], n_items=10)
L3, L6 = math.log2(3), math.log2(6)
EXPECTED = {
    # user 0 at k=5: P = 2/5; R = 2/3; AP = (1/2 + 2/5) / min(5, 3);
    #   NDCG = (1/log2 3 + 1/log2 6) / (1 + 1/log2 3 + 1/log2 4)
    # user 1 at k=5: P = 1/5 (padding is a miss); R = 1; AP = 1/1; NDCG = 1
    5: {
        "precision": [0.4, 0.2, 0.0, 0.0],
        "recall": [2 / 3, 1.0, 0.0, 0.0],
        "map": [0.9 / 3, 1.0, 0.0, 0.0],
        "ndcg": [(1 / L3 + 1 / L6) / (1 + 1 / L3 + 0.5), 1.0, 0.0, 0.0],
        "hit_rate": [1.0, 1.0, 0.0, 0.0],
    },
    # user 0 at k=2: P = 1/2; R = 1/3; AP = (1/2) / min(2, 3); NDCG = (1/log2 3) / (1 + 1/log2 3)
    2: {
        "precision": [0.5, 0.5, 0.0, 0.0],
        "recall": [1 / 3, 1.0, 0.0, 0.0],
        "map": [0.25, 1.0, 0.0, 0.0],
        "ndcg": [(1 / L3) / (1 + 1 / L3), 1.0, 0.0, 0.0],
        "hit_rate": [1.0, 1.0, 0.0, 0.0],
    },
}


@pytest.mark.parametrize("k", [2, 5])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_worked_example(name: str, k: int) -> None:
    got = METRICS[name](RANKED, RELEVANT, k)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, EXPECTED[k][name], rtol=1e-12)


def test_hit_matrix_of_worked_example() -> None:
    expected = np.zeros_like(RANKED, dtype=bool)
    expected[0, [1, 4]] = True
    expected[1, 0] = True
    np.testing.assert_array_equal(hit_matrix(RANKED, RELEVANT), expected)


def test_ranking_metrics_reuses_one_lookup_and_agrees() -> None:
    got = ranking_metrics(RANKED, RELEVANT, ks=(2, 5))
    assert set(got) == {f"{name}@{k}" for name in METRICS for k in (2, 5)}
    for k in (2, 5):
        for name in METRICS:
            np.testing.assert_allclose(got[f"{name}@{k}"], EXPECTED[k][name], rtol=1e-12)


def test_k_beyond_ranking_counts_padding_as_misses() -> None:
    # User 1 at k=8: still one hit, P = 1/8; user 0: P = 2/8.
    np.testing.assert_allclose(precision_at_k(RANKED, RELEVANT, 8), [0.25, 0.125, 0.0, 0.0])
    np.testing.assert_allclose(recall_at_k(RANKED, RELEVANT, 8), [2 / 3, 1.0, 0.0, 0.0])


def test_catalogue_coverage() -> None:
    # top-2 lists hold {3, 1, 2, 4, 0, 1, 6, 7} -> 7 distinct of 10; top-5 add 5, 8, 9 -> 10.
    assert catalogue_coverage(RANKED, n_items=10, k=2) == pytest.approx(0.7)
    assert catalogue_coverage(RANKED, n_items=10, k=5) == pytest.approx(1.0)
    assert catalogue_coverage(RANKED, n_items=20, k=1) == pytest.approx(4 / 20)


def test_explicit_zeros_and_duplicates_in_relevant_are_handled() -> None:
    # A stored 0 is not relevant; a duplicate entry counts once.
    rel = sp.csr_matrix(
        (np.array([1.0, 0.0, 1.0, 1.0]), np.array([2, 3, 5, 5]), np.array([0, 4])), shape=(1, 6)
    )
    ranked = np.array([[3, 5, 2]], dtype=np.int64)
    np.testing.assert_array_equal(hit_matrix(ranked, rel), [[False, True, True]])
    np.testing.assert_allclose(recall_at_k(ranked, rel, 3), [1.0])


def test_invalid_inputs_are_refused() -> None:
    with pytest.raises(ConfigError):
        precision_at_k(RANKED, RELEVANT, 0)
    with pytest.raises(DataError):
        hit_matrix(RANKED[:2], RELEVANT)
    with pytest.raises(DataError):
        hit_matrix(np.array([[10]] * 4, dtype=np.int64), RELEVANT)
    with pytest.raises(DataError):
        catalogue_coverage(RANKED, n_items=5, k=5)


def test_matches_implicit_ranking_metrics() -> None:
    """MAP and NDCG equal implicit's; its 'precision' is hits / sum of min(k, |relevant|)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.evaluation import ranking_metrics_at_k

    rng = np.random.default_rng(3)
    dense = (rng.random((40, 30)) < 0.3).astype(np.float32)
    test_mask = (rng.random(dense.shape) < 0.3) & (dense > 0)
    train = sp.csr_matrix(np.where(test_mask, 0, dense))
    test = sp.csr_matrix(np.where(test_mask, 1.0, 0.0).astype(np.float32))
    model = AlternatingLeastSquares(factors=4, iterations=3, random_state=0)
    model.fit(train, show_progress=False)
    reference = ranking_metrics_at_k(model, train, test, K=5, show_progress=False)

    users = np.flatnonzero(np.diff(test.indptr))
    ids, _ = model.recommend(users, train[users], N=5)
    ranked = np.asarray(ids, dtype=np.int64)
    relevant = test[users]
    assert average_precision_at_k(ranked, relevant, 5).mean() == pytest.approx(reference["map"])
    assert ndcg_at_k(ranked, relevant, 5).mean() == pytest.approx(reference["ndcg"])
    hits = hit_matrix(ranked, relevant).sum()
    divisor = np.minimum(np.diff(relevant.indptr), 5).sum()
    assert hits / divisor == pytest.approx(reference["precision"])


# --- properties ----------------------------------------------------------------------------


@st.composite
def rankings(draw: st.DrawFn) -> tuple[np.ndarray, sp.csr_matrix, list[set[int]]]:
    """A few users, each a ranking of distinct items (maybe short, padded) and a relevant set."""
    n_items = draw(st.integers(1, 20))
    n_users = draw(st.integers(1, 5))
    k_max = draw(st.integers(1, 10))
    ranked = np.full((n_users, k_max), -1, dtype=np.int64)
    sets: list[set[int]] = []
    for u in range(n_users):
        order = draw(st.permutations(range(n_items)))
        length = draw(st.integers(0, min(k_max, n_items)))
        ranked[u, :length] = order[:length]
        sets.append(draw(st.sets(st.integers(0, n_items - 1))))
    return ranked, relevant_csr(sets, n_items), sets


def naive(name: str, ranked: np.ndarray, sets: list[set[int]], k: int) -> list[float]:
    """The definitions written out one user at a time, as a reference."""
    out = []
    for row, rel in zip(ranked, sets, strict=True):
        top = [int(x) for x in row[:k]]
        hits = [x >= 0 and x in rel for x in top]
        n_hits = sum(hits)
        if not rel:
            out.append(0.0)
        elif name == "precision":
            out.append(n_hits / k)
        elif name == "recall":
            out.append(n_hits / len(rel))
        elif name == "hit_rate":
            out.append(float(n_hits > 0))
        elif name == "map":
            ap = sum(sum(hits[: i + 1]) / (i + 1) for i, h in enumerate(hits) if h)
            out.append(ap / min(k, len(rel)))
        else:
            dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(hits) if h)
            idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel))))
            out.append(dcg / idcg)
    return out


@settings(max_examples=150, deadline=None)
@given(case=rankings(), k=st.integers(1, 12))
def test_agrees_with_naive_reference_and_is_bounded(
    case: tuple[np.ndarray, sp.csr_matrix, list[set[int]]], k: int
) -> None:
    ranked, relevant, sets = case
    for name, fn in METRICS.items():
        got = fn(ranked, relevant, k)
        assert np.all((got >= 0.0) & (got <= 1.0 + 1e-12)), name
        np.testing.assert_allclose(got, naive(name, ranked, sets, k), atol=1e-12, err_msg=name)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n_items=st.integers(2, 20), k=st.integers(1, 10))
def test_perfect_ranking_scores_one(data: st.DataObject, n_items: int, k: int) -> None:
    n_rel = data.draw(st.integers(min(k, n_items), n_items))
    order = data.draw(st.permutations(range(n_items)))
    rel = set(order[:n_rel])
    ranked = np.array([order[: min(k, n_items)]], dtype=np.int64)  # relevant items first
    relevant = relevant_csr([rel], n_items)
    assert ndcg_at_k(ranked, relevant, k)[0] == pytest.approx(1.0)
    assert average_precision_at_k(ranked, relevant, k)[0] == pytest.approx(1.0)
    if n_rel >= k:
        assert precision_at_k(ranked, relevant, k)[0] == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(case=rankings(), seed=st.integers(0, 2**16))
def test_permuting_non_relevant_items_changes_nothing(
    case: tuple[np.ndarray, sp.csr_matrix, list[set[int]]], seed: int
) -> None:
    ranked, relevant, _ = case
    hits = hit_matrix(ranked, relevant)
    shuffled = ranked.copy()
    rng = np.random.default_rng(seed)
    for u in range(len(ranked)):
        misses = np.flatnonzero(~hits[u])  # non-relevant items and padding slots
        shuffled[u, misses] = rng.permutation(ranked[u, misses])
    k = ranked.shape[1]
    for fn in (precision_at_k, ndcg_at_k, average_precision_at_k):
        np.testing.assert_allclose(fn(shuffled, relevant, k), fn(ranked, relevant, k))


@settings(max_examples=150, deadline=None)
@given(case=rankings(), k=st.integers(1, 12))
def test_ndcg_is_one_exactly_when_hits_fill_the_top(
    case: tuple[np.ndarray, sp.csr_matrix, list[set[int]]], k: int
) -> None:
    ranked, relevant, sets = case
    got = ndcg_at_k(ranked, relevant, k)
    hits = hit_matrix(ranked, relevant)
    for u, rel in enumerate(sets):
        need = min(k, len(rel))
        top_filled = bool(rel) and need <= hits.shape[1] and bool(hits[u, :need].all())
        assert bool(np.isclose(got[u], 1.0)) == top_filled


@settings(max_examples=100, deadline=None)
@given(case=rankings())
def test_recall_and_hit_rate_are_monotone_in_k(
    case: tuple[np.ndarray, sp.csr_matrix, list[set[int]]],
) -> None:
    ranked, relevant, _ = case
    for fn in (recall_at_k, hit_rate_at_k):
        curves = [fn(ranked, relevant, k) for k in range(1, ranked.shape[1] + 3)]
        for smaller, larger in zip(curves, curves[1:], strict=False):
            assert np.all(smaller <= larger + 1e-12)
