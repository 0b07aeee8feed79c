"""The personalised answer: history -> taste -> candidates -> ranking rules -> reasons -> names.

One :class:`Answerer` per loaded model version (built by
:class:`setlist.serve.answer.state.ModelState`).
Every path returns :class:`Recommendations`, or a short reason string when it cannot answer
(unknown user, no positive history) so the degradation chain can go on to the next source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.bundle import ModelBundle
from setlist.config import WeightConfig
from setlist.matrix import weight
from setlist.serve.answer.explain import Reason, explain, mood_reasons
from setlist.serve.answer.moods import MoodTable, blend
from setlist.serve.answer.playlists import PlaylistAnswers
from setlist.serve.answer.ranking import Ranked, Ranker
from setlist.serve.answer.retrieval import Retriever, Taste

if TYPE_CHECKING:
    from setlist.serve.answer.state import Query, Recommendations, ScoredItem

MOOD_POOL = 2000  # a mood's best artists considered for a blend, besides the taste candidates


class Answerer:
    def __init__(
        self,
        bundle: ModelBundle,
        retriever: Retriever,
        ranker: Ranker,
        moods: MoodTable,
        mood_weight: float,
    ) -> None:
        self.bundle = bundle
        self.retriever = retriever
        self.ranker = ranker
        self.moods = moods
        self.mood_weight = mood_weight
        # The weighting the model was trained with (the default where the bundle has none).
        self.weighting = bundle.meta.weighting or WeightConfig()
        self.ids: npt.NDArray[np.str_] = bundle.items.ids
        self.names: npt.NDArray[np.str_] = bundle.item_names
        # Plain lists for the per-answer lookups: indexing one gives a str, no numpy scalar.
        self.id_list: list[str] = self.ids.tolist()
        self.name_list: list[str] = [str(n) for n in self.names.tolist()]
        self.popular_rows = np.argsort(-bundle.popularity, kind="stable").astype(np.int64)
        seen = bundle.seen
        # A seed counts as a typical listen: the median play count of the training data.
        self.seed_weight = float(np.median(seen.data)) if seen.nnz else 1.0
        # Confidences of the whole training history, once: a request only slices its row.
        self.conf = weight(seen, self.weighting) if seen.nnz else seen
        self._by_name = _name_lookup(self.names, bundle.popularity)
        # What explanations share across requests (ALS's table): paid at load, not per request.
        bundle.model.prepare_explain()
        # Playlist continuation (the Continuer, and the title model when the bundle has playlists).
        self.playlists = PlaylistAnswers(bundle, ranker, self.id_list, self.name_list)

    # ----------------------------------------------------------------- sources

    def for_user(
        self, user_id: str, extra: dict[str, float], query: Query, version: str
    ) -> Recommendations | str:
        """A known user (trained vector), or any user with a history to fold in: online events,
        or a listener the training filter dropped (kept in the bundle with their history)."""
        from setlist.serve.answer.state import PERSONALIZED, PERSONALIZED_ONLINE

        row = self.bundle.users.get(user_id)
        # A trained listener without online events never pays for the history lookup.
        stored = self.bundle.history(user_id) if extra or row is None else None
        if extra or stored is not None:
            history = self._merged_history(stored, extra)
            liked = {c: w for c, w in history.items() if w > 0}
            banned = np.fromiter((c for c, w in history.items() if w <= 0), dtype=np.int64)
            if not liked:
                return self._mood_or(user_id, query, version, "no_positive_history")
            raw = _row_csr(liked, len(self.ids))
            conf = weight(raw, self.weighting)
            taste = self.retriever.for_history(conf)
            heard = np.concatenate([raw.indices.astype(np.int64), banned])
            return self._personal(user_id, taste, conf, heard, query, version, PERSONALIZED_ONLINE)
        if row is None:
            return self._mood_or(user_id, query, version, "unknown_user")
        conf = _row_view(self.conf, row)
        taste = self.retriever.for_user(row, conf)
        heard = conf.indices.astype(np.int64)
        return self._personal(user_id, taste, conf, heard, query, version, PERSONALIZED)

    def for_seeds(
        self, rows: list[int], unknown: list[str], query: Query, version: str
    ) -> Recommendations | str:
        """A new listener from seed artists: fold-in of one typical listen per seed."""
        from setlist.serve.answer.state import ONBOARDING

        raw = _row_csr({r: self.seed_weight for r in rows}, len(self.ids))
        conf = weight(raw, self.weighting)
        taste = self.retriever.for_history(conf)
        heard = raw.indices.astype(np.int64)
        recs = self._personal(None, taste, conf, heard, query, version, ONBOARDING)
        return _with(recs, unknown_seeds=tuple(unknown))

    def continue_playlist(
        self,
        tracks: tuple[str, ...],
        name: str | None,
        query: Query,
        version: str,
        model: bool = True,
    ) -> Recommendations:
        """The tracks that continue a new playlist (see :mod:`setlist.serve.answer.playlists`);
        ``model`` False: the popular tracks (after a model failure), seeds still left out."""
        excluded = self._excluded(query.exclude)
        return self.playlists.answer(tracks, name, query, version, self.named, excluded, model)

    def nobody(self, query: Query, version: str) -> Recommendations | str:
        """A request naming no listener: a mood's best artists, else on down the chain."""
        return self._mood_or(None, query, version, "no_listener")

    def popular(
        self, user_id: str | None, query: Query, version: str, reason: str
    ) -> Recommendations:
        """The most heard items (after the caller's exclusions and the business filters), never
        one a known listener already heard."""
        from setlist.serve.answer.state import POPULAR_FALLBACK, Recommendations

        excluded = self._excluded(query.exclude)
        heard = None if user_id is None else self.bundle.history(user_id)
        if heard is not None:
            excluded = np.concatenate([excluded, heard.indices.astype(np.int64)])
        fetch = min(len(self.ids), 3 * query.k + len(excluded) + 16)
        rows = self.popular_rows[:fetch]
        ranked = self.ranker.rank_scored(rows, self.bundle.popularity[rows], query.k, excluded)
        items = self.named(ranked.rows, ranked.scores)
        return Recommendations(user_id, version, POPULAR_FALLBACK, items, reason, query.mood)

    # ----------------------------------------------------------------- helpers

    def _mood_or(
        self, user_id: str | None, query: Query, version: str, reason: str
    ) -> Recommendations | str:
        """Without taste, a mood request gets the mood's best artists; otherwise fall through."""
        from setlist.serve.answer.state import MOOD, Recommendations

        if query.mood is None:
            return reason
        info = self.moods.get(query.mood)
        rows = info.top_rows[: 3 * query.k + len(query.exclude) + 16]
        column = self.moods.column(query.mood)
        ranked = self.ranker.rank_scored(rows, column[rows], query.k, self._excluded(query.exclude))
        chosen = mood_reasons(query.mood, column[ranked.rows], ranked.scores, 1.0)
        reasons = [[r] if r is not None else [] for r in chosen]
        items = self.named(ranked.rows, ranked.scores, reasons, ranked.new_item_row)
        return Recommendations(user_id, version, MOOD, items, reason, query.mood)

    def _personal(
        self,
        user_id: str | None,
        taste: Taste,
        conf: sp.csr_matrix,
        heard: IntArray,
        query: Query,
        version: str,
        strategy: str,
    ) -> Recommendations:
        from setlist.serve.answer.state import Recommendations

        excluded = np.concatenate([heard, self._excluded(query.exclude)])
        if query.mood is None:
            ranked = self.ranker.rank(taste, query.k, excluded)
        else:
            ranked = self._mood_blend(taste, query, excluded)
        reasons = explain(self.bundle.model, conf, ranked.rows, self.id_list, self.name_list)
        if query.mood is not None:  # the mood first where it chose the item
            column = self.moods.column(query.mood)[ranked.rows]
            chosen = mood_reasons(query.mood, column, ranked.scores, self.mood_weight)
            reasons = [
                [m, *r] if m is not None and row != ranked.new_item_row else r
                for m, r, row in zip(chosen, reasons, ranked.rows.tolist(), strict=True)
            ]
        items = self.named(ranked.rows, ranked.scores, reasons, ranked.new_item_row)
        return Recommendations(user_id, version, strategy, items, None, query.mood)

    def _mood_blend(self, taste: Taste, query: Query, excluded: IntArray) -> Ranked:
        assert query.mood is not None
        info = self.moods.get(query.mood)
        column = self.moods.column(query.mood)
        liked, _ = taste.top(min(len(self.ids), 10 * query.k + len(excluded)))
        pool = np.union1d(info.top_rows[:MOOD_POOL], liked[column[liked] > 0])
        scores = blend(taste.scores(pool), column[pool], self.mood_weight)
        order = np.argsort(-scores, kind="stable")
        return self.ranker.rank_scored(pool[order], scores[order], query.k, excluded)

    def _excluded(self, exclude: Sequence[str]) -> IntArray:
        if not exclude:
            return np.zeros(0, dtype=np.int64)
        rows = self.bundle.items.rows(exclude)
        return rows[rows >= 0]

    def _merged_history(
        self, stored: sp.csr_matrix | None, extra: dict[str, float]
    ) -> dict[int, float]:
        """The listener's stored history (1 x items raw counts, or None) plus online events."""
        history: dict[int, float] = {}
        if stored is not None:
            history = dict(zip(stored.indices.tolist(), stored.data.tolist(), strict=True))
        for item_id, added in extra.items():
            col = self.bundle.items.get(item_id)
            if col is not None:
                history[col] = history.get(col, 0.0) + added
        return history

    def resolve_seeds(self, seeds: Sequence[str]) -> tuple[list[int], list[str]]:
        """Rows of the seeds (an item id first, else a case-insensitive name), and the unknown."""
        rows: list[int] = []
        unknown: list[str] = []
        for seed in seeds:
            row = self.bundle.items.get(seed)
            if row is None:
                row = self._by_name.get(seed.strip().casefold())
            if row is None:
                unknown.append(seed)
            elif row not in rows:
                rows.append(row)
        return rows, unknown

    def named(
        self,
        rows: npt.NDArray[Any],
        scores: npt.NDArray[Any],
        reasons: list[list[Reason]] | None = None,
        new_item_row: int = -1,
    ) -> list[ScoredItem]:
        from setlist.serve.answer.state import ScoredItem

        ids, names = self.id_list, self.name_list
        out = []
        for i, (row, score) in enumerate(zip(rows.tolist(), scores.tolist(), strict=True)):
            if row < 0 or not math.isfinite(score):
                continue  # padding: fewer than k items were left
            because = tuple(reasons[i]) if reasons is not None else ()
            out.append(ScoredItem(ids[row], names[row], score, because, row == new_item_row, row))
        return out


def _row_view(csr: sp.csr_matrix, row: int) -> sp.csr_matrix:
    """Row ``row`` of a CSR as a 1-row CSR over the same arrays (no copy, no format checks).

    The public constructor re-checks index dtypes and bounds (~0.1 ms, a tenth of a request);
    the arrays here come from a checked matrix, so the checks are skipped. A scipy that no
    longer accepts this falls back to the constructor (``tests/serve`` compares both).
    """
    lo, hi = int(csr.indptr[row]), int(csr.indptr[row + 1])
    indptr = np.array([0, hi - lo], dtype=csr.indptr.dtype)
    try:
        view = sp.csr_matrix.__new__(sp.csr_matrix)
        view._shape = (1, int(csr.shape[1]))
        view.data, view.indices, view.indptr = csr.data[lo:hi], csr.indices[lo:hi], indptr
        view.maxprint = 50
        return view
    except AttributeError:  # pragma: no cover - depends on scipy internals
        return sp.csr_matrix(
            (csr.data[lo:hi], csr.indices[lo:hi], indptr), shape=(1, csr.shape[1]), copy=False
        )


def _row_csr(weights: dict[int, float], n_items: int) -> sp.csr_matrix:
    cols = np.fromiter(weights, dtype=np.int64)
    order = np.argsort(cols)
    values = np.fromiter(weights.values(), dtype=np.float32)
    return sp.csr_matrix((values[order], cols[order], np.array([0, len(cols)])), shape=(1, n_items))


def _name_lookup(names: npt.NDArray[np.str_], popularity: FloatArray) -> dict[str, int]:
    """Lower-cased name -> row; where names clash, the most heard artist wins."""
    lookup: dict[str, int] = {}
    for row in np.argsort(-popularity, kind="stable").tolist():
        lookup.setdefault(str(names[row]).strip().casefold(), row)
    return lookup


def _with(recs: Recommendations | str, **changes: Any) -> Recommendations | str:
    from dataclasses import replace

    return recs if isinstance(recs, str) else replace(recs, **changes)
