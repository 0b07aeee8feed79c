"""Id maps and sparse matrices: external ids <-> rows, CSR building, confidence weighting."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.config import WeightConfig
from setlist.errors import ConfigError, NotFoundError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


class IdIndex:
    """A bijection between external string ids and contiguous rows 0..n-1."""

    def __init__(self, ids: Sequence[str] | npt.NDArray[np.str_]) -> None:
        self.ids: npt.NDArray[np.str_] = np.asarray(ids, dtype=np.str_)
        self._rows = {str(v): i for i, v in enumerate(self.ids.tolist())}
        if len(self._rows) != len(self.ids):
            raise ConfigError("IdIndex ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._rows

    def row(self, external_id: str) -> int:
        try:
            return self._rows[external_id]
        except KeyError:
            raise NotFoundError(f"unknown id {external_id!r}", id=external_id) from None

    def get(self, external_id: str) -> int | None:
        return self._rows.get(external_id)

    def rows(self, external_ids: Iterable[str]) -> IntArray:
        """Rows for ids; unknown ids are -1."""
        return np.fromiter((self._rows.get(x, -1) for x in external_ids), dtype=np.int64)

    def external(self, rows: npt.ArrayLike) -> list[str]:
        return [str(x) for x in self.ids[np.asarray(rows, dtype=np.int64)]]

    @classmethod
    def from_series(cls, values: pl.Series) -> IdIndex:
        """Index of the unique values, in sorted order (deterministic for a given input)."""
        return cls(values.unique().sort().to_numpy().astype(np.str_))


@dataclass
class InteractionMatrix:
    """A user x item CSR matrix of raw weights (play counts) with its two id indexes."""

    users: IdIndex
    items: IdIndex
    csr: sp.csr_matrix

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.users), len(self.items))

    @property
    def nnz(self) -> int:
        return int(self.csr.nnz)

    def save_indexes(self, path: Path) -> None:
        np.savez(path, users=self.users.ids, items=self.items.ids)


def build_matrix(
    interactions: pl.DataFrame,
    users: IdIndex | None = None,
    items: IdIndex | None = None,
) -> InteractionMatrix:
    """Sum weights per (user, item) into a CSR matrix.

    With given indexes, rows whose user or item is not in them are dropped (so a test frame
    can be laid over a train index); without, the indexes are built from the frame.
    """
    users = users or IdIndex.from_series(interactions.get_column("user"))
    items = items or IdIndex.from_series(interactions.get_column("item"))
    u = _rows_of(interactions.get_column("user"), users)
    i = _rows_of(interactions.get_column("item"), items)
    w = interactions.get_column("weight").to_numpy().astype(np.float32)
    keep = (u >= 0) & (i >= 0)
    csr = sp.csr_matrix((w[keep], (u[keep], i[keep])), shape=(len(users), len(items)))
    csr.sum_duplicates()
    csr.sort_indices()
    return InteractionMatrix(users=users, items=items, csr=csr.astype(np.float32))


def _rows_of(values: pl.Series, index: IdIndex) -> IntArray:
    lookup = pl.DataFrame(
        {"key": index.ids.tolist(), "row": np.arange(len(index), dtype=np.int64)},
        schema={"key": pl.String, "row": pl.Int64},
    )
    joined = pl.DataFrame({"key": values}).join(lookup, on="key", how="left", maintain_order="left")
    return joined.get_column("row").fill_null(-1).to_numpy().astype(np.int64)


def weight(csr: sp.csr_matrix, config: WeightConfig) -> sp.csr_matrix:
    """Turn raw play counts into confidences.

    - ``none``: binary (every heard item counts 1),
    - ``linear``: ``alpha * plays`` (Hu, Koren & Volinsky),
    - ``log1p``: ``alpha * log1p(plays)`` (damps heavy listeners' long tails),
    - ``bm25``: BM25 over the item columns, as in implicit's ``bm25_weight``, times ``alpha``.
    """
    out = csr.astype(np.float32, copy=True)
    if config.scheme == "none":
        out.data[:] = 1.0
    elif config.scheme == "linear":
        out.data *= config.alpha
    elif config.scheme == "log1p":
        out.data = (config.alpha * np.log1p(out.data)).astype(np.float32)
    elif config.scheme == "bm25":
        out = bm25(out, config.bm25_k1, config.bm25_b) * np.float32(config.alpha)
    else:
        raise ConfigError(f"unknown weighting {config.scheme!r}; use none, linear, log1p or bm25")
    return sp.csr_matrix(out, dtype=np.float32)


def bm25(csr: sp.csr_matrix, k1: float = 1.2, b: float = 0.75) -> sp.csr_matrix:
    """BM25 over the rows: rows are documents, columns terms (implicit's ``bm25_weight``)."""
    coo = csr.tocoo()
    n_users = csr.shape[0]
    item_users = np.bincount(coo.col, minlength=csr.shape[1])
    idf = np.log(n_users) - np.log1p(item_users)
    row_sums = np.ravel(csr.sum(axis=1))
    avg = row_sums.mean() if row_sums.size else 1.0
    length_norm = (1.0 - b) + b * row_sums / max(avg, 1e-9)
    data = coo.data * (k1 + 1.0) / (k1 * length_norm[coo.row] + coo.data) * idf[coo.col]
    return sp.csr_matrix((data.astype(np.float32), (coo.row, coo.col)), shape=csr.shape)
