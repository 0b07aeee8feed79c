"""Top-k ranking metrics over a ranked matrix and CSR relevant sets, vectorised over users.

Every function takes ``ranked`` (int64 ``[n_users, k_max]``: item rows best first, ``-1`` for
padding, distinct items per row) and ``relevant`` (CSR ``[n_users, n_items]``, one row per ranked
row, a stored nonzero marks a relevant item; binary relevance) and returns one float64 per user.
A user with no relevant item scores 0 everywhere; the protocol skips such users before it gets here.

The hit matrix (is ``ranked[u, j]`` relevant to ``u``?) is the only step that touches the sparse
relevant sets; it is one ``searchsorted`` over ``row * n_items + item`` keys, so 360k users cost a
few vector operations and no Python loop. Pass a precomputed ``hits`` to compute several metrics
from one lookup, or call :func:`ranking_metrics`.

Definitions (those of implicit's ``ranking_metrics_at_k`` except precision, which it divides by
``min(k, |relevant|)`` and micro-averages; ours is the textbook ``hits / k`` per user):

- precision@k = hits in top k / k
- recall@k    = hits in top k / |relevant|  (not / min(k, |relevant|): recall@10 of a user with 30
  relevant items is at most 1/3, which keeps recall monotone in k)
- map@k       = sum over hit positions i of precision@i, / min(k, |relevant|)
- ndcg@k      = sum of 1/log2(i+2) over hits at 0-based position i, / the same sum over the first
  min(k, |relevant|) positions (binary gains)
- hit_rate@k  = 1 if any relevant item is in the top k
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.errors import ConfigError, DataError

IntArray = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

PER_USER_METRICS = ("precision", "recall", "map", "ndcg", "hit_rate")


def hit_matrix(ranked: IntArray, relevant: sp.csr_matrix) -> BoolArray:
    """``hits[u, j]`` is True when ``ranked[u, j]`` is one of user u's relevant items."""
    ranked = _check_ranked(ranked, relevant)
    rel = _canonical(relevant)
    n_users, n_items = rel.shape
    keys = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rel.indptr)) * n_items
    keys += rel.indices.astype(np.int64)
    if keys.size == 0:
        return np.zeros(ranked.shape, dtype=np.bool_)
    valid = ranked >= 0
    query = np.arange(n_users, dtype=np.int64)[:, None] * n_items + np.where(valid, ranked, 0)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    hits: BoolArray = valid & (keys[pos] == query)
    return hits


def n_relevant(relevant: sp.csr_matrix) -> IntArray:
    """Size of each user's relevant set (stored nonzeros, explicit zeros not counted)."""
    counts: IntArray = np.diff(_canonical(relevant).indptr).astype(np.int64)
    return counts


def precision_at_k(
    ranked: IntArray, relevant: sp.csr_matrix, k: int, hits: BoolArray | None = None
) -> Float64Array:
    """Hits in the top k over k (padding counts as a miss: a short list is not rewarded)."""
    top = _top_hits(ranked, relevant, k, hits)
    counts: Float64Array = top.sum(axis=1, dtype=np.float64)
    return counts / k


def recall_at_k(
    ranked: IntArray, relevant: sp.csr_matrix, k: int, hits: BoolArray | None = None
) -> Float64Array:
    """Hits in the top k over |relevant| (the standard form, monotone in k)."""
    top = _top_hits(ranked, relevant, k, hits)
    return _safe_divide(top.sum(axis=1, dtype=np.float64), n_relevant(relevant))


def average_precision_at_k(
    ranked: IntArray, relevant: sp.csr_matrix, k: int, hits: BoolArray | None = None
) -> Float64Array:
    """AP@k as implicit computes it: precision at each hit, summed, over min(k, |relevant|)."""
    top = _top_hits(ranked, relevant, k, hits)
    positions = np.arange(1, k + 1, dtype=np.float64)
    precision_at_hit = np.cumsum(top, axis=1, dtype=np.float64) / positions
    summed = np.where(top, precision_at_hit, 0.0).sum(axis=1)
    return _safe_divide(summed, np.minimum(n_relevant(relevant), k))


def ndcg_at_k(
    ranked: IntArray, relevant: sp.csr_matrix, k: int, hits: BoolArray | None = None
) -> Float64Array:
    """Binary-gain NDCG@k with a log2 discount; the ideal puts min(k, |relevant|) hits first."""
    top = _top_hits(ranked, relevant, k, hits)
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = top.astype(np.float64) @ discount
    ideal_cum = np.concatenate(([0.0], np.cumsum(discount)))
    idcg = ideal_cum[np.minimum(n_relevant(relevant), k)]
    return _safe_divide(dcg, idcg)


def hit_rate_at_k(
    ranked: IntArray, relevant: sp.csr_matrix, k: int, hits: BoolArray | None = None
) -> Float64Array:
    """1.0 where at least one relevant item is in the top k, else 0.0."""
    top = _top_hits(ranked, relevant, k, hits)
    found: Float64Array = np.asarray(top.any(axis=1), dtype=np.float64)
    return found


def catalogue_coverage(ranked: IntArray, n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-k list (padding ignored)."""
    _check_k(k)
    if n_items <= 0:
        return 0.0
    return float(len(covered_items(ranked, n_items, k))) / n_items


def covered_items(ranked: IntArray, n_items: int, k: int) -> IntArray:
    """Distinct item rows in the top k of any list; lets a caller union coverage over batches."""
    top = np.asarray(ranked, dtype=np.int64)[:, :k]
    items = np.unique(top[top >= 0])
    if items.size and items[-1] >= n_items:
        raise DataError(f"ranked holds item row {int(items[-1])} outside 0..{n_items - 1}")
    return items


_METRIC_FUNCTIONS = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "map": average_precision_at_k,
    "ndcg": ndcg_at_k,
    "hit_rate": hit_rate_at_k,
}


def ranking_metrics(
    ranked: IntArray, relevant: sp.csr_matrix, ks: Iterable[int]
) -> dict[str, Float64Array]:
    """Every per-user metric at every k, keyed ``"ndcg@10"`` etc., from one hit lookup."""
    hits = hit_matrix(ranked, relevant)
    out: dict[str, Float64Array] = {}
    for k in ks:
        for name, fn in _METRIC_FUNCTIONS.items():
            out[f"{name}@{k}"] = fn(ranked, relevant, k, hits)
    return out


def _top_hits(
    ranked: IntArray, relevant: sp.csr_matrix, k: int, hits: BoolArray | None
) -> BoolArray:
    """The first k hit columns; a ranking shorter than k is padded with misses."""
    _check_k(k)
    if hits is None:
        hits = hit_matrix(ranked, relevant)
    elif hits.shape != np.shape(ranked) or hits.shape[0] != relevant.shape[0]:
        raise DataError(f"hits of shape {hits.shape} do not match ranked {np.shape(ranked)}")
    if hits.shape[1] >= k:
        return hits[:, :k]
    pad = np.zeros((hits.shape[0], k - hits.shape[1]), dtype=np.bool_)
    return np.hstack([hits, pad])


def _check_k(k: int) -> None:
    if int(k) < 1:
        raise ConfigError(f"k must be at least 1, got {k}")


def _check_ranked(ranked: IntArray, relevant: sp.csr_matrix) -> IntArray:
    arr = np.asarray(ranked, dtype=np.int64)
    if arr.ndim != 2 or arr.shape[0] != relevant.shape[0]:
        raise DataError(
            f"ranked of shape {arr.shape} needs one row per relevant row ({relevant.shape[0]})"
        )
    if arr.size and (arr.min() < -1 or arr.max() >= relevant.shape[1]):
        raise DataError(f"ranked holds item rows outside -1..{relevant.shape[1] - 1}")
    return arr


def _canonical(relevant: sp.csr_matrix) -> sp.csr_matrix:
    """Sorted, duplicate-free, zero-free CSR, so row keys are sorted for ``searchsorted``."""
    if (
        isinstance(relevant, sp.csr_matrix)
        and relevant.has_canonical_format
        and bool(np.all(relevant.data != 0))
    ):
        return relevant
    rel = sp.csr_matrix(relevant, copy=True)
    rel.sum_duplicates()
    rel.eliminate_zeros()
    rel.sort_indices()
    return rel


def _safe_divide(num: Float64Array, den: npt.NDArray[np.integer] | Float64Array) -> Float64Array:
    den_f = np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den_f, out=out, where=den_f > 0)
    return out
