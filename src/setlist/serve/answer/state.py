"""The model the service answers with, and the lookups over it.

A :class:`ModelState` is one loaded bundle (one model version) with everything computed from it
once (popular list, vector retrieval, ranking rules, moods); it is read-only afterwards, so the
threadpool may share it freely, and a hot-swap replaces the whole object. It speaks external ids
and names; rows and CSR slices stay inside. The personalised work lives in
:mod:`setlist.serve.answer.answerer`; this module holds the shapes and the degradation chain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from setlist.bundle import ModelBundle
from setlist.errors import NotFoundError, UnavailableError, ValidationError
from setlist.registry import ModelVersion
from setlist.serve.answer.ask import Ask
from setlist.serve.answer.explain import Reason
from setlist.serve.answer.moods import MoodInfo, MoodTable
from setlist.serve.answer.online import OnlineHistory
from setlist.serve.answer.playlists import Playlist
from setlist.serve.answer.ranking import Ranker, RankingConfig
from setlist.serve.answer.retrieval import Retriever

if TYPE_CHECKING:
    from setlist.serve.answer.answerer import Answerer
    from setlist.serve.answer.buddies import BuddyFinder

log = logging.getLogger(__name__)

PERSONALIZED = "personalized"
# A history folded in: listens since training, or a listener the training filter dropped.
PERSONALIZED_ONLINE = "personalized_online"
ONBOARDING = "onboarding"  # seed artists folded in
MOOD = "mood"  # a mood's best artists, for a listener without history
POPULAR_FALLBACK = "popular_fallback"
SOURCES = ("personalized", "popular")  # the degradation chain's known sources


@dataclass(frozen=True)
class ModelInfo:
    """What /v1/model reports about the loaded model."""

    version: str
    model_type: str
    params: dict[str, Any]
    metrics: dict[str, float]
    data_fingerprint: str | None
    trained_at: datetime | None
    index: dict[str, Any] | None = None

    @classmethod
    def from_version(cls, mv: ModelVersion, bundle: ModelBundle) -> ModelInfo:
        trained = bundle.meta.trained_at or mv.created_at
        return cls(
            version=mv.version,
            model_type=mv.model_type if mv.model_type != "unknown" else bundle.model.kind,
            params=mv.params or bundle.model.get_params(),
            metrics=dict(mv.metrics),
            data_fingerprint=mv.data_fingerprint or bundle.meta.data_fingerprint,
            trained_at=trained,
            index=None if bundle.index is None else bundle.index.describe(),
        )

    @classmethod
    def from_bundle(cls, bundle: ModelBundle) -> ModelInfo:
        """Info for a bundle served straight from a folder (no registry version)."""
        meta = bundle.meta
        return cls(
            version=meta.version or "local",
            model_type=meta.model_type or bundle.model.kind,
            params=bundle.model.get_params(),
            metrics=dict(meta.metrics),
            data_fingerprint=meta.data_fingerprint,
            trained_at=meta.trained_at,
            index=None if bundle.index is None else bundle.index.describe(),
        )


class ScoredItem(NamedTuple):
    """One recommended item (a tuple: an answer builds k of them on every request)."""

    item_id: str
    name: str
    score: float
    because: tuple[Reason, ...] = ()
    new_item: bool = False
    row: int = -1  # the item's row in the answering bundle's catalogue (-1: not known)


@dataclass(frozen=True)
class Recommendations:
    user_id: str | None
    model_version: str
    strategy: str
    items: list[ScoredItem]
    fallback_reason: str | None = None
    mood: str | None = None
    unknown_seeds: tuple[str, ...] = ()
    # Each item's probability of being shown under the serving policy; None: the deterministic
    # top k (every propensity 1), so the common answer needs no second object.
    propensities: tuple[float, ...] | None = None

    def shown_propensities(self) -> list[float]:
        """One propensity per item (1 for each when the answer is the deterministic top k)."""
        return [1.0] * len(self.items) if self.propensities is None else list(self.propensities)


@dataclass(frozen=True)
class SimilarItems:
    item_id: str
    model_version: str
    items: list[ScoredItem]


@dataclass(frozen=True)
class Query:
    """One recommendation request, validated: ``exclude`` ids, an offered ``mood`` or None."""

    k: int
    exclude: tuple[str, ...] = ()
    mood: str | None = None


@dataclass
class ModelState:
    """A loaded bundle and its info, or the reason there is none."""

    bundle: ModelBundle | None = None
    info: ModelInfo | None = None
    problem: str = "no model loaded"
    online: OnlineHistory | None = None
    ranking: RankingConfig = field(default_factory=RankingConfig)
    mood_weight: float = 0.5
    chain: tuple[str, ...] = SOURCES
    _popular: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from setlist.serve.answer.answerer import Answerer

        bundle = self.bundle
        pop = bundle.popularity if bundle is not None else np.zeros(0, np.float32)
        # Stable sort of the negated counts: most heard first, ties by lower row.
        self._popular = np.argsort(-pop, kind="stable").astype(np.int64)
        self.answerer: Answerer | None = None
        self.buddies: BuddyFinder | None = None
        if bundle is not None:
            from setlist.serve.answer.buddies import BuddyFinder

            n = len(bundle.items)
            ranker = Ranker(self.ranking, bundle.items.ids, pop, bundle.item_tags, bundle.tag_names)
            moods = MoodTable(bundle.item_tags, bundle.tag_names, n)
            retriever = Retriever(bundle.model, bundle.index)
            self.answerer = Answerer(bundle, retriever, ranker, moods, self.mood_weight)
            self.buddies = BuddyFinder(bundle, self.answerer.resolve_seeds)

    @property
    def ready(self) -> bool:
        return self.bundle is not None and self.info is not None

    def require(self) -> tuple[ModelBundle, ModelInfo]:
        if self.bundle is None or self.info is None:
            raise UnavailableError(f"no model is loaded: {self.problem}")
        return self.bundle, self.info

    def _answerer(self) -> Answerer:
        self.require()
        if self.answerer is None:  # pragma: no cover - built with the bundle
            raise UnavailableError("the model state was built without its answerer")
        return self.answerer

    def buddy_finder(self) -> BuddyFinder:
        """The taste buddies of this bundle's listeners (:mod:`setlist.serve.answer.buddies`)."""
        self.require()
        if self.buddies is None:  # pragma: no cover - built with the bundle
            raise UnavailableError("the model state was built without its buddy finder")
        return self.buddies

    def moods(self) -> list[MoodInfo]:
        """The moods this model's catalogue supports."""
        return list(self._answerer().moods.offered.values())

    def check_mood(self, mood: str | None) -> None:
        """A 422 naming ``mood`` for a mood this model does not offer."""
        if mood is not None:
            self._answerer().moods.get(mood)

    def answer(self, ask: Ask) -> Recommendations:
        """The one way to a listener's top k; every route and recommend-all's rules go here.

        Down the degradation chain (personal: known user, online history or seeds; then mood,
        then popular; or, for ``ask.continuation``, the playlist's seed tracks and name through
        the bundle's Continuer, then popular), every ranking rule applied (heard items, the
        caller's exclusions, blocked items and tags, the per-tag cap, the new-item slot, the
        mood blend), reasons attached, and, when ``ask.policy`` explores, the slate drawn from
        its pool with propensities.
        """
        _, info = self.require()
        query = Query(ask.pool(), ask.exclude, ask.mood)
        self.check_mood(ask.mood)
        answerer = self._answerer()
        if ask.continuation:
            tracks, name = ask.playlist_tracks, ask.playlist_name
            try:
                recs = answerer.continue_playlist(tracks, name, query, info.version)
            except (ValidationError, UnavailableError):
                raise
            except Exception:  # a model failure degrades the answer to popular, never a 500
                log.exception("model %s failed to continue a playlist", info.version)
                recs = answerer.continue_playlist(tracks, name, query, info.version, model=False)
            return _shown(recs, ask)
        personal: Callable[[], Recommendations | str]
        user_id = ask.user_id
        if user_id is not None:
            extra = self.online.extra(user_id) if self.online is not None else {}

            def personal() -> Recommendations | str:
                return answerer.for_user(user_id, extra, query, info.version)

        elif ask.seeds:
            rows, unknown = answerer.resolve_seeds(ask.seeds)
            if not rows:
                raise NotFoundError(
                    f"none of the seeds is a known artist id or name: {list(ask.seeds)[:5]}",
                    field="seeds",
                )

            def personal() -> Recommendations | str:
                return answerer.for_seeds(rows, unknown, query, info.version)

        else:

            def personal() -> Recommendations | str:
                return answerer.nobody(query, info.version)

        return _shown(self._chain(user_id, query, personal), ask)

    def playlist(self, pid: str) -> Playlist:
        """A training playlist of a playlist catalogue; 404 naming the pid when unknown."""
        return self._answerer().playlists.playlist(pid)

    def artist(self, row: int) -> str | None:
        """A track's artist name (the ``artist`` item attribute), None where there is none."""
        return self._answerer().playlists.artist(row)

    def recommend(
        self, user_id: str, k: int, exclude: Sequence[str] = (), mood: str | None = None
    ) -> Recommendations:
        """Top-k for a user, deterministic (see :meth:`answer`)."""
        return self.answer(Ask(user_id=user_id, k=k, exclude=tuple(exclude), mood=mood))

    def onboard(
        self, seeds: Sequence[str], k: int, exclude: Sequence[str] = (), mood: str | None = None
    ) -> Recommendations:
        """Top-k for a new listener from a few seed artists (ids or names), by fold-in."""
        return self.answer(Ask(seeds=tuple(seeds), k=k, exclude=tuple(exclude), mood=mood))

    def _chain(
        self,
        user_id: str | None,
        query: Query,
        personal: Callable[[], Recommendations | str],
    ) -> Recommendations:
        """Try each source of the configured chain in order; 503 when none can answer."""
        _, info = self.require()
        reasons: list[str] = []
        for source in self.chain:
            if source == "personalized":
                try:
                    found = personal()
                except (ValidationError, UnavailableError):
                    raise
                except Exception:  # a model failure degrades the answer, never a 500
                    log.exception("model %s failed for %r", info.version, user_id)
                    found = "model_error"
                if isinstance(found, Recommendations):
                    return found
                reasons.append(found)
            elif source == "popular":
                reason = reasons[-1] if reasons else "popular_first"
                return self._answerer().popular(user_id, query, info.version, reason)
        why = ", ".join(reasons) or "no source configured"
        raise UnavailableError(f"no recommendation source could answer ({why})")

    def similar(self, item_id: str, k: int) -> SimilarItems:
        """The k items most similar to a known item (never the item itself)."""
        bundle, info = self.require()
        row = bundle.items.get(item_id)
        if row is None:
            raise NotFoundError(f"unknown item {item_id!r}", field="item_id")
        ids, scores = bundle.model.similar_items(np.array([row], dtype=np.int64), k=k)
        keep = ids[0] != row
        items = self._answerer().named(ids[0][keep], scores[0][keep])
        return SimilarItems(item_id, info.version, items)


def _shown(recs: Recommendations, ask: Ask) -> Recommendations:
    """The slate the policy shows out of the ranked pool (the pool itself when it is k)."""
    if ask.policy is None or not ask.policy.active:
        if len(recs.items) <= ask.k:
            return recs
        return replace(recs, items=recs.items[: ask.k])
    slate = ask.policy.choose(recs.items, [i.score for i in recs.items], ask.k)
    return replace(recs, items=slate.items, propensities=tuple(slate.propensities))
