"""The ranking stage after retrieval: exclusions, business filters, diversity, a new-item slot.

Rules, in order (each has its own test):

1. **exclusions**: items the listener has heard (training history and online listens) and the
   ids the caller passed in ``exclude=`` never appear;
2. **business filters**: items blocked by id, or carrying a blocked tag
   (``SETLIST_RANK_BLOCKED_ITEMS`` / ``_TAGS``), never appear;
3. **diversity**: at most ``max_per_group`` items per tag cluster (an item's dominant descriptive
   tag; in a catalogue of tracks this would be the artist); 0 turns the cap off;
4. **new-item slot**: with ``new_item_slot = p`` the best-scored unheard *new* item (heard by at
   most ``new_item_max_listeners`` listeners in training) takes position p when none is in the
   list already, so the catalogue's newcomers get exposure; 0 turns it off.

Retrieval is asked for more than k candidates (``k`` plus everything that may be excluded), and
again with four times as many when filtering left too few, up to the whole catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.serve.answer.retrieval import Taste

# Last.fm tags that describe the listener, not the music: never a tag cluster.
META_TAGS = frozenset(
    {"seen live", "favorites", "favourites", "favorite", "favourite", "love", "awesome",
     "beautiful", "amazing", "cool", "good", "best", "my favorite", "favorite artists",
     "love at first listen", "love it", "under 2000 listeners", "albums i own", "spotify"}
)  # fmt: skip
_NEW_ITEM_POOL = 5000


@dataclass(frozen=True)
class RankingConfig:
    """The ranking rules' settings (``SETLIST_RANK_*``)."""

    max_per_group: int = 0
    new_item_slot: int = 0
    new_item_max_listeners: int = 2
    blocked_items: frozenset[str] = field(default_factory=frozenset)
    blocked_tags: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Ranked:
    rows: IntArray
    scores: FloatArray
    new_item_row: int = -1  # the row placed by the new-item slot, if any


class Ranker:
    """The rules of one catalogue, with per-item arrays computed once at load."""

    def __init__(
        self,
        config: RankingConfig,
        item_ids: Iterable[str],
        popularity: FloatArray,
        item_tags: sp.csr_matrix | None,
        tag_names: npt.NDArray[np.str_],
    ) -> None:
        self.config = config
        ids = np.asarray(list(item_ids), dtype=np.str_)
        self.n_items = len(ids)
        self.groups = tag_clusters(item_tags, tag_names, self.n_items)
        self.blocked = np.isin(ids, np.asarray(sorted(config.blocked_items), dtype=np.str_))
        if config.blocked_tags and item_tags is not None:
            cols = np.flatnonzero(np.isin(tag_names, sorted(config.blocked_tags)))
            tagged = np.asarray(item_tags[:, cols].sum(axis=1)).ravel() > 0
            self.blocked |= tagged
        new = np.flatnonzero(popularity <= config.new_item_max_listeners)
        # The newcomers closest to breaking through first; bounded so a slot stays cheap.
        order = np.argsort(-popularity[new], kind="stable")[:_NEW_ITEM_POOL]
        self.new_rows = new[order].astype(np.int64)
        self.is_new = np.zeros(self.n_items, dtype=bool)
        self.is_new[self.new_rows] = True

    def rank(self, taste: Taste, k: int, excluded: IntArray) -> Ranked:
        """The best k rows for ``taste`` after every rule; ``excluded`` rows never appear."""
        excluded = np.sort(np.asarray(excluded, dtype=np.int64))
        cap = self.config.max_per_group
        need = k * (3 if cap > 0 else 1)
        fetch = min(self.n_items, need + len(excluded))
        while True:
            rows, scores = taste.top(fetch)
            keep = ~self.blocked[rows] & ~_isin(rows, excluded)
            rows, scores = rows[keep], scores[keep]
            if cap > 0:
                rows, scores = self._cap(rows, scores, cap)
            if len(rows) >= k or fetch >= self.n_items:
                break
            fetch = min(self.n_items, fetch * 4)
        rows, scores = rows[:k], scores[:k]
        return self._new_item_slot(taste, rows, scores, k, excluded)

    def rank_scored(self, rows: IntArray, scores: FloatArray, k: int, excluded: IntArray) -> Ranked:
        """The rules over an already scored candidate list (best first), e.g. a mood blend."""
        excluded = np.sort(np.asarray(excluded, dtype=np.int64))
        keep = ~self.blocked[rows] & ~_isin(rows, excluded)
        rows, scores = rows[keep], scores[keep]
        if self.config.max_per_group > 0:
            rows, scores = self._cap(rows, scores, self.config.max_per_group)
        return Ranked(rows[:k], scores[:k])

    def _cap(self, rows: IntArray, scores: FloatArray, cap: int) -> tuple[IntArray, FloatArray]:
        counts: dict[int, int] = {}
        keep = np.zeros(len(rows), dtype=bool)
        for i, group in enumerate(self.groups[rows].tolist()):
            seen = counts.get(group, 0)
            if group < 0 or seen < cap:
                keep[i] = True
                if group >= 0:
                    counts[group] = seen + 1
        return rows[keep], scores[keep]

    def _new_item_slot(
        self, taste: Taste, rows: IntArray, scores: FloatArray, k: int, excluded: IntArray
    ) -> Ranked:
        slot = self.config.new_item_slot
        if slot <= 0 or len(self.new_rows) == 0 or self.is_new[rows].any():
            return Ranked(rows, scores)
        pool = self.new_rows[~self.blocked[self.new_rows] & ~_isin(self.new_rows, excluded)]
        if len(pool) == 0:
            return Ranked(rows, scores)
        pool_scores = taste.scores(pool)
        best = int(np.argmax(pool_scores))
        at = min(slot, k, len(rows) + 1) - 1
        keep = min(len(rows), k - 1)
        new_rows = np.insert(rows[:keep], at, pool[best])
        new_scores = np.insert(scores[:keep], at, pool_scores[best])
        return Ranked(new_rows, new_scores, int(pool[best]))


def _isin(rows: IntArray, excluded: IntArray) -> npt.NDArray[np.bool_]:
    """Which of ``rows`` are in ``excluded`` (sorted): a binary search per row.

    ``np.isin`` sorts both arrays on every call; a request's exclusions are sorted once and
    its few dozen candidates looked up, which costs microseconds.
    """
    if len(excluded) == 0:
        return np.zeros(len(rows), dtype=bool)
    at = np.searchsorted(excluded, rows)
    at[at == len(excluded)] = 0
    return np.asarray(excluded[at] == rows)


def tag_clusters(
    item_tags: sp.csr_matrix | None, tag_names: npt.NDArray[np.str_], n_items: int
) -> IntArray:
    """Each item's dominant descriptive tag (its cluster), -1 where it has none."""
    groups = np.full(n_items, -1, dtype=np.int64)
    if item_tags is None or item_tags.nnz == 0:
        return groups
    descriptive = ~np.isin(tag_names, sorted(META_TAGS))
    tags = sp.csr_matrix(item_tags @ sp.diags(descriptive.astype(np.float32)))
    tags.eliminate_zeros()
    has = np.diff(tags.indptr) > 0
    groups[has] = np.asarray(tags[has].argmax(axis=1)).ravel()
    return groups
