"""The answer for a block of known users at once, from candidates searched for the whole block.

``recommend-all`` (:mod:`setlist.offline.topk`) searches its index for thousands of users per
call; answering each of them one by one through :meth:`ModelState.answer` would cost more than
the search. :class:`BlockAnswerer` applies the same :class:`Ranker`'s rules to the whole block
of candidate lists in a few array operations (blocked items and tags, the per-tag cap; heard
items are already dropped by the search), and sends every user the block pass cannot settle
(too few candidates left after the rules, or the new-item slot to fill) through
:meth:`ModelState.answer` itself, so a list in the file is always the list the service would
rank. No exploration: a batch of top picks is the deterministic top k (propensity 1), as the
service's answer without a policy.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from setlist.arrays import FloatArray, IntArray
from setlist.bundle import ModelBundle
from setlist.serve.answer.ask import Ask
from setlist.serve.answer.ranking import Ranker, RankingConfig
from setlist.serve.answer.state import ModelInfo, ModelState


class BlockAnswerer:
    """The ranking rules over blocks of (user, candidate) arrays, for one bundle."""

    def __init__(self, bundle: ModelBundle, ranking: RankingConfig) -> None:
        self.bundle = bundle
        self.ranking = ranking
        self.ranker = Ranker(
            ranking, bundle.items.ids, bundle.popularity, bundle.item_tags, bundle.tag_names
        )
        self.filters = bool(self.ranker.blocked.any())
        self._slot = ranking.new_item_slot > 0 and len(self.ranker.new_rows) > 0
        self._state: ModelState | None = None  # built on the first user the block cannot settle
        self.one_by_one = 0  # users answered through ModelState.answer

    def depth(self, k: int) -> int:
        """Candidates to search per user: k, and room for what the rules may drop.

        As the per-request ranking: three times k under a per-tag cap. Blocked items take
        twice their share of the catalogue, and a few more; a user left short anyway is
        answered one by one, so this only trades search depth against those users.
        """
        depth = k * (3 if self.ranking.max_per_group > 0 else 1)
        if self.filters:
            share = float(self.ranker.blocked.mean())
            depth += math.ceil(2 * share * depth) + 8
        return min(len(self.bundle.items), depth)

    def answer(
        self, users: IntArray, ids: IntArray, scores: FloatArray, k: int
    ) -> tuple[IntArray, FloatArray]:
        """Top-k rows and scores (padded with -1 / -inf) for ``users`` from their candidates.

        ``ids``/``scores``: each user's unheard candidates, best first, -1 / -inf padded.
        """
        if not self.filters and self.ranking.max_per_group <= 0 and not self._slot:
            return _padded(ids, scores, k)  # no rule to apply: the search's lists as they are
        keep = ids >= 0
        safe = np.maximum(ids, 0)
        if self.filters:
            keep &= ~self.ranker.blocked[safe]
        cap = self.ranking.max_per_group
        if cap > 0:
            keep &= _within_cap(self.ranker.groups[safe], keep, cap)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
        picked = np.take_along_axis(keep, order, axis=1)
        out_ids = np.where(picked, np.take_along_axis(ids, order, axis=1), -1)
        out_scores = np.where(picked, np.take_along_axis(scores, order, axis=1), -np.inf)
        out_ids, out_scores = _padded(out_ids, out_scores, k)
        unsettled = self._unsettled(ids >= 0, keep, picked, out_ids, k)
        for i in np.flatnonzero(unsettled).tolist():
            out_ids[i], out_scores[i] = self._one(int(users[i]), k)
        return out_ids.astype(np.int64), out_scores.astype(np.float32)

    def _unsettled(
        self,
        found: npt.NDArray[np.bool_],
        keep: npt.NDArray[np.bool_],
        picked: npt.NDArray[np.bool_],
        out_ids: IntArray,
        k: int,
    ) -> npt.NDArray[np.bool_]:
        """Users whose list the block pass cannot finish: short after the rules, or a slot.

        The new-item slot needs the user's taste over the newcomers (not among the candidates),
        so with the slot on, every list without a new item goes one by one (slower).
        """
        dropped = (found & ~keep).any(axis=1)
        unsettled = dropped & (picked.sum(axis=1) < k)
        if self._slot:
            has_new = (self.ranker.is_new[np.maximum(out_ids, 0)] & (out_ids >= 0)).any(axis=1)
            unsettled |= ~has_new
        return np.asarray(unsettled)

    def _one(self, row: int, k: int) -> tuple[IntArray, FloatArray]:
        """One user through the service's answer (the reference for every rule)."""
        if self._state is None:
            info = ModelInfo.from_bundle(self.bundle)
            self._state = ModelState(self.bundle, info, ranking=self.ranking)
        self.one_by_one += 1
        recs = self._state.answer(Ask(user_id=str(self.bundle.users.ids[row]), k=k))
        out_ids = np.full(k, -1, dtype=np.int64)
        out_scores = np.full(k, -np.inf, dtype=np.float32)
        n = len(recs.items)
        out_ids[:n] = [item.row for item in recs.items]
        out_scores[:n] = [item.score for item in recs.items]
        return out_ids, out_scores


def _padded(ids: IntArray, scores: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """Exactly k columns: cut, or padded with -1 / -inf (fewer candidates than k)."""
    if ids.shape[1] >= k:
        return ids[:, :k].astype(np.int64, copy=False), scores[:, :k].astype(np.float32, copy=False)
    pad = ((0, 0), (0, k - ids.shape[1]))
    return (
        np.pad(ids, pad, constant_values=-1).astype(np.int64),
        np.pad(scores, pad, constant_values=-np.inf).astype(np.float32),
    )


def _within_cap(groups: IntArray, keep: npt.NDArray[np.bool_], cap: int) -> npt.NDArray[np.bool_]:
    """Which candidates are within their row's first ``cap`` kept items of their tag cluster."""
    ok = np.ones(groups.shape, dtype=bool)
    counted = keep & (groups >= 0)
    user, col = np.nonzero(counted)  # row-major: each user's candidates in rank order
    if len(user) == 0:
        return ok
    key = user * np.int64(int(groups.max()) + 1) + groups[user, col]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    run_start = np.repeat(first, np.diff(np.r_[first, len(key)]))
    nth = np.empty(len(key), dtype=np.int64)
    nth[order] = np.arange(len(key)) - run_start
    ok[user[nth >= cap], col[nth >= cap]] = False
    return ok
