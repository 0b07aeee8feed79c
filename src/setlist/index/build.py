"""Choosing, building and checking the index that ships with a model.

The kind follows the catalogue size (exact below ``exact_max_items``, else the configured ANN).
An ANN index's search effort is set to the smallest that brings recall@10 against exact search,
on one sample of queries, to the target; recall is then measured again on a second, disjoint
sample and that figure is the one recorded. Below ``min_recall`` the build fails: a model never
ships with an index that silently drops the best items.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from setlist.arrays import FloatArray, IntArray
from setlist.config import IndexConfig
from setlist.errors import ConfigError, ModelError
from setlist.index.base import VectorIndex, index_class
from setlist.index.exact import ExactIndex

log = logging.getLogger(__name__)

RECALL_K = 10
_MAX_EFFORT = 4096


def choose_kind(n_items: int, config: IndexConfig) -> str:
    """``exact`` for small catalogues (BLAS over all items is fast there), else the ANN kind."""
    if config.kind != "auto":
        return config.kind
    return "exact" if n_items <= config.exact_max_items else config.ann


def build_index(items: FloatArray, queries: FloatArray | None, config: IndexConfig) -> VectorIndex:
    """Build the configured index over ``items`` and check its recall on ``queries``.

    ``queries`` should look like real requests (user vectors); without them, item vectors are
    used. Raises :class:`ModelError` when recall@10 stays below ``config.min_recall``.
    """
    index, measured = tuned_index(items, queries, config, RECALL_K)
    index.recall_at_10 = measured
    return index


def tuned_index(
    items: FloatArray,
    queries: FloatArray | None,
    config: IndexConfig,
    k: int,
    **params: Any,
) -> tuple[VectorIndex, float]:
    """The configured index, its effort tuned for recall@``k``, and that recall as measured.

    ``params`` go to the backend's ``build`` (``nlist`` for IVF, ...). Raises
    :class:`ModelError` when recall@k stays below ``config.min_recall``.
    """
    items = np.ascontiguousarray(items, dtype=np.float32)
    if items.ndim != 2 or items.shape[0] == 0:
        raise ConfigError(f"cannot index vectors of shape {items.shape}")
    kind = choose_kind(items.shape[0], config)
    if kind == "exact":
        return ExactIndex(items), 1.0
    index = index_class(kind).build(items, **{"seed": config.seed, **params})
    tune, check = _query_samples(items, queries, config)
    exact = ExactIndex(items)
    tune_truth, check_truth = exact.search(tune, k)[0], exact.search(check, k)[0]
    _tune_effort(index, tune, tune_truth, min(1.0, config.min_recall + config.recall_margin), k)
    measured = recall_at_k(index.search(check, k)[0], check_truth)
    log.info(
        "%s index over %d items: recall@%d %.4f at effort %s",
        kind,
        index.n,
        k,
        measured,
        index.effort(),
    )
    if measured < config.min_recall:
        raise ModelError(
            f"{kind} index recall@{k} {measured:.4f} is below the required {config.min_recall} "
            f"(effort {index.effort()}, {index.n} items); refusing to build it",
            field="index_min_recall",
        )
    return index, measured


def _tune_effort(
    index: VectorIndex, queries: FloatArray, truth: IntArray, target: float, k: int = RECALL_K
) -> None:
    """Set the smallest effort whose recall@k on ``queries`` reaches ``target`` (to ~12%).

    Doubling from the default until it reaches the target, then bisecting back: the effort is
    what each query pays, so one just above the target is worth the few extra measurements.
    """
    effort = index.effort()
    if effort is None:
        return

    def reaches(trial: int) -> tuple[bool, int]:
        index.set_effort(trial)
        got = recall_at_k(index.search(queries, k)[0], truth)
        return got >= target, index.effort() or trial  # the backend may clamp the effort

    ok, effort = reaches(effort)
    passing, failing = (effort, 0) if ok else (None, effort)
    while passing is None and failing < _MAX_EFFORT:
        ok, trial = reaches(min(2 * failing, _MAX_EFFORT))
        if trial <= failing:
            break  # clamped: no more effort to give
        passing, failing = (trial, failing) if ok else (None, trial)
    if passing is None:
        return  # left at the largest effort tried; the recall check refuses the index
    while passing - failing > max(1, failing // 8):
        mid = (passing + failing) // 2
        ok, mid = reaches(mid)
        passing, failing = (mid, failing) if ok else (passing, mid)
    index.set_effort(passing)


def recall_at_k(found: IntArray, truth: IntArray) -> float:
    """Mean share of each query's true top-k that ``found`` holds (padding -1 never counts)."""
    if truth.shape[0] == 0:
        return 1.0
    hits = 0
    total = 0
    for got, want in zip(found, truth, strict=True):
        want = want[want >= 0]
        total += len(want)
        hits += len(np.intersect1d(got[got >= 0], want, assume_unique=True))
    return hits / total if total else 1.0


def _query_samples(
    items: FloatArray, queries: FloatArray | None, config: IndexConfig
) -> tuple[FloatArray, FloatArray]:
    pool = items if queries is None or len(queries) == 0 else np.asarray(queries, np.float32)
    rng = np.random.default_rng(config.seed)
    n = min(len(pool), 2 * config.recall_queries)
    rows = rng.choice(len(pool), size=n, replace=False)
    half = max(1, n // 2)
    sample = np.ascontiguousarray(pool[rows])
    return sample[:half], sample[half:] if n > half else sample[:half]
