"""Row-wise helpers over sparse matrices, for answering blocks of listeners at once: the stored
entries of some rows, values at (row, column) pairs, the first few of each group."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp


def lookup(
    matrix: sp.csr_matrix, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """``matrix[rows[i], cols[i]]`` for every ``i`` (0 where absent; ``matrix`` without
    duplicates): each asked row spread once over a dense scratch row, then read."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    order = None
    if len(rows) > 1 and (np.diff(rows) < 0).any():
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
    found = np.zeros(len(rows))
    scratch = np.zeros(matrix.shape[1])
    bounds = np.searchsorted(rows, np.arange(matrix.shape[0] + 1))
    asked = np.flatnonzero(np.diff(bounds)).tolist()
    bounds, indptr = bounds.tolist(), matrix.indptr
    for r in asked:
        start, end = bounds[r], bounds[r + 1]
        at = matrix.indices[indptr[r] : indptr[r + 1]]
        scratch[at] = matrix.data[indptr[r] : indptr[r + 1]]
        found[start:end] = scratch[cols[start:end]]
        scratch[at] = 0.0
    if order is not None:
        found[order] = found.copy()
    return found


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


def strongest(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """``matrix`` with only each row's ``n`` largest stored values kept (ties: the first)."""
    m = sp.csr_matrix(matrix)
    counts = np.diff(m.indptr)
    if not len(counts) or counts.max() <= n:
        return m
    keep = np.zeros(m.nnz, dtype=bool)
    indptr = m.indptr.tolist()
    for r in np.flatnonzero(counts).tolist():
        start, end = indptr[r], indptr[r + 1]
        if end - start <= n:
            keep[start:end] = True
        else:
            best = np.argpartition(-m.data[start:end], n - 1)[:n]
            keep[start + best] = True
    rows = np.repeat(np.arange(m.shape[0]), counts)[keep]
    return sp.csr_matrix((m.data[keep], (rows, m.indices[keep])), shape=m.shape)
