"""Moods from Last.fm tags: each mood is a set of tag names; artists' mood scores come from counts.

An artist's score for a mood is ``share * log1p(n)``, where ``n`` is how many times listeners gave
the artist one of the mood's tags and ``share`` is ``n`` over all tag applications the artist got
(plus :data:`SHARE_PRIOR`, so one stray tag on an obscure artist does not make a mood): strongly
*and* specifically tagged artists come first. Scores are scaled to 0..1 per mood. A mood
is offered only where at least ``min_items`` artists of the served catalogue carry it, so the list
follows what the data supports. The tag counts travel in the model bundle
(:attr:`ModelBundle.item_tags`); the definitions below are applied when the service loads it.

With a listener's taste, ``?mood=`` blends: ``(1 - w) * taste + w * mood`` over the mood's
artists (taste min-max scaled over the candidates), ``w`` the ``mood_weight`` setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.errors import NotFoundError, ValidationError


@dataclass(frozen=True)
class Mood:
    name: str
    description: str
    tags: tuple[str, ...]


MOODS: tuple[Mood, ...] = (
    Mood("chill", "Laid-back and relaxing", ("chillout", "chill", "chill out", "relax",
         "relaxing", "mellow", "downtempo", "lounge", "calm", "calming", "chill zone",
         "just chillin", "relaxing music", "keep ya calm")),
    Mood("party", "Dance floor and good times", ("party", "dance", "club", "dance party",
         "party time", "makes me wanna dance", "club classics", "eurodance", "dance music",
         "party music")),
    Mood("focus", "Instrumental, unobtrusive, for work and study", ("instrumental", "ambient",
         "post-rock", "minimal", "idm", "study tunes", "studying", "classical", "minimalism",
         "soundtrack")),
    Mood("workout", "Energy and drive", ("energetic", "upbeat", "aggressive", "heavy",
         "workout songs", "pump up", "motivating", "powerful", "drum and bass")),
    Mood("melancholy", "Wistful, sad, reflective", ("melancholy", "melancholic", "sad",
         "sadness", "depressive", "depressing", "emotional", "beautifulsad", "sad and slow")),
    Mood("happy", "Bright and cheerful", ("happy", "fun", "feel good", "feelgood",
         "just makes you feel good", "makes me happy", "uplifting", "songs to feel happy to",
         "happygoodfunandhandclaps")),
    Mood("romantic", "Love songs and slow dances", ("romantic", "love songs", "sexy",
         "romantica", "inlove", "late night love", "sexy songs", "most romantic songs ever")),
    Mood("heartbreak", "Break-ups and tears", ("breakup music", "breakup songs", "break up",
         "heartbreak", "heart breaking", "heartbreaker", "excellent reason for crying",
         "music to cry", "makes me cry", "brings tears to my eyes", "sad")),
    Mood("rainy-day", "Grey skies, a window and a cup of tea", ("rain", "rainy day", "autumn",
         "melancholic", "mellow", "coffeeshop", "winter")),
    Mood("road-trip", "Windows down, long roads", ("road trip", "driving music", "driving",
         "driving songs", "smooth night driving", "mountain road trip music", "travel",
         "summer")),
    Mood("sleep", "Soft and slow, to fall asleep", ("sleep", "sleep music", "sleepy time",
         "music to fall asleep to", "sleeping", "songs that make me sleepy", "lullaby",
         "peaceful", "soothing", "dreamy", "sleeptronica")),
    Mood("throwback", "Oldies and decades past", ("oldies", "80s", "90s", "70s", "60s",
         "classic", "nostalgic", "nostalgia", "old school", "retro", "memories",
         "soundtrack of my childhood", "childhood memories")),
    Mood("dark", "Gothic, brooding, atmospheric", ("dark", "darkwave", "dark ambient",
         "gothic", "dark electro", "atmospheric")),
    Mood("dreamy", "Hazy and ethereal", ("dreamy", "dream pop", "shoegaze", "ethereal",
         "psychedelic", "atmospheric")),
    Mood("summer", "Sunshine and beaches", ("summer", "summer song", "summer time",
         "beach music", "sunshine", "sunny")),
)  # fmt: skip
#: The mood vocabulary (the API schema's enum); a model offers the ones its catalogue supports.
MOOD_NAMES: tuple[str, ...] = tuple(m.name for m in MOODS)
MIN_ITEMS = 3
SHARE_PRIOR = 5.0  # tag applications added to every artist's total: one stray tag is not a mood


@dataclass(frozen=True)
class MoodInfo:
    """One offered mood: its definition and what the catalogue has for it."""

    mood: Mood
    n_items: int
    top_rows: IntArray  # the mood's items, best first


class MoodTable:
    """Per-item mood scores of one catalogue (items x moods, 0..1) and each mood's ranking."""

    def __init__(
        self,
        item_tags: sp.csr_matrix | None,
        tag_names: npt.NDArray[np.str_],
        n_items: int,
        moods: tuple[Mood, ...] = MOODS,
        min_items: int = MIN_ITEMS,
    ) -> None:
        self.scores = mood_scores(item_tags, tag_names, n_items, moods)
        self.offered: dict[str, MoodInfo] = {}
        self._columns: dict[str, int] = {}
        for j, mood in enumerate(moods):
            column = self.scores[:, j]
            rows = np.flatnonzero(column > 0)
            if len(rows) < min_items:
                continue
            order = rows[np.argsort(-column[rows], kind="stable")]
            self.offered[mood.name] = MoodInfo(mood, len(rows), order.astype(np.int64))
            self._columns[mood.name] = j

    def get(self, name: str) -> MoodInfo:
        """The offered mood of that name: a 422 naming ``mood`` for a name outside the vocabulary
        (:data:`MOOD_NAMES`, the schema's enum), a 404 for one this catalogue does not offer
        (too few of its artists carry the mood's tags)."""
        info = self.offered.get(name)
        if info is None:
            known = ", ".join(self.offered) or "none for this model"
            error = NotFoundError if name in MOOD_NAMES else ValidationError
            raise error(f"unknown mood {name!r}; moods: {known}", field="mood", value=name[:100])
        return info

    def column(self, name: str) -> FloatArray:
        return self.scores[:, self._columns[name]]


def mood_scores(
    item_tags: sp.csr_matrix | None,
    tag_names: npt.NDArray[np.str_],
    n_items: int,
    moods: tuple[Mood, ...] = MOODS,
) -> FloatArray:
    """Items x moods scores in 0..1 from tag counts (see the module docstring)."""
    out = np.zeros((n_items, len(moods)), dtype=np.float32)
    if item_tags is None or item_tags.nnz == 0:
        return out
    lookup = {str(t): i for i, t in enumerate(np.asarray(tag_names).tolist())}
    member = sp.lil_matrix((len(tag_names), len(moods)), dtype=np.float32)
    for j, mood in enumerate(moods):
        for tag in mood.tags:
            if tag in lookup:
                member[lookup[tag], j] = 1.0
    counts = np.asarray((item_tags @ member.tocsr()).todense(), dtype=np.float64)
    totals = np.asarray(item_tags.sum(axis=1), dtype=np.float64).reshape(-1, 1)
    raw = counts / (totals + SHARE_PRIOR) * np.log1p(counts)
    peak = raw.max(axis=0, keepdims=True)
    out[:] = np.where(peak > 0, raw / np.where(peak > 0, peak, 1.0), 0.0)
    return out


def blend(taste: FloatArray, mood: FloatArray, weight: float) -> FloatArray:
    """``(1 - weight) * taste_scaled + weight * mood``; taste min-max scaled to 0..1."""
    if len(taste) == 0:
        return np.zeros(0, dtype=np.float32)
    low, high = float(taste.min()), float(taste.max())
    scaled = (taste - low) / (high - low) if high > low else np.ones_like(taste)
    return np.asarray((1.0 - weight) * scaled + weight * mood, dtype=np.float32)
