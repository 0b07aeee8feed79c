"""Continuing a playlist nobody trained on: its seed tracks folded in, its name, or both.

One :class:`Continuer` is the scoring both the challenge evaluation
(:mod:`setlist.pipeline_playlists`) and the service (``POST /v1/playlists/continue``) use, so
the figures the gate sees are the figures a caller gets. Seeds are folded in as a new playlist
row (each track once, weight 1: a playlist holds a track or not) through the model's
:meth:`~setlist.models.base.Recommender.score_histories`; a name is scored by the
:class:`~setlist.models.title.TitleModel`. With both, each is scaled to a maximum of 1 and they
are blended with ``title_weight``. Seeds are never excluded here: the caller removes them.

Artist back-off (``artist_weight``, given the catalogue's artist per track): every track by an
artist of the seeds scores the share of seeds by that artist, times ``1 + popularity / max``
(the artist's popular tracks first), scaled to a maximum of 1 and added with ``artist_weight``.
The challenge's R-precision credits a wrong track by a right artist with 0.25, and a playlist
often holds several tracks of one artist: on the MPD subset this lifts R-precision of the seed
categories by about 10% (README, "Playlists"). The back-off also ranks tracks that the model
cannot score at all (tracks seen in no training playlist co-occur with nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
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
    #: Weight of the artist back-off added to the seed scores (0: off; needs item artists).
    artist_weight: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.title_weight <= 1.0:
            raise ModelError(f"title_weight must be within [0, 1], got {self.title_weight}")
        if not 0.0 <= self.artist_weight <= 10.0:
            raise ModelError(f"artist_weight must be within [0, 10], got {self.artist_weight}")

    def as_params(self) -> dict[str, float]:
        """The settings as ``continuation.<name>`` parameters (bundle metadata, MLflow)."""
        return {
            "continuation.title_weight": self.title_weight,
            "continuation.artist_weight": self.artist_weight,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> ContinuationConfig:
        """Read :meth:`as_params` back (missing keys keep their defaults)."""
        values: dict[str, float] = {}
        for name in ("title_weight", "artist_weight"):
            raw = params.get(f"continuation.{name}")
            if raw is None:
                continue
            if not isinstance(raw, int | float) or isinstance(raw, bool):
                raise ModelError(f"continuation.{name} must be a number, got {raw!r}")
            values[name] = float(raw)
        return cls(**values)


class Continuer:
    """Scores every track for a new playlist from its seed rows and its name.

    ``item_artists`` (one artist id per item, any strings; "" for unknown) and ``popularity``
    (one count per item) turn the artist back-off on; without them it is off.
    """

    def __init__(
        self,
        model: Recommender,
        title: TitleModel | None,
        config: ContinuationConfig | None = None,
        *,
        item_artists: npt.ArrayLike | None = None,
        popularity: npt.ArrayLike | None = None,
    ) -> None:
        n_items = model.n_items_
        if title is not None and title.n_items != n_items:
            raise ModelError(f"title model covers {title.n_items} items, the model {n_items}")
        self.model = model
        self.title = title
        self.config = config or ContinuationConfig()
        self.artist_items: sp.csr_matrix | None = None  # items x artists, one 1 per known artist
        self.artist_prior = np.ones(n_items, dtype=np.float32)
        if item_artists is not None:
            names = np.asarray(item_artists).astype(np.str_)
            if names.shape != (n_items,):
                raise ModelError(f"item_artists has {names.size} entries for {n_items} items")
            ids, codes = np.unique(names, return_inverse=True)
            known = names != ""
            self.artist_items = sp.csr_matrix(
                (np.ones(int(known.sum()), np.float32), (np.flatnonzero(known), codes[known])),
                shape=(n_items, len(ids)),
            )
        if popularity is not None:
            pop = np.asarray(popularity, dtype=np.float32).ravel()
            if pop.shape != (n_items,):
                raise ModelError(f"popularity has {pop.size} entries for {n_items} items")
            top = float(pop.max()) if pop.size else 0.0
            self.artist_prior = (1.0 + (pop / top if top > 0 else pop)).astype(np.float32)

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
            row = self.seed_row(seed_rows)
            from_seeds = _scaled(self.model.score_histories(row)[0])
            backoff = self.artist_scores(row)
            if backoff is not None:
                from_seeds = from_seeds + self.config.artist_weight * backoff
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

    def artist_scores(self, row: sp.csr_matrix) -> FloatArray | None:
        """The artist back-off for one seed row (max 1); None when it is off or finds nothing."""
        if self.artist_items is None or self.config.artist_weight == 0.0:
            return None
        per_artist = np.asarray((row @ self.artist_items).todense(), dtype=np.float32).ravel()
        if not per_artist.any():
            return None
        votes = np.asarray(self.artist_items @ per_artist, dtype=np.float32).ravel()
        return _scaled(votes * self.artist_prior)


def _scaled(scores: FloatArray) -> FloatArray:
    """Scores over the finite range scaled to a maximum of 1 (non-finite ones become 0)."""
    out = np.where(np.isfinite(scores), scores, 0.0).astype(np.float32)
    top = float(np.abs(out).max()) if out.size else 0.0
    return out / top if top > 0 else out
