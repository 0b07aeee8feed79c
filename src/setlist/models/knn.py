"""Item-kNN (cosine or BM25 item similarity), and the input weighting the newer models share.

Item-kNN keeps, for every item, its ``k`` most similar items (implicit's ``ItemItemRecommender``
shape); a listener's score for item j is the sum over their history of ``x_i * sim(i, j)``. It
is memory-based, so a new listener is folded in exactly: their history is all it needs.

:class:`InputWeighting` lives here because every model of this zoo except ALS weighs its own
input: the model receives raw play counts in ``fit``, ``score`` and ``score_histories`` and turns
them into confidences with the scheme in its own parameters. That keeps training, offline
evaluation and serving (which passes the raw training history) consistent, lets a blend give each
member the weighting it was tuned with, and keeps BM25's statistics (idf, average history
length) fitted once on the training users instead of recomputed on whatever batch is scored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.errors import ArtifactError, ConfigError, ModelError
from setlist.matrix import bm25
from setlist.models.base import Recommender

if TYPE_CHECKING:
    from setlist.models.space import SearchSpace

SCHEMES = ("none", "linear", "log1p", "bm25")
SIMILARITIES = ("cosine", "bm25")
FIT_BLOCK = 8192  # item rows of the similarity computed at once


class InputWeighting:
    """Raw play counts -> confidences; ``none`` is binary, as in :func:`setlist.matrix.weight`.

    ``bm25`` treats listeners as documents and items as terms; its idf and average history
    length are learned by :meth:`fit` and reused by :meth:`transform`.
    """

    def __init__(self, scheme: str = "none", alpha: float = 1.0) -> None:
        if scheme not in SCHEMES:
            raise ConfigError(f"weighting must be one of {', '.join(SCHEMES)}; got {scheme!r}")
        if not alpha > 0:
            raise ConfigError(f"alpha must be > 0, got {alpha}")
        self.scheme = scheme
        self.alpha = float(alpha)
        self.idf_: FloatArray = np.zeros(0, dtype=np.float32)
        self.avg_length_ = 1.0

    def fit(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        """Learn BM25's statistics (when needed) and return the weighted training matrix."""
        if self.scheme == "bm25":
            csr = sp.csr_matrix(user_items)
            item_users = np.bincount(csr.indices, minlength=csr.shape[1])
            n_users = max(csr.shape[0], 1)
            self.idf_ = (np.log(n_users) - np.log1p(item_users)).astype(np.float32)
            lengths = np.ravel(csr.sum(axis=1))
            self.avg_length_ = float(lengths.mean()) if lengths.size else 1.0
        return self.transform(user_items)

    def transform(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        out = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
        if self.scheme == "none":
            out.data[:] = 1.0
        elif self.scheme == "linear":
            out.data *= np.float32(self.alpha)
        elif self.scheme == "log1p":
            out.data = (self.alpha * np.log1p(out.data)).astype(np.float32)
        else:
            out = self._bm25(out)
        return out

    def _bm25(self, csr: sp.csr_matrix, k1: float = 1.2, b: float = 0.75) -> sp.csr_matrix:
        if len(self.idf_) != csr.shape[1]:
            raise ModelError(f"bm25 weighting fitted on {len(self.idf_)} items, got {csr.shape[1]}")
        lengths = np.ravel(csr.sum(axis=1))
        norm = (1.0 - b) + b * lengths / max(self.avg_length_, 1e-9)
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        data = csr.data * (k1 + 1.0) / (k1 * norm[rows] + csr.data) * self.idf_[csr.indices]
        csr.data = (self.alpha * data).astype(np.float32)
        return csr

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "weighting_idf": self.idf_,
            "weighting_avg_length": np.array([self.avg_length_], dtype=np.float64),
        }

    def set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.idf_ = arrays["weighting_idf"].astype(np.float32)
        self.avg_length_ = float(arrays["weighting_avg_length"][0])


class WeightsInput:
    """Mixin: the model weighs raw counts itself (``weighting`` / ``alpha`` parameters).

    The pipeline looks for ``weights_input`` and hands such models raw counts.
    """

    weights_input: ClassVar[bool] = True
    input_: InputWeighting

    def _init_weighting(self, weighting: str, alpha: float) -> None:
        self.weighting = weighting
        self.alpha = float(alpha)
        self.input_ = InputWeighting(weighting, alpha)

    def _weighting_params(self) -> dict[str, Any]:
        return {"weighting": self.weighting, "alpha": self.alpha}


def keep_top_k(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Per row, the k largest entries (ties: lower column), without the diagonal.

    One lexsort over all non-zeros instead of a loop over rows.
    """
    coo = sp.coo_matrix(sim)
    off = coo.row != coo.col
    row, col, val = coo.row[off], coo.col[off], coo.data[off]
    order = np.lexsort((col, -val, row))
    row, col, val = row[order], col[order], val[order]
    starts = np.searchsorted(row, np.arange(sim.shape[0]))
    rank = np.arange(len(row)) - starts[row]
    keep = rank < k
    out = sp.csr_matrix((val[keep], (row[keep], col[keep])), shape=sim.shape, dtype=np.float32)
    out.sort_indices()
    return out


def _top_k_rows(block: sp.coo_matrix, k: int, offset: int) -> sp.csr_matrix:
    """:func:`keep_top_k` on rows ``offset..`` of a square similarity (diagonal: column
    ``row + offset``)."""
    coo = sp.coo_matrix(block)
    off = coo.row + offset != coo.col
    row, col, val = coo.row[off], coo.col[off], coo.data[off]
    order = np.lexsort((col, -val, row))
    row, col, val = row[order], col[order], val[order]
    starts = np.searchsorted(row, np.arange(block.shape[0]))
    keep = np.arange(len(row)) - starts[row] < k
    out = sp.csr_matrix((val[keep], (row[keep], col[keep])), shape=block.shape, dtype=np.float32)
    out.sort_indices()
    return out


class ItemKNNRecommender(WeightsInput, Recommender):
    """Item-item nearest neighbours on cosine or BM25 similarity of the item columns."""

    kind = "knn"

    @classmethod
    def search_space(cls, space: SearchSpace) -> None:
        """Neighbourhoods of 10..500 (log scale), as the kNN literature tunes them."""
        space.integer("k", 10, 500, log=True)
        space.choice("similarity", ["cosine", "bm25"])
        space.real("shrink", 0.0, 50.0)
        space.choice("weighting", ["none", "log1p", "bm25"])

    @classmethod
    def estimate_seconds(cls, params: Mapping[str, Any], train: sp.csr_matrix) -> float:
        nnz = max(int(train.nnz), 1)
        return 2e-8 * nnz * (nnz / max(int(train.shape[0]), 1)) + 0.2

    def __init__(
        self,
        k: int = 100,
        similarity: str = "cosine",
        shrink: float = 0.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        weighting: str = "none",
        alpha: float = 1.0,
    ) -> None:
        if not 1 <= k <= 100_000:
            raise ConfigError(f"k (neighbours) must be in [1, 100000], got {k}")
        if similarity not in SIMILARITIES:
            raise ConfigError(f"similarity must be cosine or bm25, got {similarity!r}")
        if shrink < 0:
            raise ConfigError(f"shrink must be >= 0, got {shrink}")
        if bm25_k1 < 0 or not 0 <= bm25_b <= 1:
            raise ConfigError(f"bm25_k1 must be >= 0 and bm25_b in [0, 1]; got {bm25_k1}, {bm25_b}")
        self.k = int(k)
        self.similarity = similarity
        self.shrink = float(shrink)
        self.bm25_k1 = float(bm25_k1)
        self.bm25_b = float(bm25_b)
        self._init_weighting(weighting, alpha)
        self.similarity_: sp.csr_matrix | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "similarity": self.similarity,
            "shrink": self.shrink,
            "bm25_k1": self.bm25_k1,
            "bm25_b": self.bm25_b,
            **self._weighting_params(),
        }

    def fit(self, user_items: sp.csr_matrix) -> Self:
        """Similarities block by block of ``FIT_BLOCK`` item rows, each cut to its top k at once,
        so the full item x item product (23M entries on the MPD subset) is never held whole."""
        x = self.input_.fit(user_items)
        if self.similarity == "bm25":
            cols = sp.csc_matrix(_bm25_columns(x, self.bm25_k1, self.bm25_b))
        else:
            cols = sp.csc_matrix(x, dtype=np.float32)
        norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=0), dtype=np.float64).ravel())
        right = sp.csr_matrix(cols)
        n = int(cols.shape[1])
        blocks = []
        for start in range(0, n, FIT_BLOCK):
            stop = min(start + FIT_BLOCK, n)
            block = sp.csr_matrix(cols[:, start:stop].T @ right, dtype=np.float32)
            coo = block.tocoo()
            rows = coo.row + start
            if self.similarity == "cosine":
                denom = norms[rows] * norms[coo.col] + self.shrink
                coo.data = np.divide(
                    coo.data, denom, out=np.zeros_like(coo.data), where=denom > 0
                ).astype(np.float32)
            local = sp.coo_matrix(
                (coo.data, (coo.row, coo.col)), shape=(stop - start, n), dtype=np.float32
            )
            blocks.append(_top_k_rows(local, self.k, start))
        self.similarity_ = sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float32)
        return self

    def _sim(self) -> sp.csr_matrix:
        if self.similarity_ is None:
            raise ModelError("ItemKNNRecommender is not fitted; call fit() first")
        return self.similarity_

    @property
    def n_items_(self) -> int:
        return int(self._sim().shape[0])

    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        return self.score_histories(user_items)

    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        sim = self._sim()
        x = self.input_.transform(user_items)
        return np.asarray((x @ sim).toarray(), dtype=np.float32)

    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        rows = np.asarray(item_rows, dtype=np.int64)
        block = self._sim()[rows].toarray().astype(np.float32)
        block[np.arange(len(rows)), rows] = -np.inf
        return top_k(block, k)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        sim = self._sim()
        return {
            "similarity_data": sim.data.astype(np.float32),
            "similarity_indices": sim.indices.astype(np.int64),
            "similarity_indptr": sim.indptr.astype(np.int64),
            **self.input_.state(),
        }

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        data, indices = arrays["similarity_data"], arrays["similarity_indices"]
        indptr = arrays["similarity_indptr"]
        n = len(indptr) - 1
        if n < 0 or len(data) != len(indices) or int(indptr[-1]) != len(data):
            raise ArtifactError("similarity arrays do not form a square CSR matrix")
        if len(indices) and (indices.min() < 0 or indices.max() >= n):
            raise ArtifactError(f"similarity column out of range for {n} items")
        self.similarity_ = sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(n, n))
        self.input_.set_state(arrays)


def _bm25_columns(x: sp.csr_matrix, k1: float, b: float) -> sp.csr_matrix:
    """BM25 over the item columns (items are documents, listeners terms), as implicit's
    ``BM25Recommender`` weighs ``item_users`` before its item-item products."""
    return sp.csr_matrix(bm25(sp.csr_matrix(x.T), k1, b).T, dtype=np.float32)
