"""Taste buddies through a vector index over listeners, recall-checked against the exact pairing.

The exact pairing (:mod:`setlist.index.buddies`) ranks every listener by the cosine of sparse
log1p x IDF taste vectors less ``hub_weight`` times the candidate's hubness. Here those vectors
are reduced by truncated SVD (``dims``, 128 by default) and one coordinate is added so that the
hub correction survives as an inner product: a listener is indexed as ``[x, -hub_weight * hub]``
and asks as ``[x, 1]``, so ``query . item = x_q . x_v - hub_weight * hub_v``. The index (faiss
HNSW by default, built and effort-tuned by :func:`setlist.index.build.tuned_index`) proposes
``candidates`` listeners, which are re-ranked by the exact pairing: 128 dimensions keep only a
quarter of HetRec's taste energy, and the reduced ranking alone finds 0.63 of the exact top ten,
while its best 100 hold 0.97 of them. ``candidates`` is doubled from its configured start until
recall@10 against the exact pairing, on a sample of listeners, reaches the target; below
``min_recall`` the build fails, as the item index's does.

Saved as a folder: ``listeners.npz`` (the IDF weights, the SVD components, each listener's
hubness), ``index/`` (the vector index, with its own SHA-256) and ``listeners.json`` (format,
sizes, depth, measured recall, the SHA-256 of ``listeners.npz``). The sparse taste vectors are
recomputed from the bundle's history with the saved IDF weights when loaded.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from setlist.arrays import sha256_file
from setlist.config import IndexConfig
from setlist.errors import ArtifactError, ModelError
from setlist.index.base import VectorIndex, checked_doc, load_index
from setlist.index.buddies import HUB_WEIGHT, hubness, idf_weights, nearest, weigh
from setlist.index.build import RECALL_K, recall_at_k, tuned_index

log = logging.getLogger(__name__)

LISTENERS_FORMAT = 1


@dataclass
class ListenerIndex:
    """Nearest listeners by the hub-corrected taste pairing, through a vector index."""

    idf: npt.NDArray[np.float64]  # per artist
    components: npt.NDArray[np.float32]  # artists x dims (SVD right singular vectors, rows)
    hubs: npt.NDArray[np.float64]  # per listener: mean cosine to every other listener
    index: VectorIndex  # over [reduced taste, -hub_weight * hub]
    vectors: sp.csr_matrix  # listeners x artists, the exact taste vectors
    candidates: int = 50
    hub_weight: float = HUB_WEIGHT
    recall_at_10: float | None = None  # the final top ten's, against the exact pairing
    #: The vector index's own recall@``candidates`` against exact search in the reduced space.
    index_recall: float | None = None

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dims(self) -> int:
        return int(self.components.shape[1])

    @classmethod
    def build(cls, history: sp.csr_matrix, config: IndexConfig) -> ListenerIndex | None:
        """The index over the listeners of ``history`` (play counts), or None where there are
        too few listeners or artists to reduce (or ``config.listeners.dims`` is 0).

        Raises :class:`ModelError` when recall@10 against the exact pairing stays below
        ``config.min_recall`` even with every listener as a candidate.
        """
        settings = config.listeners
        history = sp.csr_matrix(history)
        dims = min(settings.dims, min(history.shape) - 1)
        if dims < 1 or history.nnz == 0:
            return None
        idf = idf_weights(history)
        vectors = weigh(history, idf)
        hubs = hubness(vectors)
        _, _, right = svds(vectors, k=dims, random_state=config.seed)
        components = np.ascontiguousarray(right.T, dtype=np.float32)
        reduced = np.asarray(vectors @ components, dtype=np.float32)
        items = np.hstack([reduced, (-HUB_WEIGHT * hubs)[:, None].astype(np.float32)])
        queries = np.hstack([reduced, np.ones((len(reduced), 1), dtype=np.float32)])
        first = max(RECALL_K + 1, min(settings.candidates, len(reduced)))
        index, reduced_recall = tuned_index(items, queries, _index_config(config), first)
        found = cls(idf, components, hubs, index, vectors, first)
        found.index_recall = reduced_recall
        found.recall_at_10 = found._tune_depth(config)
        return found

    def _tune_depth(self, config: IndexConfig) -> float:
        """Double ``candidates`` until recall@10 against the exact pairing reaches the target
        on one sample of listeners; returns the recall measured on a second, disjoint one."""
        rng = np.random.default_rng(config.seed)
        rows = rng.choice(self.n, size=min(self.n, 2 * config.recall_queries), replace=False)
        half = max(1, len(rows) // 2)
        tune, check = rows[:half], rows[half:] if len(rows) > half else rows[:half]
        target = min(1.0, config.min_recall + config.recall_margin)
        tune_truth, check_truth = self._truth(tune), self._truth(check)
        while self._recall(tune, tune_truth) < target and self.candidates < self.n:
            self.candidates = min(2 * self.candidates, self.n)
        measured = self._recall(check, check_truth)
        log.info(
            "listener index over %d listeners (%d dims): recall@10 %.4f at %d candidates",
            self.n,
            self.dims,
            measured,
            self.candidates,
        )
        if measured < config.min_recall:
            raise ModelError(
                f"listener index recall@10 {measured:.4f} against the exact pairing is below "
                f"the required {config.min_recall} ({self.candidates} candidates, {self.dims} "
                f"dims, {self.n} listeners); refusing to build it",
                field="index_min_recall",
            )
        return measured

    def _truth(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        truth = np.full((len(rows), RECALL_K), -1, dtype=np.int64)
        for i, row in enumerate(rows.tolist()):
            found, _ = nearest(self.vectors, self.vectors[row], RECALL_K, row, self.hubs)
            truth[i, : len(found)] = found
        return truth

    def _recall(self, rows: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> float:
        found = np.full((len(rows), RECALL_K), -1, dtype=np.int64)
        for i, row in enumerate(rows.tolist()):
            got, _ = self.search(self.vectors[row], RECALL_K, exclude=row)
            found[i, : len(got)] = got
        return recall_at_k(found, truth)

    def query(self, plays: sp.csr_matrix) -> sp.csr_matrix:
        """The taste vectors (listeners x artists) of listeners with these play counts (as
        :func:`setlist.index.buddies.weigh`, row by row without its matrix bookkeeping)."""
        rows = sp.csr_matrix(plays)
        rows.sum_duplicates()
        if rows.nnz and float(rows.data.min()) < 0:
            raise ValueError("history: play counts must not be negative")
        data = np.log1p(rows.data.astype(np.float64)) * self.idf[rows.indices]
        owner = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
        norms = np.sqrt(np.bincount(owner, data * data, minlength=rows.shape[0]))
        norms[norms == 0] = 1.0
        return sp.csr_matrix(
            (data / norms[owner], rows.indices.copy(), rows.indptr.copy()), shape=rows.shape
        )

    def search(
        self, query: sp.csr_matrix, k: int, exclude: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The ``k`` listeners nearest the taste vector ``query`` (1 x artists, normalised),
        best first, never ``exclude`` nor one sharing nothing: rows and plain cosines."""
        rows, cosines = self.search_block(query, k, None if exclude is None else [exclude])
        keep = rows[0] >= 0
        return rows[0][keep], cosines[0][keep]

    def search_block(
        self, queries: sp.csr_matrix, k: int, exclude: Sequence[int | None] | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """:meth:`search` for each row of ``queries`` (``exclude``: one row or None per query)
        in one index search: ``(queries x k)`` rows, best first, padded with -1 (cosine 0)."""
        queries = sp.csr_matrix(queries)
        b = queries.shape[0]
        banned = np.full(b, -1, dtype=np.int64)
        if exclude is not None:
            banned[:] = [-1 if e is None else e for e in exclude]
        probes = np.ones((b, self.dims + 1), dtype=np.float32)
        probes[:, :-1] = queries.astype(np.float32) @ self.components
        depth = max(self.candidates, k) + bool((banned >= 0).any())
        found, _ = self.index.search(probes, depth)
        owner = np.repeat(np.arange(b), found.shape[1])
        rows = found.ravel()
        keep = (rows >= 0) & (rows != banned[owner])
        owner, rows = owner[keep], rows[keep]
        cosines = np.asarray(self.vectors[rows].multiply(queries[owner]).sum(axis=1)).ravel()
        scores = cosines - self.hub_weight * self.hubs[rows]
        keep = cosines > 0
        owner, rows, cosines, scores = owner[keep], rows[keep], cosines[keep], scores[keep]
        order = np.lexsort((rows, -scores, owner))
        owner, rows, cosines = owner[order], rows[order], cosines[order]
        rank = np.arange(len(owner)) - np.searchsorted(owner, owner)
        keep = rank < k
        out_rows = np.full((b, k), -1, dtype=np.int64)
        out_cos = np.zeros((b, k), dtype=np.float64)
        out_rows[owner[keep], rank[keep]] = rows[keep]
        out_cos[owner[keep], rank[keep]] = cosines[keep]
        return out_rows, out_cos

    def describe(self) -> dict[str, Any]:
        """What the bundle's metadata records about the listener index."""
        return {
            "n": self.n,
            "dims": self.dims,
            "candidates": self.candidates,
            "hub_weight": self.hub_weight,
            "recall_at_10": self.recall_at_10,
            "index_recall": self.index_recall,
            "index": self.index.describe(),
        }

    def save(self, path: Path) -> None:
        """Write ``listeners.npz``, ``index/`` and ``listeners.json`` into the folder ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        npz = path / "listeners.npz"
        np.savez(npz, idf=self.idf, components=self.components, hubs=self.hubs)
        self.index.save(path / "index")
        doc = {"format": LISTENERS_FORMAT, "sha256": sha256_file(npz), **self.describe()}
        (path / "listeners.json").write_text(json.dumps(doc, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path, history: sp.csr_matrix) -> ListenerIndex:
        """Load an index saved by :meth:`save` for the listeners of ``history``, refusing a
        changed, truncated or mismatched one."""
        npz = path / "listeners.npz"
        doc = checked_doc(path / "listeners.json", npz, LISTENERS_FORMAT, "listener index")
        try:
            with np.load(npz, allow_pickle=False) as data:
                idf = data["idf"].astype(np.float64)
                components = data["components"].astype(np.float32)
                hubs = data["hubs"].astype(np.float64)
            candidates, hub_weight = int(doc["candidates"]), float(doc["hub_weight"])
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            raise ArtifactError(f"cannot read the listener index in {path}: {exc}") from exc
        index = load_index(path / "index")
        n_users, n_items = history.shape
        if len(idf) != n_items or components.shape[:1] != (n_items,) or len(hubs) != n_users:
            raise ArtifactError(
                f"{path}: listener index is for {len(hubs)} listeners x {len(idf)} artists, "
                f"the bundle has {n_users} x {n_items}"
            )
        if index.n != n_users or index.dim != components.shape[1] + 1:
            raise ArtifactError(
                f"{path}: index holds {index.n}x{index.dim}, expected {n_users}x"
                f"{components.shape[1] + 1}"
            )
        recall, index_recall = doc.get("recall_at_10"), doc.get("index_recall")
        return cls(
            idf,
            components,
            hubs,
            index,
            weigh(sp.csr_matrix(history), idf),
            candidates,
            hub_weight,
            None if recall is None else float(recall),
            None if index_recall is None else float(index_recall),
        )


def _index_config(config: IndexConfig) -> IndexConfig:
    """The item index's settings with the listener index's kind."""
    return replace(config, kind=config.listeners.kind)
