"""Row-wise helpers over sparse matrices, for answering blocks of listeners at once: the stored
entries of some rows, values at (row, column) pairs, the first few of each group."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp


def lookup(
    matrix: sp.csr_matrix, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """``matrix[rows[i], cols[i]]`` for every ``i`` (0 where absent); ``matrix`` has sorted
    indices and no duplicates."""
    width = np.int64(matrix.shape[1])
    keys = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr)) * width
    keys += matrix.indices
    wanted = np.asarray(rows, dtype=np.int64) * width + cols
    if not len(keys):
        return np.zeros(len(wanted))
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, matrix.data[at], 0.0).astype(np.float64)


def entries(
    matrix: sp.csr_matrix, rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The stored entries of ``matrix``'s ``rows``, in order: for each, which of ``rows`` it
    belongs to and its position in ``matrix.data``."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, lengths = matrix.indptr[rows], np.diff(matrix.indptr)[rows]
    which = np.repeat(np.arange(len(rows)), lengths)
    offsets = np.arange(len(which)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return which, (np.repeat(starts, lengths) + offsets).astype(np.int64)


def firsts(group: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.bool_]:
    """For ``group`` sorted ascending: whether each element is among its group's first ``n``."""
    result: npt.NDArray[np.bool_] = np.arange(len(group)) - np.searchsorted(group, group) < n
    return result


def split(
    group: npt.NDArray[np.int64], values: npt.NDArray[np.int64], n_groups: int
) -> list[list[int]]:
    """``values`` as one list per group ``0 .. n_groups - 1`` (``group`` sorted ascending)."""
    bounds = np.searchsorted(group, np.arange(n_groups + 1)).tolist()
    flat = np.asarray(values).tolist()
    return [flat[bounds[g] : bounds[g + 1]] for g in range(n_groups)]
