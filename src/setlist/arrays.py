"""Shared array types and the two helpers every layer uses: row-wise top-k and file hashing.

A leaf module: it imports nothing of setlist, so models, indexes, the bundle and the service
can all use it without an import pointing up the flow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def top_k(scores: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """Row-wise top-k (descending) of a dense score block, ties broken by lower column.

    A ``-inf`` score marks an excluded item (seen, or the query item itself), so its row is
    returned as -1 like padding; otherwise a k near the catalogue size would leak it back.
    """
    n, m = scores.shape
    kk = min(k, m)
    ids = np.full((n, k), -1, dtype=np.int64)
    out = np.full((n, k), -np.inf, dtype=np.float32)
    if kk == 0:
        return ids, out
    if kk < m:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.tile(np.arange(m), (n, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    ids[:, :kk] = np.take_along_axis(part, order, axis=1)
    out[:, :kk] = np.take_along_axis(part_scores, order, axis=1)
    ids[out == -np.inf] = -1
    return ids, out
