"""The offline evaluation protocol: rank the full catalogue for every test user, score top-k lists.

Sampled metrics (ranking among 100 random negatives) overstate and reorder models (Krichene &
Rendle), so every evaluated user gets a ranking over the whole catalogue, minus their training
items. Users are processed in batches so that 359k users x 300k items never needs more than one
batch of rankings and hit flags in memory (the model's own scoring is blocked by ``recommend``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.errors import ConfigError, DataError, ModelError
from setlist.evaluate.metrics import covered_items, ranking_metrics
from setlist.models.base import Recommender

Float64Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Per-user arrays kept in the report: the ones paired significance tests need.
PER_USER_KEPT = ("precision", "recall", "map", "ndcg")
DEFAULT_BATCH = 8192


@dataclass
class MetricsReport:
    """Mean metrics over evaluated users, plus the per-user values behind them.

    ``per_user[name][i]`` belongs to ``user_rows[i]``; two reports over the same split share
    ``user_rows``, which is what a paired test needs.
    """

    metrics: dict[str, float]
    per_user: dict[str, Float64Array]
    user_rows: IntArray
    n_users: int
    n_items: int
    ks: tuple[int, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (per-user arrays left out: they are for tests, not for logs)."""
        return {
            "metrics": {name: float(value) for name, value in self.metrics.items()},
            "n_users": int(self.n_users),
            "n_items": int(self.n_items),
            "ks": [int(k) for k in self.ks],
            "seconds": float(self.seconds),
        }


def evaluate(
    model: Recommender,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    ks: tuple[int, ...] = (10, 20),
    batch_size: int = DEFAULT_BATCH,
) -> MetricsReport:
    """Evaluate a fitted model on a users x items split.

    A test item the user also has in ``train`` is dropped from the relevant set: with training
    items excluded it can never be recommended, so counting it would only cap recall below 1.
    Users left with no relevant item are skipped (not scored 0), as in implicit; a split where
    that leaves nobody raises :class:`DataError` rather than reporting zeros.
    """
    started = time.perf_counter()
    ks = _check_ks(ks)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    train, test = _check_split(model, train, test)
    relevant = relevant_items(train, test)
    user_rows = np.flatnonzero(np.diff(relevant.indptr)).astype(np.int64)
    if len(user_rows) == 0:
        raise DataError("no user has a test item outside their training history")
    n_items = int(train.shape[1])
    k_max = max(ks)

    chunks: dict[str, list[Float64Array]] = {}
    covered: dict[int, npt.NDArray[np.bool_]] = {k: np.zeros(n_items, np.bool_) for k in ks}
    for start in range(0, len(user_rows), batch_size):
        rows = user_rows[start : start + batch_size]
        ranked, _ = model.recommend(rows, train[rows], k=k_max, exclude_seen=True)
        for name, values in ranking_metrics(ranked, relevant[rows], ks).items():
            chunks.setdefault(name, []).append(values)
        for k in ks:
            covered[k][covered_items(ranked, n_items, k)] = True

    per_all = {name: np.concatenate(parts) for name, parts in chunks.items()}
    metrics = {name: float(values.mean()) for name, values in per_all.items()}
    for k in ks:
        metrics[f"coverage@{k}"] = float(covered[k].mean()) if n_items else 0.0
    per_user = {
        name: values for name, values in per_all.items() if name.split("@")[0] in PER_USER_KEPT
    }
    return MetricsReport(
        metrics=dict(sorted(metrics.items())),
        per_user=per_user,
        user_rows=user_rows,
        n_users=len(user_rows),
        n_items=n_items,
        ks=ks,
        seconds=time.perf_counter() - started,
    )


def relevant_items(train: sp.csr_matrix, test: sp.csr_matrix) -> sp.csr_matrix:
    """Binary CSR of test items not already in the user's training history.

    "In the history" means stored in ``train``, even with a weight of 0 (bm25 can give one):
    that is what ``recommend(exclude_seen=True)`` excludes.
    """
    test_bin = _binary(test)
    train = sp.csr_matrix(train)
    seen = sp.csr_matrix((np.ones(train.nnz), train.indices, train.indptr), shape=train.shape)
    overlap = test_bin.multiply(seen).tocsr()
    rel = sp.csr_matrix(test_bin - overlap)
    rel.eliminate_zeros()
    rel.sort_indices()
    return rel


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out


def _check_ks(ks: tuple[int, ...]) -> tuple[int, ...]:
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] < 1:
        raise ConfigError(f"ks must be a non-empty set of positive cut-offs, got {ks!r}")
    return out


def _check_split(
    model: Recommender, train: sp.csr_matrix, test: sp.csr_matrix
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    if train.shape != test.shape:
        raise DataError(f"train {train.shape} and test {test.shape} differ in shape")
    if model.n_items_ != train.shape[1]:
        raise ModelError(
            f"model ranks {model.n_items_} items but the split has {train.shape[1]} columns"
        )
    return sp.csr_matrix(train), sp.csr_matrix(test)
