"""Approximate inner-product search with faiss: HNSW (graph) and IVF (inverted lists).

Both keep full float32 vectors (``Flat``), so the only approximation is which vectors get looked
at; the search effort (``efSearch`` / ``nprobe``) is tuned at build until recall@10 against exact
search reaches the target (see :mod:`setlist.index.build`). A faiss index is saved as the bytes of
``faiss.serialize_index`` in an ``.npz`` array: data, never code.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from setlist.errors import ConfigError
from setlist.index.base import VectorIndex
from setlist.models.base import FloatArray, IntArray


def _faiss() -> Any:
    import faiss  # imported late: it takes a moment and only ANN catalogues need it

    return faiss


def set_search_threads(threads: int) -> None:
    """OpenMP threads faiss may use; the service uses 1 (one query per request, many requests)."""
    _faiss().omp_set_num_threads(max(1, int(threads)))


class FaissIndex(VectorIndex):
    """A faiss index with inner-product metric; subclasses say how it is built and tuned."""

    kind: ClassVar[str]

    def __init__(self, index: Any, params: dict[str, Any]) -> None:
        super().__init__()
        self.index = index
        self.params = dict(params)
        self.set_effort(int(self.params.get("effort", self.default_effort())))

    @classmethod
    def default_effort(cls) -> int:
        return 64

    @property
    def n(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def get_params(self) -> dict[str, Any]:
        return dict(self.params)

    def effort(self) -> int:
        return int(self.params["effort"])

    def _search(self, queries: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        scores, ids = self.index.search(queries, k)
        return ids.astype(np.int64, copy=False), scores.astype(np.float32, copy=False)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {"faiss": np.asarray(_faiss().serialize_index(self.index), dtype=np.uint8)}

    @classmethod
    def _restore(cls, arrays: dict[str, npt.NDArray[Any]], params: dict[str, Any]) -> Self:
        blob = np.ascontiguousarray(arrays["faiss"], dtype=np.uint8)
        return cls(_faiss().deserialize_index(blob), params)


class HNSWIndex(FaissIndex):
    """Hierarchical navigable small-world graph (``IndexHNSWFlat``, inner product)."""

    kind = "hnsw"

    @classmethod
    def build(cls, vectors: FloatArray, **params: Any) -> Self:
        faiss = _faiss()
        m = int(params.get("m", 32))
        ef_construction = int(params.get("ef_construction", 100))
        if m < 4 or ef_construction < 8:
            raise ConfigError(
                f"HNSW needs m >= 4 and ef_construction >= 8, got {m}, {ef_construction}"
            )
        index = faiss.IndexHNSWFlat(int(vectors.shape[1]), m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        effort = int(params.get("effort", cls.default_effort()))
        return cls(index, {"m": m, "ef_construction": ef_construction, "effort": effort})

    def set_effort(self, effort: int) -> None:
        self.params["effort"] = max(1, int(effort))
        self.index.hnsw.efSearch = self.params["effort"]

    def _search(self, queries: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        # efSearch below k would cut the candidate list short of k.
        if self.index.hnsw.efSearch < k:
            self.index.hnsw.efSearch = k
            try:
                return super()._search(queries, k)
            finally:
                self.index.hnsw.efSearch = self.params["effort"]
        return super()._search(queries, k)


class IVFIndex(FaissIndex):
    """Inverted lists over k-means cells (``IndexIVFFlat``, inner product), ``nprobe`` read."""

    kind = "ivf"

    @classmethod
    def default_effort(cls) -> int:
        return 16

    @classmethod
    def build(cls, vectors: FloatArray, **params: Any) -> Self:
        faiss = _faiss()
        n, dim = vectors.shape
        nlist = int(params.get("nlist") or _default_nlist(n))
        nlist = max(1, min(nlist, n))
        seed = int(params.get("seed", 0))
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        quantizer = faiss.IndexFlatIP(int(dim))
        index = faiss.IndexIVFFlat(quantizer, int(dim), nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        sample = min(n, 64 * nlist)
        rows = np.random.default_rng(seed).choice(n, size=sample, replace=False)
        index.train(x[np.sort(rows)])
        index.add(x)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index owns its quantizer from here on
        effort = int(params.get("effort", cls.default_effort()))
        return cls(index, {"nlist": nlist, "seed": seed, "effort": effort})

    def set_effort(self, effort: int) -> None:
        self.params["effort"] = max(1, min(int(effort), int(self.index.nlist)))
        self.index.nprobe = self.params["effort"]


def _default_nlist(n: int) -> int:
    """About 4 sqrt(n) cells, a power of two (faiss's rule of thumb for IVF)."""
    return int(2 ** round(math.log2(max(1.0, 4.0 * math.sqrt(n)))))
