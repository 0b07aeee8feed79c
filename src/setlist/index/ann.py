"""Approximate inner-product search with faiss: HNSW (graph) and IVF (inverted lists).

IVF keeps full float32 vectors (``Flat``) and HNSW walks 8-bit ones and re-ranks its best
candidates exactly (see :class:`HNSWIndex`), so the approximation is only in which vectors get
looked at; the search effort (``efSearch`` / ``nprobe``) is tuned at build until recall@10
against exact search reaches the target (see :mod:`setlist.index.build`). A faiss index is saved
as the bytes of ``faiss.serialize_index`` in an ``.npz`` array: data, never code.

The effort travels with each search as faiss ``SearchParameters`` rather than being set on the
shared index, so that threads searching at once with different k never see each other's value.
HNSW's defaults are ``M`` 16 and ``efConstruction`` 200: on factor vectors (300k x 128, those of
``benchmarks/serving.py``) ``M`` 16 reaches the recall@10 of 32 in about two thirds of the time
per query, and the better graph of ``efConstruction`` 200 (twice the build time of 100) needs an
``efSearch`` about a third lower for the same recall. After the build, HNSW's
entries are renumbered so that graph neighbours sit close in memory (``order`` maps faiss
positions back to item rows, saved with the index).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.errors import ConfigError
from setlist.index.base import VectorIndex


def _faiss() -> Any:
    import faiss  # imported late: it takes a moment and only ANN catalogues need it

    return faiss


def set_search_threads(threads: int) -> None:
    """OpenMP threads faiss may use; the service uses 1 (one query per request, many requests)."""
    _faiss().omp_set_num_threads(max(1, int(threads)))


class FaissIndex(VectorIndex):
    """A faiss index with inner-product metric; subclasses say how it is built and tuned."""

    kind: ClassVar[str]

    def __init__(self, index: Any, params: dict[str, Any], order: IntArray | None = None) -> None:
        super().__init__()
        self.index = index
        self.params = dict(params)
        # Position in the faiss index -> item row, where the entries were reordered for locality.
        self.order = None if order is None else np.ascontiguousarray(order, dtype=np.int64)
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

    def _search_params(self, k: int) -> Any:
        """faiss search parameters for a top-``k`` search (None: the index's own settings)."""
        return None

    def _search(self, queries: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        scores, ids = self.index.search(queries, k, params=self._search_params(k))
        if self.order is not None:
            ids = np.where(ids >= 0, self.order[ids], -1)
        return ids.astype(np.int64, copy=False), scores.astype(np.float32, copy=False)

    def search_one(self, query: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        k = min(k, self.n)
        if k < 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores, ids = self.index.search(query.reshape(1, -1), k, params=self._search_params(k))
        found, values = ids[0], scores[0]
        if found[-1] < 0:  # fewer than k reachable: drop faiss's -1 padding
            keep = found >= 0
            found, values = found[keep], values[keep]
        return (found if self.order is None else self.order[found]), values

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        state: dict[str, npt.NDArray[Any]] = {
            "faiss": np.asarray(_faiss().serialize_index(self.index), dtype=np.uint8)
        }
        if self.order is not None:
            state["order"] = self.order
        return state

    @classmethod
    def _restore(cls, arrays: dict[str, npt.NDArray[Any]], params: dict[str, Any]) -> Self:
        blob = np.ascontiguousarray(arrays["faiss"], dtype=np.uint8)
        index = _faiss().deserialize_index(blob)
        order = arrays.get("order")
        if order is not None and (order.shape != (index.ntotal,) or order.dtype.kind not in "iu"):
            raise ValueError(f"index order of shape {order.shape} does not fit {index.ntotal}")
        return cls(index, params, order)


class HNSWIndex(FaissIndex):
    """Hierarchical navigable small-world graph over inner product.

    ``storage`` ``sq8`` (the default): the graph walks 8-bit scalar-quantised vectors
    (``IndexHNSWSQ``), a quarter of float32's memory, and the k + ``EXTRA`` best it finds are
    re-ranked exactly against float32 copies (``IndexRefine`` over an ``IndexFlatIP``), so the
    scores returned are exact (``sq6`` and ``sq4`` likewise, with 6- and 4-bit codes). A walk
    touches about a thousand vectors and the re-ranking a few dozen: on 300k x 128 factors, a
    third less time per single query at the same recall@10 (``flat``: every vector float32,
    about 20% less memory).
    """

    kind = "hnsw"
    EXTRA = 10  # candidates re-ranked beyond the k asked for (quantised storage)

    @classmethod
    def build(cls, vectors: FloatArray, **params: Any) -> Self:
        faiss = _faiss()
        m = int(params.get("m", 16))
        ef_construction = int(params.get("ef_construction", 200))
        storage = str(params.get("storage", "sq8"))
        if m < 4 or ef_construction < 8:
            raise ConfigError(
                f"HNSW needs m >= 4 and ef_construction >= 8, got {m}, {ef_construction}"
            )
        dim = int(vectors.shape[1])
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        if storage == "flat":
            graph = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        elif storage in _QUANTISERS:
            quantiser = getattr(faiss.ScalarQuantizer, _QUANTISERS[storage])
            graph = faiss.IndexHNSWSQ(dim, quantiser, m, faiss.METRIC_INNER_PRODUCT)
            graph.train(x)
        else:
            known = ", ".join(["flat", *_QUANTISERS])
            raise ConfigError(
                f"HNSW storage must be one of {known}, got {storage!r}", field="storage"
            )
        graph.hnsw.efConstruction = ef_construction
        graph.add(x)
        order = _graph_order(graph)
        graph.permute_entries(order)
        index = graph
        if storage != "flat":
            exact = faiss.IndexFlatIP(dim)
            exact.add(np.ascontiguousarray(x[order]))  # in the graph's (renumbered) order
            index = faiss.IndexRefine(graph, exact)
            index.own_fields = True
            index.own_refine_index = True
            graph.this.disown()
            exact.this.disown()
        effort = int(params.get("effort", cls.default_effort()))
        built = {"m": m, "ef_construction": ef_construction, "storage": storage, "effort": effort}
        return cls(index, built, order)

    @property
    def graph(self) -> Any:
        """The ``IndexHNSW`` itself (inside the re-ranking wrapper when quantised)."""
        faiss = _faiss()
        index = self.index
        if isinstance(index, faiss.IndexRefine):
            return faiss.downcast_index(index.base_index)
        return index

    def set_effort(self, effort: int) -> None:
        self.params["effort"] = max(1, int(effort))
        self.graph.hnsw.efSearch = self.params["effort"]
        self._by_k: dict[int, Any] = {}  # search parameters by k, made once per k

    def _search_params(self, k: int) -> Any:
        found = self._by_k.get(k)
        if found is None:
            if len(self._by_k) > 4096:  # k varies with history lengths: keep it bounded
                self._by_k.clear()
            found = self._by_k[k] = self._params_for(k)
        return found

    def _params_for(self, k: int) -> Any:
        faiss = _faiss()
        quantised = self.params.get("storage", "flat") != "flat"
        wanted = k + self.EXTRA if quantised else k
        # efSearch below the candidates asked of the graph would cut its list short.
        hnsw = faiss.SearchParametersHNSW(efSearch=max(self.params["effort"], wanted))
        if not quantised:
            return hnsw
        # faiss takes k * k_factor (a float32) down to an integer: half a candidate of margin.
        factor = (wanted + 0.5) / k
        refine = faiss.IndexRefineSearchParameters(k_factor=factor, base_index_params=hnsw)
        refine.keep = hnsw  # the wrapper holds a pointer: keep the Python object alive
        return refine


class IVFIndex(FaissIndex):
    """Inverted lists over k-means cells (``IndexIVFFlat``, inner product), ``nprobe`` read."""

    kind = "ivf"
    _at_effort: Any  # the faiss SearchParameters at the tuned effort, built once

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
        self._at_effort = _faiss().SearchParametersIVF(nprobe=self.params["effort"])

    def _search_params(self, k: int) -> Any:
        return self._at_effort

    def _search(self, queries: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        if len(queries) < _SORT_QUERIES:
            return super()._search(queries, k)
        # Many queries (recommend-all): in order of their nearest cell, so that a thread's
        # consecutive queries scan the same lists while those are in cache (a quarter less
        # time for 359k users over 300k x 64 items); the answers go back in the given order.
        _, cells = self.index.quantizer.search(queries, 1)
        order = np.argsort(cells[:, 0], kind="stable")
        ids, scores = super()._search(np.ascontiguousarray(queries[order]), k)
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return ids[back], scores[back]


def _graph_order(index: Any) -> IntArray:
    """Entries in reverse Cuthill-McKee order of the HNSW base layer (position -> item row).

    A search walks from node to graph neighbour; numbered this way, neighbours lie close
    together in memory, so a walk touches fewer cache lines and pages (about 15% less time per
    query on 300k x 128 factors, the figure of ``benchmarks/serving.py``).
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    faiss = _faiss()
    n = int(index.ntotal)
    links = faiss.vector_to_array(index.hnsw.neighbors)
    offsets = faiss.vector_to_array(index.hnsw.offsets).astype(np.int64)[:n]
    per_level = faiss.vector_to_array(index.hnsw.cum_nneighbor_per_level)
    width = int(per_level[1] - per_level[0])  # base-layer links per node, stored first
    cols = links[offsets[:, None] + np.arange(width)[None, :]].astype(np.int64)
    rows = np.repeat(np.arange(n, dtype=np.int64), width)
    keep = cols.ravel() >= 0
    graph = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.int8), (rows[keep], cols.ravel()[keep])), shape=(n, n)
    )
    return np.asarray(reverse_cuthill_mckee(graph, symmetric_mode=False), dtype=np.int64)


_QUANTISERS = {"sq8": "QT_8bit", "sq6": "QT_6bit", "sq4": "QT_4bit"}  # HNSW storage -> faiss
_SORT_QUERIES = 256  # batches at least this large are searched in order of their cells


def _default_nlist(n: int) -> int:
    """About 4 sqrt(n) cells, a power of two (faiss's rule of thumb for IVF)."""
    return int(2 ** round(math.log2(max(1.0, 4.0 * math.sqrt(n)))))
