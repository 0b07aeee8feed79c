"""The vector index contract: inner-product top-k over a fixed set of item vectors.

One interface, several backends (``exact``, ``hnsw``, ``ivf``), one test suite. A model's score is
``user_vector . item_vector``, so the index answers "which items would the model rank first" without
scoring the whole catalogue. An index is saved as ``index.npz`` (arrays; a faiss index as its
serialised bytes, never pickle) and ``index.json`` (kind, parameters, measured recall, SHA-256).
"""

from __future__ import annotations

import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from setlist.arrays import FloatArray, IntArray, sha256_file
from setlist.errors import ArtifactError, ConfigError

INDEX_FORMAT = 1
_KINDS: dict[str, type[VectorIndex]] = {}


class VectorIndex(ABC):
    """Top-k by inner product over ``n`` vectors of dimension ``dim``."""

    kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _KINDS[cls.kind] = cls

    def __init__(self) -> None:
        self.recall_at_10: float | None = None  # measured against exact search at build

    @classmethod
    @abstractmethod
    def build(cls, vectors: FloatArray, **params: Any) -> Self:
        """An index over ``vectors`` (one row per item)."""

    @property
    @abstractmethod
    def n(self) -> int:
        """Number of indexed vectors."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector dimension."""

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Build and search parameters, JSON-serialisable."""

    @abstractmethod
    def _search(self, queries: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        """Raw top-k for float32 C-contiguous queries, ``1 <= k <= n``."""

    @abstractmethod
    def _state(self) -> dict[str, npt.NDArray[Any]]:
        """Arrays to save."""

    @classmethod
    @abstractmethod
    def _restore(cls, arrays: dict[str, npt.NDArray[Any]], params: dict[str, Any]) -> Self:
        """Rebuild from saved arrays and parameters."""

    def set_effort(self, effort: int) -> None:  # noqa: B027  (a no-op for exact search)
        """Set the search effort (HNSW ``efSearch``, IVF ``nprobe``); exact search has none."""

    def effort(self) -> int | None:
        return None

    def search(self, queries: npt.ArrayLike, k: int) -> tuple[IntArray, FloatArray]:
        """Top-k item rows and scores per query row, best first; padded with -1 / -inf."""
        q = np.ascontiguousarray(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ConfigError(f"queries must have {self.dim} columns, got shape {q.shape}")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        kk = min(k, self.n)
        if kk > 0 and q.shape[0] > 0:
            found, found_scores = self._search(q, kk)
            ids[:, :kk], scores[:, :kk] = found, found_scores
        ids[ids < 0] = -1
        scores[ids < 0] = -np.inf
        return ids, scores

    def search_one(self, query: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        """Top-k for one query vector (1-D, float32, ``dim`` long): the serving path.

        Unlike :meth:`search` it neither validates nor pads: fewer than k rows come back when
        the index holds fewer. Backends override it to skip the batch bookkeeping.
        """
        ids, scores = self.search(query[None, :], k)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def search_excluding(
        self, query: FloatArray, k: int, exclude: Sequence[int] | IntArray
    ) -> tuple[IntArray, FloatArray]:
        """Top-k for one query with the ``exclude`` rows left out (by over-fetching).

        Asks for ``k + len(exclude)`` so that every excluded row can be dropped and k remain.
        """
        banned = np.unique(np.asarray(exclude, dtype=np.int64))
        ids, scores = self.search(query, min(k + len(banned), max(self.n, 1)))
        keep = (ids[0] >= 0) & ~np.isin(ids[0], banned, assume_unique=False)
        return ids[0][keep][:k], scores[0][keep][:k]

    def save(self, path: Path) -> None:
        """Write ``index.npz`` and ``index.json`` into the folder ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        npz = path / "index.npz"
        np.savez(npz, **self._state())  # type: ignore[arg-type]
        doc = {
            "format": INDEX_FORMAT,
            "kind": self.kind,
            "n": self.n,
            "dim": self.dim,
            "params": self.get_params(),
            "recall_at_10": self.recall_at_10,
            "sha256": sha256_file(npz),
        }
        (path / "index.json").write_text(json.dumps(doc, indent=2, sort_keys=True))

    def describe(self) -> dict[str, Any]:
        """What /v1/model and the training run report about the index."""
        return {
            "kind": self.kind,
            "n": self.n,
            "dim": self.dim,
            "recall_at_10": self.recall_at_10,
            **self.get_params(),
        }


def index_class(kind: str) -> type[VectorIndex]:
    try:
        return _KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(_KINDS))
        raise ConfigError(f"unknown index kind {kind!r}; known: {known}") from None


def checked_doc(doc_path: Path, npz: Path, fmt: int, what: str) -> dict[str, Any]:
    """The JSON metadata beside a saved ``npz``, refused unless it is format ``fmt`` and the
    ``npz``'s SHA-256 is the one it records (changed or truncated arrays never load)."""
    try:
        doc = json.loads(doc_path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {what} metadata {doc_path}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ArtifactError(f"{doc_path}: not a format-{fmt} {what}")
    if not npz.exists() or sha256_file(npz) != doc.get("sha256"):
        raise ArtifactError(f"{npz}: SHA-256 does not match {doc_path} (changed or truncated)")
    return doc


def load_index(path: Path) -> VectorIndex:
    """Load an index saved by :meth:`VectorIndex.save`, refusing a changed or truncated one."""
    npz = path / "index.npz"
    doc = checked_doc(path / "index.json", npz, INDEX_FORMAT, "index")
    try:
        cls = index_class(str(doc.get("kind")))
        with np.load(npz, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        index = cls._restore(arrays, dict(doc.get("params") or {}))
    except (ConfigError, OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"cannot load the index in {path}: {exc}") from exc
    if index.n != doc.get("n") or index.dim != doc.get("dim"):
        raise ArtifactError(
            f"{path}: index holds {index.n}x{index.dim}, "
            f"metadata says {doc.get('n')}x{doc.get('dim')}"
        )
    recall = doc.get("recall_at_10")
    index.recall_at_10 = None if recall is None else float(recall)
    return index
