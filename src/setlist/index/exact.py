"""Exact inner-product search: one BLAS product per block of queries, then a partial sort."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import numpy.typing as npt

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.errors import ConfigError
from setlist.index.base import VectorIndex

_BLOCK_CELLS = 1 << 24  # scores held at once per block (64 MiB of float32)


class ExactIndex(VectorIndex):
    """Brute force over every vector: recall 1 by construction, the reference for the others."""

    kind = "exact"

    def __init__(self, vectors: FloatArray) -> None:
        super().__init__()
        if vectors.ndim != 2:
            raise ConfigError(f"vectors must be 2-D, got shape {vectors.shape}")
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.recall_at_10 = 1.0

    @classmethod
    def build(cls, vectors: FloatArray, **params: Any) -> Self:
        return cls(vectors)

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def get_params(self) -> dict[str, Any]:
        return {}

    def _search(self, queries: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        n_q = queries.shape[0]
        ids = np.empty((n_q, k), dtype=np.int64)
        scores = np.empty((n_q, k), dtype=np.float32)
        block = max(1, _BLOCK_CELLS // max(self.n, 1))
        for start in range(0, n_q, block):
            stop = min(start + block, n_q)
            dense = queries[start:stop] @ self.vectors.T
            ids[start:stop], scores[start:stop] = top_k(dense, k)
        return ids, scores

    def search_one(self, query: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        k = min(k, self.n)
        if k < 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids, scores = top_k((self.vectors @ query)[None, :], k)
        return ids[0], scores[0]

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {"vectors": self.vectors}

    @classmethod
    def _restore(cls, arrays: dict[str, npt.NDArray[Any]], params: dict[str, Any]) -> Self:
        return cls(arrays["vectors"])
