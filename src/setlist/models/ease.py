"""EASE (Steck, 2019): closed-form item weights ``B = I - P / diag(P)``, ``P = (X'X + l2 I)^-1``.

The inverse is dense (items x items), so memory grows with the square of the catalogue. The model
works in float32 on the items it keeps: those heard by at least ``min_item_users`` training
listeners (an item nobody heard has an all-zero column and nothing to learn), at most
``max_items`` of them. A larger catalogue keeps its ``max_items`` most popular items when
``keep_popular`` is true, and otherwise is refused before any allocation with the memory it
would need. The same happens when the kept items would need more than ``max_memory_gb``.

Items left out score what full EASE gives an item without weights, 0, minus a tiny popularity
tie-break (below 1e-6), so the full catalogue stays ranked and score scales stay comparable.
The inverse is a Cholesky factorisation and inverse in place (LAPACK ``spotrf`` / ``spotri``),
so the peak is about two n x n float32 matrices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import numpy.typing as npt
import scipy.linalg.lapack as lapack
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.errors import ArtifactError, ConfigError, ModelError
from setlist.models.base import Recommender
from setlist.models.knn import WeightsInput

if TYPE_CHECKING:
    from setlist.models.space import SearchSpace

#: Dense n x n float32 matrices alive at the peak of a fit (Gram/inverse, and the sparse Gram).
PEAK_MATRICES = 2.0
TAIL = 1.0e-6  # left-out items score in (-TAIL, 0]: a tie-break by popularity, nothing more


def ease_memory_bytes(n_items: int) -> int:
    """Bytes a fit on ``n_items`` kept items needs at its peak (float32)."""
    return int(PEAK_MATRICES * 4 * n_items * n_items)


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


class EASERecommender(WeightsInput, Recommender):
    """Embarrassingly shallow autoencoder, item-item weights in closed form."""

    kind = "ease"

    @classmethod
    def search_space(cls, space: SearchSpace) -> None:
        """l2 over 1..10^4 on log scale: binary input prefers ~100, log1p-weighted ~2000."""
        space.real("l2", 1.0, 1e4, log=True)
        space.choice("weighting", ["none", "log1p"])
        space.choice("min_item_users", [2, 3, 5])

    @classmethod
    def estimate_seconds(cls, params: Mapping[str, Any], train: sp.csr_matrix) -> float:
        """Cubic in the items kept (the Gram matrix is inverted)."""
        users_per_item = np.bincount(sp.csr_matrix(train).indices, minlength=int(train.shape[1]))
        kept = min(
            int((users_per_item >= int(params.get("min_item_users", 1))).sum()),
            int(params.get("max_items", 20_000)),
        )
        return float(kept**3 / 2e10 + 0.2)

    @classmethod
    def smallest_params(cls) -> dict[str, Any]:
        return {"min_item_users": 5}

    def __init__(
        self,
        l2: float = 200.0,
        max_items: int = 20_000,
        keep_popular: bool = True,
        min_item_users: int = 1,
        max_memory_gb: float = 16.0,
        weighting: str = "none",
        alpha: float = 1.0,
    ) -> None:
        if not l2 > 0:
            raise ConfigError(f"l2 must be > 0, got {l2}")
        if max_items < 1:
            raise ConfigError(f"max_items must be >= 1, got {max_items}")
        if min_item_users < 1:
            raise ConfigError(f"min_item_users must be >= 1, got {min_item_users}")
        if not max_memory_gb > 0:
            raise ConfigError(f"max_memory_gb must be > 0, got {max_memory_gb}")
        self.l2 = float(l2)
        self.max_items = int(max_items)
        self.keep_popular = bool(keep_popular)
        self.min_item_users = int(min_item_users)
        self.max_memory_gb = float(max_memory_gb)
        self._init_weighting(weighting, alpha)
        self.weights_: FloatArray | None = None
        self.kept_: IntArray | None = None
        self.tail_: FloatArray | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            "l2": self.l2,
            "max_items": self.max_items,
            "keep_popular": self.keep_popular,
            "min_item_users": self.min_item_users,
            "max_memory_gb": self.max_memory_gb,
            **self._weighting_params(),
        }

    def plan(self, user_items: sp.csr_matrix) -> IntArray:
        """The item rows a fit would keep, most popular first; refuses what will not fit."""
        users_per_item = np.bincount(
            sp.csr_matrix(user_items).indices, minlength=user_items.shape[1]
        )
        order = np.lexsort((np.arange(len(users_per_item)), -users_per_item))
        kept: IntArray = order[users_per_item[order] >= self.min_item_users].astype(np.int64)
        if len(kept) > self.max_items:
            if not self.keep_popular:
                raise ModelError(
                    f"EASE on {len(kept):,} items would need {_gib(ease_memory_bytes(len(kept)))}"
                    f" (max_items={self.max_items:,}); set keep_popular=true to keep the "
                    f"{self.max_items:,} most popular ({_gib(ease_memory_bytes(self.max_items))})",
                    n_items=len(kept),
                    bytes_needed=ease_memory_bytes(len(kept)),
                )
            kept = kept[: self.max_items]
        need = ease_memory_bytes(len(kept))
        if need > self.max_memory_gb * 2**30:
            fits = int(np.sqrt(self.max_memory_gb * 2**30 / (PEAK_MATRICES * 4)))
            raise ModelError(
                f"EASE on {len(kept):,} items needs {_gib(need)}, over max_memory_gb="
                f"{self.max_memory_gb:g}; set max_items <= {fits:,} to keep the most popular",
                n_items=len(kept),
                bytes_needed=need,
            )
        return kept

    def fit(self, user_items: sp.csr_matrix) -> Self:
        kept = self.plan(user_items)
        x = self.input_.fit(user_items)
        xk = sp.csr_matrix(x[:, kept], dtype=np.float32)
        gram = np.asarray((xk.T @ xk).toarray(), dtype=np.float32)
        self.weights_ = _ease_weights(gram, self.l2)
        self.kept_ = kept
        self.tail_ = _tail_scores(user_items, kept)
        return self

    def _fitted(self) -> tuple[FloatArray, IntArray, FloatArray]:
        if self.weights_ is None or self.kept_ is None or self.tail_ is None:
            raise ModelError("EASERecommender is not fitted; call fit() first")
        return self.weights_, self.kept_, self.tail_

    @property
    def n_items_(self) -> int:
        return len(self._fitted()[2])

    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        return self.score_histories(user_items)

    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        weights, kept, tail = self._fitted()
        x = self.input_.transform(user_items)[:, kept]
        out = np.tile(tail, (user_items.shape[0], 1))
        out[:, kept] = np.asarray(x @ weights, dtype=np.float32)
        return out

    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        """Items whose score a listen to the query item raises most (row of B)."""
        weights, kept, tail = self._fitted()
        rows = np.asarray(item_rows, dtype=np.int64)
        position = np.full(len(tail), -1, dtype=np.int64)
        position[kept] = np.arange(len(kept))
        block = np.tile(tail, (len(rows), 1))
        known = position[rows] >= 0
        block[np.ix_(np.flatnonzero(known), kept)] = weights[position[rows[known]]]
        block[np.arange(len(rows)), rows] = -np.inf
        return top_k(block, k)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        weights, kept, tail = self._fitted()
        return {
            "b_weights": weights,
            "kept_items": kept,
            "tail_scores": tail,
            **self.input_.state(),
        }

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        weights, kept, tail = arrays["b_weights"], arrays["kept_items"], arrays["tail_scores"]
        n = len(kept)
        if weights.shape != (n, n) or tail.ndim != 1:
            raise ArtifactError(f"EASE weights {weights.shape} do not fit {n} kept items")
        if n and (kept.min() < 0 or kept.max() >= len(tail)):
            raise ArtifactError(f"kept item rows out of range for {len(tail)} items")
        self.weights_ = weights.astype(np.float32)
        self.kept_ = kept.astype(np.int64)
        self.tail_ = tail.astype(np.float32)
        self.input_.set_state(arrays)


def _ease_weights(gram: FloatArray, l2: float) -> FloatArray:
    """``B = -P / diag(P)`` with a zero diagonal, ``P = (gram + l2 I)^-1``, mostly in place."""
    n = gram.shape[0]
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    gram[np.diag_indices(n)] += np.float32(l2)
    # gram is symmetric, so its transpose is the same matrix in Fortran order: LAPACK then
    # works in place (its "upper" triangle is our lower one).
    factor, info = lapack.spotrf(gram.T, lower=False, clean=False, overwrite_a=True)
    if info != 0:
        raise ModelError(
            f"EASE Gram matrix is not positive definite (spotrf info={info}); raise l2"
        )
    inverse, info = lapack.spotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError(f"EASE inverse failed (spotri info={info})")
    p = np.ascontiguousarray(inverse.T) if not inverse.T.flags.c_contiguous else inverse.T
    _mirror_lower(p)
    diag = np.diag(p).copy()
    p /= -diag[None, :]
    p[np.diag_indices(n)] = 0.0
    return np.asarray(p, dtype=np.float32)


def _mirror_lower(p: FloatArray, block: int = 1024) -> None:
    """Fill the upper triangle from the lower one, block by block (no n x n temporary)."""
    n = p.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        p[start:stop, stop:] = p[stop:, start:stop].T
        tile = p[start:stop, start:stop]
        lower = np.tril(tile)
        tile[...] = lower + np.tril(tile, -1).T


def _tail_scores(user_items: sp.csr_matrix, kept: IntArray) -> FloatArray:
    """Scores for items left out: popularity order within (-TAIL, 0]; kept items get 0 here."""
    pop = np.bincount(sp.csr_matrix(user_items).indices, minlength=user_items.shape[1])
    order = np.lexsort((np.arange(len(pop)), -pop))
    rank = np.empty(len(pop), dtype=np.float64)
    rank[order] = np.arange(len(pop))
    tail = (-TAIL * (rank + 1) / (len(pop) + 1)).astype(np.float32)
    tail[kept] = 0.0
    return tail
