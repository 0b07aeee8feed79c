"""The model the service answers with, loaded once at start-up, and the lookups over it.

A :class:`ModelState` is read-only after loading, so the threadpool may share it freely. It speaks
external ids and names; rows and CSR slices stay inside.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.config import Settings, WeightConfig
from setlist.errors import ModelError, NotFoundError, UnavailableError
from setlist.matrix import weight
from setlist.models.bundle import ModelBundle
from setlist.registry import ModelVersion, Registry, RegistryConfig
from setlist.serve.online import OnlineHistory

log = logging.getLogger(__name__)

PERSONALIZED = "personalized"
PERSONALIZED_ONLINE = "personalized_online"  # history since training folded in
POPULAR_FALLBACK = "popular_fallback"


@dataclass(frozen=True)
class ModelInfo:
    """What /v1/model reports about the loaded model."""

    version: str
    model_type: str
    params: dict[str, Any]
    metrics: dict[str, float]
    data_fingerprint: str | None
    trained_at: datetime | None

    @classmethod
    def from_version(cls, mv: ModelVersion, bundle: ModelBundle) -> ModelInfo:
        trained = _datetime(bundle.meta.get("trained_at")) or mv.created_at
        return cls(
            version=mv.version,
            model_type=mv.model_type if mv.model_type != "unknown" else bundle.model.kind,
            params=mv.params or bundle.model.get_params(),
            metrics=dict(mv.metrics),
            data_fingerprint=mv.data_fingerprint or _fingerprint(bundle.meta),
            trained_at=trained,
        )

    @classmethod
    def from_bundle(cls, bundle: ModelBundle) -> ModelInfo:
        """Info for a bundle served straight from a folder (no registry version)."""
        meta = bundle.meta
        metrics = meta.get("metrics")
        return cls(
            version=str(meta.get("version") or "local"),
            model_type=str(meta.get("model_type") or bundle.model.kind),
            params=bundle.model.get_params(),
            metrics={
                str(k): float(v)
                for k, v in (metrics.items() if isinstance(metrics, dict) else [])
                if isinstance(v, int | float)
            },
            data_fingerprint=_fingerprint(meta),
            trained_at=_datetime(meta.get("trained_at")),
        )


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    name: str
    score: float


@dataclass(frozen=True)
class Recommendations:
    user_id: str
    model_version: str
    strategy: str
    items: list[ScoredItem]
    fallback_reason: str | None = None


@dataclass(frozen=True)
class SimilarItems:
    item_id: str
    model_version: str
    items: list[ScoredItem]


@dataclass
class ModelState:
    """A loaded bundle and its info, or the reason there is none."""

    bundle: ModelBundle | None = None
    info: ModelInfo | None = None
    problem: str = "no model loaded"
    online: OnlineHistory | None = None
    _popular: npt.NDArray[np.int64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pop = self.bundle.popularity if self.bundle is not None else np.zeros(0, np.float32)
        # Stable sort of the negated counts: most heard first, ties by lower row.
        self._popular = np.argsort(-pop, kind="stable").astype(np.int64)

    @property
    def ready(self) -> bool:
        return self.bundle is not None and self.info is not None

    def require(self) -> tuple[ModelBundle, ModelInfo]:
        if self.bundle is None or self.info is None:
            raise UnavailableError(f"no model is loaded: {self.problem}")
        return self.bundle, self.info

    def recommend(self, user_id: str, k: int) -> Recommendations:
        """Top-k unheard items for a known user; the most popular items for an unknown one."""
        bundle, info = self.require()
        row = bundle.users.get(user_id)
        extra = self.online.extra(user_id) if self.online is not None else {}
        if extra:
            return self._recommend_online(user_id, row, extra, k)
        if row is None:
            return self._popular_for(user_id, k, info, "unknown_user")
        rows = np.array([row], dtype=np.int64)
        try:
            ids, scores = bundle.model.recommend(rows, bundle.seen[rows], k=k, exclude_seen=True)
        except ModelError:
            log.exception(
                "model %s failed for user %r; answering by popularity", info.version, user_id
            )
            return self._popular_for(user_id, k, info, "model_error")
        items = self._named(ids[0], scores[0])
        return Recommendations(user_id, info.version, PERSONALIZED, items)

    def _recommend_online(
        self, user_id: str, row: int | None, extra: dict[str, float], k: int
    ) -> Recommendations:
        """Fold the trained history plus what arrived since into one vector, and rank.

        Items whose total weight is not positive (disliked) are excluded, not used as taste.
        """
        bundle, info = self.require()
        history: dict[int, float] = {}
        if row is not None:
            seen = bundle.seen[row]
            history = dict(zip(seen.indices.tolist(), seen.data.tolist(), strict=True))
        for item_id, added in extra.items():
            col = bundle.items.get(item_id)
            if col is not None:
                history[col] = history.get(col, 0.0) + added
        liked = {c: w for c, w in history.items() if w > 0}
        banned = {c for c, w in history.items() if w <= 0}
        if not liked:
            return self._popular_for(user_id, k, info, "no_positive_history")
        cols = np.fromiter(liked, dtype=np.int64)
        raw = sp.csr_matrix(
            (np.fromiter(liked.values(), dtype=np.float32), (np.zeros(len(cols)), cols)),
            shape=(1, len(bundle.items)),
        )
        ids, scores = bundle.model.recommend_histories(
            weight(raw, _weighting(bundle.meta)), k=k + len(banned)
        )
        keep = ~np.isin(ids[0], np.fromiter(banned, dtype=np.int64))
        items = self._named(ids[0][keep][:k], scores[0][keep][:k])
        return Recommendations(user_id, info.version, PERSONALIZED_ONLINE, items)

    def similar(self, item_id: str, k: int) -> SimilarItems:
        """The k items most similar to a known item (never the item itself)."""
        bundle, info = self.require()
        row = bundle.items.get(item_id)
        if row is None:
            raise NotFoundError(f"unknown item {item_id!r}", field="item_id")
        ids, scores = bundle.model.similar_items(np.array([row], dtype=np.int64), k=k)
        keep = ids[0] != row
        return SimilarItems(item_id, info.version, self._named(ids[0][keep], scores[0][keep]))

    def _popular_for(self, user_id: str, k: int, info: ModelInfo, reason: str) -> Recommendations:
        bundle, _ = self.require()
        rows = self._popular[:k]
        items = self._named(rows, bundle.popularity[rows])
        return Recommendations(user_id, info.version, POPULAR_FALLBACK, items, reason)

    def _named(self, rows: npt.NDArray[Any], scores: npt.NDArray[Any]) -> list[ScoredItem]:
        bundle, _ = self.require()
        out = []
        for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
            if row < 0 or not math.isfinite(score):
                continue  # padding: fewer than k items were left
            out.append(ScoredItem(str(bundle.items.ids[row]), str(bundle.item_names[row]), score))
        return out


def load_state(settings: Settings, bundle_dir: Path | None = None) -> ModelState:
    """The state to serve: the given bundle folder, else the registry's champion.

    Never raises: whatever goes wrong is logged and kept as the state's ``problem``, so the
    service still starts (``/health`` answers, ``/ready`` says why it is not ready).
    """
    try:
        if bundle_dir is not None:
            bundle = ModelBundle.load(bundle_dir)
            state = ModelState(bundle, ModelInfo.from_bundle(bundle))
        else:
            state = _load_champion(settings)
    except Exception as exc:  # start-up must survive any loading failure
        log.exception("no model loaded")
        return ModelState(problem=f"loading failed: {exc}")
    if state.info is not None:
        log.info("serving %s version %s", state.info.model_type, state.info.version)
    return state


def _load_champion(settings: Settings) -> ModelState:
    registry = Registry(RegistryConfig.from_settings(settings))
    # The bundle is read fully into memory, so the downloaded files can go at once.
    with tempfile.TemporaryDirectory(prefix="setlist-serve-") as tmp:
        loaded = registry.load_champion(Path(tmp))
    if loaded is None:
        where = f"{settings.model_name!r} at {settings.tracking_uri}"
        return ModelState(problem=f"the registry has no champion for {where}")
    version, bundle = loaded
    return ModelState(bundle, ModelInfo.from_version(version, bundle))


def _weighting(meta: dict[str, Any]) -> WeightConfig:
    """The weighting the bundle's model was trained with (recorded in its metadata)."""
    recorded = meta.get("weighting")
    if not isinstance(recorded, dict):
        return WeightConfig()
    fields = WeightConfig.__dataclass_fields__
    return WeightConfig(**{k: v for k, v in recorded.items() if k in fields})


def _fingerprint(meta: dict[str, Any]) -> str | None:
    data = meta.get("data")
    value = meta.get("data_fingerprint") or (
        data.get("fingerprint") if isinstance(data, dict) else None
    )
    return None if value is None else str(value)


def _datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None
