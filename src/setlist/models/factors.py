"""What every matrix-factorisation model shares: scores are dot products of learned factors.

ALS and BPR differ in how they learn the factors and fold a new listener in; scoring, item
similarity (cosine over item factors) and checking saved factor shapes are the same code.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.errors import ArtifactError, ModelError
from setlist.models.base import Recommender


class FactorRecommender(Recommender):
    """A recommender whose score for (user, item) is ``user_factors_[u] . item_factors_[i]``."""

    factors: int
    user_factors_: FloatArray | None
    item_factors_: FloatArray | None
    #: Columns beyond ``factors`` in the saved arrays (BPR keeps an item-bias column).
    extra_columns = 0
    can_fold_in: ClassVar[bool] = True

    @abstractmethod
    def fold_in(self, user_items: sp.csr_matrix) -> FloatArray:
        """User vectors for histories the model never saw, item factors fixed."""

    def vectors(self) -> tuple[FloatArray, FloatArray] | None:
        """Both factor arrays once fitted (None before): scores are their dot product."""
        if self.user_factors_ is None or self.item_factors_ is None:
            return None
        return self.user_factors_, self.item_factors_

    def _factors(self) -> tuple[FloatArray, FloatArray]:
        if self.user_factors_ is None or self.item_factors_ is None:
            raise ModelError(f"{type(self).__name__} is not fitted; call fit() first")
        return self.user_factors_, self.item_factors_

    @property
    def n_items_(self) -> int:
        return int(self._factors()[1].shape[0])

    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        users, items = self._factors()
        return np.asarray(users[np.asarray(user_rows)] @ items.T, dtype=np.float32)

    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        _, items = self._factors()
        return np.asarray(self.fold_in(user_items) @ items.T, dtype=np.float32)

    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        """Cosine similarity of item factors (bias columns left out)."""
        _, items = self._factors()
        vectors = items[:, : self.factors]
        normed = vectors / np.maximum(np.linalg.norm(vectors, axis=1), 1e-12)[:, None]
        rows = np.asarray(item_rows, dtype=np.int64)
        block = (normed[rows] @ normed.T).astype(np.float32)
        block[np.arange(len(rows)), rows] = -np.inf
        return top_k(block, k)

    def _factor_state(self) -> dict[str, npt.NDArray[Any]]:
        users, items = self._factors()
        return {"user_factors": users, "item_factors": items}

    def _set_factor_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Restore both factor arrays, refusing shapes that do not fit the parameters."""
        users, items = arrays["user_factors"], arrays["item_factors"]
        width = self.factors + self.extra_columns
        if users.ndim != 2 or items.ndim != 2 or {users.shape[1], items.shape[1]} != {width}:
            raise ArtifactError(
                f"factor shapes {users.shape} and {items.shape} do not fit {self.factors} factors"
            )
        self.user_factors_ = users.astype(np.float32)
        self.item_factors_ = items.astype(np.float32)
