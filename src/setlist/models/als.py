"""ALS for implicit feedback (Hu, Koren & Volinsky), fitted by the ``implicit`` library.

We keep implicit's conjugate-gradient solver (it is the fastest CPU implementation we know)
and own only what is around it: scoring in float32 BLAS blocks, saving without pickle,
and cosine item similarity.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.linalg.lapack import dgesv as _dgesv
from threadpoolctl import threadpool_limits

from setlist.arrays import FloatArray, IntArray
from setlist.errors import ConfigError
from setlist.models.factors import FactorRecommender

if TYPE_CHECKING:
    from setlist.config import Settings
    from setlist.models.space import SearchSpace


class ALSRecommender(FactorRecommender):
    """Matrix factorisation by alternating least squares; confidences come pre-weighted."""

    kind = "als"
    fidelity_param: ClassVar[str | None] = "iterations"

    @classmethod
    def search_space(cls, space: SearchSpace) -> None:
        """Factors 32..256 and log-scale regularisation, where docs/TARGETS.md's figures put
        the good values; the input weighting is searched too unless the study fixed it."""
        space.choice("factors", [32, 64, 128, 256])
        space.real("regularization", 1e-3, 100.0, log=True)
        space.integer("iterations", 5, 30)
        space.weighting(["log1p", "bm25", "linear"], alpha=(0.05, 50.0))
        space.seed()

    @classmethod
    def estimate_seconds(cls, params: Mapping[str, Any], train: sp.csr_matrix) -> float:
        factors, iterations = int(params.get("factors", 128)), int(params.get("iterations", 15))
        return 4e-9 * max(int(train.nnz), 1) * factors * iterations + 0.2

    @classmethod
    def smallest_params(cls) -> dict[str, Any]:
        return {"factors": 32, "iterations": 5}

    @classmethod
    def defaults(cls, settings: Settings) -> dict[str, Any]:
        """ALS is the one model whose size the settings (and their env variables) name."""
        return {
            "factors": settings.factors,
            "iterations": settings.iterations,
            "regularization": settings.regularization,
            "seed": settings.seed,
        }

    def __init__(
        self,
        factors: int = 128,
        regularization: float = 0.1,
        iterations: int = 15,
        seed: int = 0,
        threads: int = 0,
    ) -> None:
        if factors < 1:
            raise ConfigError(f"factors must be at least 1, got {factors}")
        if iterations < 1:
            raise ConfigError(f"iterations must be at least 1, got {iterations}")
        if regularization < 0:
            raise ConfigError(f"regularization must be >= 0, got {regularization}")
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.seed = seed
        self.threads = threads
        self.user_factors_: FloatArray | None = None
        self.item_factors_: FloatArray | None = None
        self._gram_cache: npt.NDArray[np.float64] | None = None
        self._explain_basis: npt.NDArray[np.float32] | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "seed": self.seed,
            "threads": self.threads,
        }

    def fit(self, user_items: sp.csr_matrix) -> Self:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from implicit.cpu.als import AlternatingLeastSquares

        # implicit's solver runs its own threads; BLAS threads on top only oversubscribe, so
        # they are limited here and implicit's warning about them (raised at construction,
        # before the limit can be seen) is silenced.
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*OpenBLAS.*", category=RuntimeWarning)
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,  # confidence weighting is applied by setlist.matrix.weight
                iterations=self.iterations,
                random_state=self.seed,
                num_threads=self.threads,
                calculate_training_loss=False,
            )
            model.fit(sp.csr_matrix(user_items, dtype=np.float32), show_progress=False)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self._forget_derived()
        return self

    def fold_in(self, user_items: sp.csr_matrix) -> FloatArray:
        """User vectors for new histories: one exact ALS user step with item factors fixed.

        Solves ``(YtY + reg I + sum_i (c_i - 1) y_i y_i^T) x = sum_i c_i y_i`` per user, the
        same normal equations implicit's solver uses, so a folded-in user matches a fitted one.
        """
        _, items = self._factors()
        gram = self._gram()  # once per model: a 1M-item catalogue must not pay it per request
        csr = sp.csr_matrix(user_items, dtype=np.float64)
        out = np.zeros((csr.shape[0], items.shape[1]), dtype=np.float32)
        for u in range(csr.shape[0]):
            lo, hi = csr.indptr[u], csr.indptr[u + 1]
            if lo == hi:
                continue
            y = items[csr.indices[lo:hi]].astype(np.float64)
            c = csr.data[lo:hi]
            a = gram + (y.T * (c - 1.0)) @ y
            out[u] = np.linalg.solve(a, y.T @ c)
        return out

    def explain(
        self, user_items: sp.csr_matrix, item_rows: IntArray, n: int = 3
    ) -> tuple[IntArray, FloatArray]:
        """Split each item's fold-in score over the heard items (implicit's ``explain``).

        With ``A = YtY + reg I + sum_j (c_j - 1) y_j y_j^T`` the folded-in user is
        ``x = A^-1 sum_j c_j y_j``, so ``score_i = y_i . x = sum_j c_j (y_i^T A^-1 y_j)``: the
        j-th term is heard item j's contribution to item i, and the terms add up to the score.
        """
        rows = np.asarray(item_rows, dtype=np.int64)
        lo, hi = user_items.indptr[0], user_items.indptr[1]
        heard = np.asarray(user_items.indices[lo:hi], dtype=np.int64)
        c = np.asarray(user_items.data[lo:hi], dtype=np.float64)
        if len(heard) == 0 or len(rows) == 0:
            return np.full((len(rows), n), -1, dtype=np.int64), np.zeros((len(rows), n), np.float32)
        contrib = self._contributions(heard, c, rows)  # one row per recommended item
        best = np.argsort(-contrib, axis=1, kind="stable")[:, :n]
        values = contrib[np.arange(len(rows))[:, None], best]  # take_along_axis, minus its checks
        positive = values > 0
        found = np.where(positive, heard[best], -1)
        weights = np.where(positive, values, 0.0).astype(np.float32)
        if found.shape[1] < n:  # fewer heard items than reasons asked for
            pad = n - found.shape[1]
            found = np.pad(found, ((0, 0), (0, pad)), constant_values=-1)
            weights = np.pad(weights, ((0, 0), (0, pad)))
        return found, weights

    def _contributions(
        self, heard: IntArray, c: npt.NDArray[np.float64], rows: IntArray
    ) -> npt.NDArray[np.float64]:
        """``c_j y_j^T A^-1 y_i`` for items i (rows of the result) and heard items j (columns)."""
        _, items = self._factors()
        basis = self.prepare_explain()
        nh = len(heard)
        if basis is not None and nh < items.shape[1]:
            # Woodbury: with P = Y G^-1 and D = diag(c - 1), Y A^-1 Yr^T = (I + P Y^T D)^-1 P Yr^T,
            # an n_heard x n_heard solve instead of factorising A (factors x factors) per request.
            # P's rows come from a table made once per model (prepare_explain), and both
            # products are one float32 GEMM: its error (~1e-6) is far below the reasons' spread;
            # the solve is in float64.
            both = items.take(np.concatenate((heard, rows)), axis=0)
            prod = (basis.take(heard, axis=0) @ both.T).astype(np.float64)
            lhs = prod[:, :nh] * (c - 1.0)
            lhs.ravel()[:: nh + 1] += 1.0  # lhs is a new C-contiguous array: ravel is a view
            _, _, solved, info = _dgesv(lhs, prod[:, nh:], overwrite_a=1, overwrite_b=1)
            if info == 0:
                return np.asarray(solved.T * c, dtype=np.float64)
        y = items[heard].astype(np.float64)
        targets = items[rows].astype(np.float64)
        a = self._gram() + (y.T * (c - 1.0)) @ y
        return np.asarray((y @ np.linalg.lstsq(a, targets.T, rcond=None)[0]) * c[:, None]).T

    def prepare_explain(self) -> npt.NDArray[np.float32] | None:
        """``Y (YtY + reg I)^-1``, one row per item, once per fitted model (None if singular).

        The service calls it at load: :meth:`explain` then reads a listener's heard rows from
        it instead of multiplying them by the inverse on every request. It costs one more
        item-factor-sized array (float32).
        """
        cached = self._explain_basis
        _, items = self._factors()
        if cached is not None and cached.shape == items.shape:
            return cached
        try:
            ginv = np.linalg.inv(self._gram())
        except np.linalg.LinAlgError:
            return None
        basis = np.empty(items.shape, dtype=np.float32)
        for start in range(0, len(items), 65_536):
            block = items[start : start + 65_536].astype(np.float64)
            basis[start : start + len(block)] = block @ ginv
        self._explain_basis = basis
        return basis

    def _gram(self) -> npt.NDArray[np.float64]:
        """``YtY + reg I`` in float64, computed once per fitted model (read-only afterwards)."""
        _, items = self._factors()
        cached = self._gram_cache
        if cached is None or cached.shape[0] != items.shape[1]:
            items64 = items.astype(np.float64)
            cached = items64.T @ items64 + self.regularization * np.eye(items.shape[1])
            self._gram_cache = cached
        return cached

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return self._factor_state()

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self._set_factor_state(arrays)
        self._forget_derived()

    def _forget_derived(self) -> None:
        """New factors: what was computed from the old ones goes."""
        self._gram_cache = None
        self._explain_basis = None
