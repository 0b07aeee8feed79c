"""Rows of the bundle as the API's strings, a block at a time (one numpy gather, not one
lookup per reference: top picks names millions of them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from setlist.bundle import ModelBundle


def strings(values: npt.NDArray[Any], rows: list[int]) -> list[str]:
    """``str(values[r])`` for each of ``rows``."""
    return [str(v) for v in values[np.asarray(rows, dtype=np.int64)].tolist()]


def artist_labels(bundle: ModelBundle, cols: list[int]) -> Iterator[tuple[str, str]]:
    """(item id, name) of each artist column of ``bundle``, in order."""
    return zip(strings(bundle.items.ids, cols), strings(bundle.item_names, cols), strict=True)
