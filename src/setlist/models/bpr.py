"""BPR (Rendle et al.): matrix factorisation for pairwise ranking, fitted by ``implicit``.

implicit's CPU BPR learns ``factors + 1`` columns: users carry a constant 1 in the last one, so
the items' last column is an item bias. BPR learns from which items a listener heard, not how
often (implicit samples positives from the stored entries), so the default input is binary.

Fold-in: BPR has no closed-form user step, so a new listener's vector is found by gradient ascent
on that listener's own BPR objective with the item factors (and biases) fixed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from setlist.arrays import FloatArray, IntArray
from setlist.errors import ConfigError
from setlist.models.factors import FactorRecommender
from setlist.models.knn import WeightsInput

if TYPE_CHECKING:
    from setlist.models.space import SearchSpace

Float64Array = npt.NDArray[np.float64]


class BPRRecommender(WeightsInput, FactorRecommender):
    """Bayesian personalised ranking by SGD over (listener, heard, not heard) triples."""

    kind = "bpr"
    extra_columns = 1  # implicit's BPR keeps an item-bias column (users hold a 1 there)
    fidelity_param: ClassVar[str | None] = "iterations"

    @classmethod
    def search_space(cls, space: SearchSpace) -> None:
        space.choice("factors", [32, 64, 128])
        space.real("learning_rate", 1e-3, 0.1, log=True)
        space.real("regularization", 1e-4, 0.1, log=True)
        space.integer("iterations", 20, 200, log=True)
        space.seed()

    @classmethod
    def estimate_seconds(cls, params: Mapping[str, Any], train: sp.csr_matrix) -> float:
        factors, iterations = int(params.get("factors", 128)), int(params.get("iterations", 100))
        return 3e-9 * max(int(train.nnz), 1) * factors * iterations + 0.2

    @classmethod
    def smallest_params(cls) -> dict[str, Any]:
        return {"factors": 32, "iterations": 20}

    def __init__(
        self,
        factors: int = 128,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        fold_in_regularization: float = 0.01,
        fold_in_steps: int = 50,
        fold_in_learning_rate: float = 1.0,
        seed: int = 0,
        threads: int = 0,
        weighting: str = "none",
        alpha: float = 1.0,
    ) -> None:
        if not 1 <= factors <= 4096:
            raise ConfigError(f"factors must be in [1, 4096], got {factors}")
        if not 1 <= iterations <= 10_000:
            raise ConfigError(f"iterations must be in [1, 10000], got {iterations}")
        if not learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {learning_rate}")
        if not 0 <= fold_in_steps <= 10_000 or not fold_in_learning_rate > 0:
            raise ConfigError(
                "fold_in_steps must be in [0, 10000] and fold_in_learning_rate > 0; got "
                f"{fold_in_steps}, {fold_in_learning_rate}"
            )
        if regularization < 0 or fold_in_regularization < 0:
            raise ConfigError(
                f"regularization must be >= 0, got {regularization} / {fold_in_regularization}"
            )
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.iterations = int(iterations)
        self.fold_in_regularization = float(fold_in_regularization)
        self.fold_in_steps = int(fold_in_steps)
        self.fold_in_learning_rate = float(fold_in_learning_rate)
        self.seed = int(seed)
        self.threads = int(threads)
        self._init_weighting(weighting, alpha)
        self.user_factors_: FloatArray | None = None
        self.item_factors_: FloatArray | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "fold_in_regularization": self.fold_in_regularization,
            "fold_in_steps": self.fold_in_steps,
            "fold_in_learning_rate": self.fold_in_learning_rate,
            "seed": self.seed,
            "threads": self.threads,
            **self._weighting_params(),
        }

    def fit(self, user_items: sp.csr_matrix) -> Self:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        x = self.input_.fit(user_items)
        x.eliminate_zeros()
        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=self.threads,
            random_state=self.seed,
        )
        with threadpool_limits(limits=1, user_api="blas"):
            model.fit(x, show_progress=False)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        return self

    def fold_in(self, user_items: sp.csr_matrix) -> FloatArray:
        """User vectors (bias column 1 included) for histories the model never saw.

        Full-batch gradient ascent on the BPR objective of one listener with the item factors
        fixed: every heard item against every other item, ``fold_in_steps`` steps from the mean
        of the heard items' vectors. Deterministic, and the same objective the fit optimises.
        """
        _, items = self._factors()
        y, bias = items[:, :-1].astype(np.float64), items[:, -1].astype(np.float64)
        x = sp.csr_matrix(self.input_.transform(user_items))
        out = np.zeros((x.shape[0], items.shape[1]), dtype=np.float32)
        out[:, -1] = 1.0
        for u in range(x.shape[0]):
            heard = x.indices[x.indptr[u] : x.indptr[u + 1]]
            if len(heard) and len(heard) < len(bias):
                out[u, :-1] = self._fold_in_one(y, bias, heard)
        return out

    def _fold_in_one(self, y: Float64Array, bias: Float64Array, heard: IntArray) -> Float64Array:
        others = np.ones(len(bias), dtype=bool)
        others[heard] = False
        pos, neg = y[heard], y[others]
        vector = pos.mean(axis=0)
        scale = float(np.mean(np.sum(y * y, axis=1))) or 1.0
        step = self.fold_in_learning_rate / scale
        for _ in range(self.fold_in_steps):
            s_pos = pos @ vector + bias[heard]
            s_neg = neg @ vector + bias[others]
            # sigma(-(s_i - s_j)) for every heard i and unheard j, averaged
            w = 1.0 / (1.0 + np.exp(np.clip(s_pos[:, None] - s_neg[None, :], -50, 50)))
            grad = (w.sum(axis=1) @ pos - w.sum(axis=0) @ neg) / w.size
            vector += step * (grad - self.fold_in_regularization * vector)
        return np.asarray(vector, dtype=np.float64)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {**self._factor_state(), **self.input_.state()}

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self._set_factor_state(arrays)
        self.input_.set_state(arrays)
