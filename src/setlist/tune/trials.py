"""Trials: fit one spec on the tuning split and score it on the validation users.

Tuning never looks at the test set. The training part of the split is divided once more, per
user and seeded like the outer split, into a fitting part and a validation part over the same
catalogue; trials fit on the first and are ranked by NDCG@10 on the second. Only the study's
winner is refitted on the whole training part and evaluated on the test set.

For each model kind the validation scores of its best trial so far are kept (dense, float32,
when they fit in ``cache_mb``), so that blends of the best models can be searched without
refitting anything.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, top_k
from setlist.config import SplitConfig
from setlist.data.split import split
from setlist.errors import ConfigError, DataError
from setlist.evaluate.metrics import ndcg_at_k
from setlist.evaluate.protocol import relevant_items
from setlist.matrix import build_matrix
from setlist.models.base import Recommender
from setlist.models.blend import blend_scores
from setlist.models.specs import ModelSpec
from setlist.pipeline import FitUsage, Prepared, fit_matrix, inputs

IntArray = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
State = Literal["complete", "pruned", "failed"]
K = 10
_BATCH_CELLS = 1 << 24


@dataclass
class TrialData:
    """The tuning split: fit on ``fit_train`` (raw counts), validate on ``validation``."""

    fit_train: sp.csr_matrix
    validation: sp.csr_matrix  # relevant items per user (binary), users x items
    val_rows: IntArray  # users that have validation items (the sample evaluated)

    @property
    def n_items(self) -> int:
        return int(self.fit_train.shape[1])


def tuning_split(
    prepared: Prepared, fraction: float, seed: int, max_users: int = 20_000
) -> TrialData:
    """Divide the training part per user (seeded) into a fitting and a validation part."""
    if not 0 < fraction < 1:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    parts = split(prepared.split.train, SplitConfig(fraction, seed + 1))
    users, items = prepared.train.users, prepared.train.items
    fit_train = build_matrix(parts.train, users, items).csr
    held = build_matrix(parts.test, users, items).csr
    relevant = relevant_items(fit_train, held)
    rows = np.flatnonzero(np.diff(relevant.indptr)).astype(np.int64)
    if len(rows) == 0:
        raise DataError("no user has validation items: the training part is too small to tune on")
    if len(rows) > max_users:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_users, replace=False))
    return TrialData(sp.csr_matrix(fit_train), relevant, rows)


@dataclass
class TrialResult:
    """One trial: its spec, validation NDCG@10 (NaN unless complete) and what the fit cost."""

    number: int
    spec: ModelSpec
    value: float
    usage: FitUsage
    state: State = "complete"
    note: str = ""
    run_id: str = ""


@dataclass
class Cached:
    spec: ModelSpec
    value: float
    scores: FloatArray | None
    usage: FitUsage


@dataclass
class TrialRunner:
    """Fits and validates specs, remembering each kind's best and how long fits take."""

    data: TrialData
    cache_mb: float = 1024.0
    best: dict[str, Cached] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def run(self, spec: ModelSpec, final: bool = True) -> tuple[float, FitUsage]:
        """Fit on the fitting part, return validation NDCG@10 and the fit's cost.

        A ``final`` run (full fidelity) may become its kind's best, with scores cached.
        """
        model, usage = fit_matrix(spec, self.data.fit_train)
        if final:
            self.seconds[spec.kind].append(usage.seconds)
        value, scores = validate(model, spec, self.data, keep=final and self._cacheable())
        previous = self.best.get(spec.kind)
        if final and (previous is None or value > previous.value):
            self.best[spec.kind] = Cached(spec, value, scores, usage)
        return value, usage

    def expected_seconds(self, kind: str) -> float | None:
        times = self.seconds.get(kind)
        return float(np.median(times)) if times else None

    def _cacheable(self) -> bool:
        cells = len(self.data.val_rows) * self.data.n_items
        return cells * 4 <= self.cache_mb * 2**20

    def blend_value(self, kinds: list[str], weights: list[float]) -> float:
        """Validation NDCG@10 of a blend of the cached best models of ``kinds``."""
        blocks = [self.best[k].scores for k in kinds]
        if any(b is None for b in blocks):
            raise ConfigError(f"no cached validation scores for {kinds}")
        combined = blend_scores([b for b in blocks if b is not None], weights)
        return float(ranked_ndcg(combined, self.data).mean())


def validate(
    model: Recommender, spec: ModelSpec, data: TrialData, keep: bool = False
) -> tuple[float, FloatArray | None]:
    """Mean validation NDCG@10, and the dense validation scores when ``keep``."""
    x = inputs(spec, data.fit_train)
    rows = data.val_rows
    batch = max(1, _BATCH_CELLS // max(data.n_items, 1))
    kept: list[FloatArray] = []
    values: list[Float64Array] = []
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        scores = np.asarray(model.score(part, x[part]), dtype=np.float32)
        if keep:
            kept.append(scores.copy())
        values.append(_ndcg(scores, data.fit_train[part], data.validation[part]))
    per_user = np.concatenate(values)
    return float(per_user.mean()), (np.vstack(kept) if keep else None)


def ranked_ndcg(scores: FloatArray, data: TrialData) -> Float64Array:
    """Per-user NDCG@10 of a dense validation score block (rows = ``data.val_rows``)."""
    rows = data.val_rows
    return _ndcg(scores.copy(), data.fit_train[rows], data.validation[rows])


def _ndcg(scores: FloatArray, seen: sp.csr_matrix, relevant: sp.csr_matrix) -> Float64Array:
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    ranked, best = top_k(scores, K)
    ranked[~np.isfinite(best)] = -1
    return ndcg_at_k(ranked, relevant, K)
