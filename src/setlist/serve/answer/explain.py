"""``because``: the heard items that contributed most to each recommended item, with names.

The split comes from the model (:meth:`Recommender.explain`): for ALS, the fold-in normal
equations attribute each score exactly to the heard items (implicit's ``explain``). A model that
cannot attribute its scores (popularity, ...) gives no reasons, and none are invented.

It runs on every personalised answer, so it stays small: one call into the model for the k shown
items, then plain Python over the ids and names the answerer keeps as lists.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import NotRequired, TypedDict

import numpy as np
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.models.base import Recommender

log = logging.getLogger(__name__)

MAX_BECAUSE = 3


class Reason(TypedDict):
    """One heard item and how much it added to a recommended item's score.

    A plain dict at run time, in the shape of the response's ``because`` entries: the hot route
    writes it to JSON as it is (an answer builds 30 of them).
    """

    item_id: str
    name: str
    contribution: float
    #: Absent for a heard item. A playlist continuation's reasons: ``seed`` (item_id a seed
    #: track) or ``title`` (item_id empty, name "playlists named like '...'"). ``mood``: the
    #: requested mood chose the item (item_id empty, name the mood, contribution its share).
    kind: NotRequired[str]


MOOD_CHOSE = 0.5  # the mood's share of a blended score from which it is named as the reason


def mood_reasons(
    mood: str, mood_scores: FloatArray, scores: FloatArray, weight: float
) -> list[Reason | None]:
    """Per item, a ``mood`` reason where the mood chose it, else None.

    ``scores`` are the items' blended scores (``(1 - weight) * taste + weight * mood``, see
    :func:`setlist.serve.answer.moods.blend`) and ``mood_scores`` their mood scores; the mood
    chose an item when its part, ``weight * mood``, is at least :data:`MOOD_CHOSE` of the score.
    A mood's best artists for a listener without taste (``weight`` 1) are all chosen by it.
    """
    out: list[Reason | None] = []
    for m, s in zip(mood_scores.tolist(), scores.tolist(), strict=True):
        share = min(1.0, weight * m / s) if s > 0 and math.isfinite(s) else 0.0
        out.append(
            {"item_id": "", "name": mood, "contribution": round(share, 6), "kind": "mood"}
            if share >= MOOD_CHOSE
            else None
        )
    return out


def explain(
    model: Recommender,
    confidences: sp.csr_matrix,
    rows: IntArray,
    item_ids: Sequence[str],
    item_names: Sequence[str],
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
    # Heard rows are -1 and weights 0 where the model found fewer positive contributions.
    return [
        [
            {"item_id": item_ids[h], "name": item_names[h], "contribution": w}
            for h, w in zip(row_heard, row_weights, strict=True)
            if h >= 0 and 0.0 < w < math.inf
        ]
        for row_heard, row_weights in zip(heard.tolist(), weights.tolist(), strict=True)
    ]
