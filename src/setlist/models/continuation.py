"""Continuing a playlist nobody trained on: its seed tracks folded in, its name, or both.

One :class:`Continuer` is the scoring both the challenge evaluation
(:mod:`setlist.pipeline_playlists`) and the service (``POST /v1/playlists/continue``) use, so
the figures the gate sees are the figures a caller gets. Seeds are folded in as a new playlist
row (each track once, weight 1: a playlist holds a track or not) through the model's
:meth:`~setlist.models.base.Recommender.score_histories`; a name is scored by the
:class:`~setlist.models.title.TitleModel`. With both, each is scaled to a maximum of 1 and they
are blended with ``title_weight``. Seeds are never excluded here: the caller removes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.errors import ModelError
from setlist.models.base import Recommender
from setlist.models.title import TitleModel

SEEDS = "seeds"  # seed tracks folded in
SEEDS_TITLE = "seeds_title"  # seed tracks and the name blended
TITLE = "title"  # the name alone


@dataclass(frozen=True)
class ContinuationConfig:
    """How seeds and name are combined (tuned on the challenge; see the README)."""

    title_weight: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.title_weight <= 1.0:
            raise ModelError(f"title_weight must be within [0, 1], got {self.title_weight}")


class Continuer:
    """Scores every track for a new playlist from its seed rows and its name."""

    def __init__(
        self,
        model: Recommender,
        title: TitleModel | None,
        config: ContinuationConfig | None = None,
    ) -> None:
        if title is not None and title.n_items != model.n_items_:
            raise ModelError(
                f"title model covers {title.n_items} items, the model {model.n_items_}"
            )
        self.model = model
        self.title = title
        self.config = config or ContinuationConfig()

    def seed_row(self, seed_rows: IntArray) -> sp.csr_matrix:
        """The seeds as one new playlist row (1 x items, weight 1 per distinct track)."""
        cols = np.unique(np.asarray(seed_rows, dtype=np.int64))
        data = np.ones(len(cols), dtype=np.float32)
        indptr = np.array([0, len(cols)], dtype=np.int64)
        return sp.csr_matrix((data, cols, indptr), shape=(1, self.model.n_items_))

    def scores(self, seed_rows: IntArray, name: str | None) -> tuple[FloatArray, str] | None:
        """(one score per item, strategy), or None when neither seeds nor name say anything."""
        from_seeds = None
        if len(seed_rows):
            from_seeds = _scaled(self.model.score_histories(self.seed_row(seed_rows))[0])
        from_title = None
        if self.title is not None and name:
            from_title = self.title.scores(name)
            from_title = None if from_title is None else _scaled(from_title)
        if from_seeds is not None and from_title is not None:
            w = self.config.title_weight
            return (1.0 - w) * from_seeds + w * from_title, SEEDS_TITLE
        if from_seeds is not None:
            return from_seeds, SEEDS
        if from_title is not None:
            return from_title, TITLE
        return None


def _scaled(scores: FloatArray) -> FloatArray:
    """Scores over the finite range scaled to a maximum of 1 (non-finite ones become 0)."""
    out = np.where(np.isfinite(scores), scores, 0.0).astype(np.float32)
    top = float(np.abs(out).max()) if out.size else 0.0
    return out / top if top > 0 else out
