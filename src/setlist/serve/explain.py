"""``because``: the heard items that contributed most to each recommended item, with names.

The split comes from the model (:meth:`Recommender.explain`): for ALS, the fold-in normal
equations attribute each score exactly to the heard items (implicit's ``explain``). A model that
cannot attribute its scores (popularity, ...) gives no reasons, and none are invented.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from setlist.models.base import IntArray, Recommender

log = logging.getLogger(__name__)

MAX_BECAUSE = 3


@dataclass(frozen=True)
class Reason:
    item_id: str
    name: str
    contribution: float


def explain(
    model: Recommender,
    confidences: sp.csr_matrix,
    rows: IntArray,
    item_ids: np.ndarray,
    item_names: np.ndarray,
    n: int = MAX_BECAUSE,
) -> list[list[Reason]]:
    """Up to ``n`` reasons per row of ``rows`` for the listener whose history is ``confidences``.

    Never raises: a model whose explanation fails answers without reasons (and it is logged).
    """
    if len(rows) == 0 or confidences.nnz == 0:
        return [[] for _ in range(len(rows))]
    try:
        heard, weights = model.explain(confidences, rows, n)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        log.warning("explanation failed for a %s model", model.kind, exc_info=True)
        return [[] for _ in range(len(rows))]
    out: list[list[Reason]] = []
    for row_heard, row_weights in zip(heard.tolist(), weights.tolist(), strict=True):
        out.append(
            [
                Reason(str(item_ids[h]), str(item_names[h]), float(w))
                for h, w in zip(row_heard, row_weights, strict=True)
                if h >= 0 and math.isfinite(w) and w > 0
            ]
        )
    return out
