"""Popularity: every listener gets the items most users have heard (the baseline and fallback)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.errors import ArtifactError, ModelError
from setlist.models.base import Recommender


class PopularityRecommender(Recommender):
    """Scores an item by the number of distinct users who heard it (not by total plays:
    a few heavy listeners should not make an artist popular)."""

    kind = "popularity"

    @classmethod
    def estimate_seconds(cls, params: Mapping[str, Any], train: sp.csr_matrix) -> float:
        return 1e-8 * max(int(train.nnz), 1)

    def __init__(self) -> None:
        self.popularity_: FloatArray | None = None

    def get_params(self) -> dict[str, Any]:
        return {}

    def fit(self, user_items: sp.csr_matrix) -> Self:
        users = (user_items > 0).astype(np.float32)
        self.popularity_ = np.asarray(users.sum(axis=0), dtype=np.float32).ravel()
        return self

    @property
    def n_items_(self) -> int:
        return len(self._pop())

    def _pop(self) -> FloatArray:
        if self.popularity_ is None:
            raise ModelError("PopularityRecommender is not fitted; call fit() first")
        return self.popularity_

    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        return np.tile(self._pop(), (len(user_rows), 1))

    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        return np.tile(self._pop(), (user_items.shape[0], 1))

    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        pop = self._pop()
        block = np.tile(pop, (len(item_rows), 1))
        block[np.arange(len(item_rows)), np.asarray(item_rows)] = -np.inf
        return top_k(block, k)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {"popularity": self._pop()}

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        if arrays["popularity"].ndim != 1:
            raise ArtifactError(f"popularity must be 1-D, got {arrays['popularity'].shape}")
        self.popularity_ = arrays["popularity"].astype(np.float32)
