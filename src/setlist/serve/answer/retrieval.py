"""Candidate retrieval: one listener's taste, able to list its best items and score any item.

Factor models (a dot product of a user and an item vector) are served through the bundle's
vector index, so a request never scores the whole catalogue; other models (neighbourhood, EASE,
popularity) score the catalogue densely with their own ``score`` methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.index import ExactIndex, VectorIndex
from setlist.models.base import Recommender


class Taste(ABC):
    """What one listener likes, as scores over the catalogue (computed lazily)."""

    @abstractmethod
    def top(self, n: int) -> tuple[IntArray, FloatArray]:
        """The n best item rows and their scores, best first (fewer when the catalogue is)."""

    @abstractmethod
    def scores(self, rows: IntArray) -> FloatArray:
        """The taste scores of the given item rows."""


class VectorTaste(Taste):
    """A user vector searched in the vector index."""

    def __init__(self, vector: FloatArray, index: VectorIndex, items: FloatArray) -> None:
        self.vector = np.ascontiguousarray(vector, dtype=np.float32).ravel()
        self.index = index
        self.items = items

    def top(self, n: int) -> tuple[IntArray, FloatArray]:
        return self.index.search_one(self.vector, n)

    def scores(self, rows: IntArray) -> FloatArray:
        return np.asarray(self.items[rows] @ self.vector, dtype=np.float32)


class DenseTaste(Taste):
    """A dense score row from the model itself."""

    def __init__(self, scores: FloatArray) -> None:
        self.row = np.asarray(scores, dtype=np.float32).ravel()

    def top(self, n: int) -> tuple[IntArray, FloatArray]:
        ids, scores = top_k(self.row[None, :], min(n, len(self.row)))
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def scores(self, rows: IntArray) -> FloatArray:
        return self.row[rows]


class Retriever:
    """Builds a :class:`Taste` for a known user row or for a history (fold-in)."""

    def __init__(self, model: Recommender, index: VectorIndex | None) -> None:
        self.model = model
        vectors = model.vectors()
        self.users: FloatArray | None = None
        self.items: FloatArray | None = None
        self.index: VectorIndex | None = None
        if vectors is not None:
            self.users, self.items = vectors
            # A bundle saved without an index still gets exact search over the same vectors.
            self.index = index if index is not None else ExactIndex(self.items)
        self.can_fold_in = model.can_fold_in

    @property
    def uses_index(self) -> bool:
        return self.index is not None

    def for_user(self, row: int, history: sp.csr_matrix) -> Taste:
        """Taste of a user the model was trained on (``history``: that user's seen row)."""
        if self.users is not None and self.items is not None and self.index is not None:
            return VectorTaste(self.users[row], self.index, self.items)
        rows = np.array([row], dtype=np.int64)
        return DenseTaste(self.model.score(rows, history)[0])

    def for_history(self, confidences: sp.csr_matrix) -> Taste:
        """Taste of a listener known only by a history (1 x items confidences): fold-in."""
        if self.can_fold_in and self.items is not None and self.index is not None:
            vector = np.asarray(self.model.fold_in(confidences), dtype=np.float32)[0]
            return VectorTaste(vector, self.index, self.items)
        return DenseTaste(self.model.score_histories(confidences)[0])
