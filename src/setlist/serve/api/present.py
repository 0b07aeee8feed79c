"""From answers (:mod:`setlist.serve.answer.state`) to response models
(:mod:`setlist.serve.api.schemas`).

The hot route (``GET /v1/users/{id}/recommendations``) skips pydantic: :func:`recommendations_json`
writes the same shape as :class:`RecommendationsPublic` straight to JSON bytes with orjson (a
tenth of the standard library's time for this shape), and the route returns them as a
``Response`` (so FastAPI does not validate the answer a second time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from setlist.serve.answer.state import Recommendations, ScoredItem
from setlist.serve.api.schemas import (
    BecausePublic,
    CataloguePublic,
    RecommendationsPublic,
    RecommendedItemPublic,
)
from setlist.serve.runtime.loading import CatalogueServing


def items_public(
    items: Sequence[ScoredItem], propensities: Sequence[float] | None = None
) -> list[RecommendedItemPublic]:
    props = propensities if propensities is not None else [None] * len(items)
    return [
        RecommendedItemPublic(
            item_id=i.item_id,
            name=i.name,
            score=i.score,
            propensity=p,
            because=[BecausePublic(**r) for r in i.because],
            new_item=i.new_item,
        )
        for i, p in zip(items, props, strict=True)
    ]


def recommendations_public(
    recs: Recommendations,
    arm: str,
    items: Sequence[ScoredItem] | None = None,
    propensities: Sequence[float] | None = None,
) -> RecommendationsPublic:
    shown = recs.items if items is None else items
    return RecommendationsPublic(
        user_id=recs.user_id or "",
        model_version=recs.model_version,
        strategy=recs.strategy,
        items=items_public(shown, propensities),
        arm=arm,
        mood=recs.mood,
    )


def recommendations_json(
    recs: Recommendations,
    arm: str,
    items: Sequence[ScoredItem],
    propensities: Sequence[float],
) -> bytes:
    """The :class:`RecommendationsPublic` shape as JSON bytes, without model validation."""
    body: dict[str, Any] = {
        "user_id": recs.user_id or "",
        "model_version": recs.model_version,
        "strategy": recs.strategy,
        "items": [
            {
                "item_id": i.item_id,
                "name": i.name,
                "score": i.score,
                "propensity": p,
                "because": i.because,  # Reason dicts, already in the response's shape
                "new_item": i.new_item,
            }
            for i, p in zip(items, propensities, strict=True)
        ],
        "arm": arm,
        "mood": recs.mood,
    }
    return orjson.dumps(body)


def continuation_json(recs: Recommendations, artists: Sequence[str | None]) -> bytes:
    """The :class:`ContinuePublic` shape as JSON bytes, without model validation (500 items
    with reasons through pydantic took about half of the route's time)."""
    body: dict[str, Any] = {
        "items": [
            {
                "item_id": i.item_id,
                "name": i.name,
                "artist": artist,
                "score": i.score,
                # Reason dicts are already in the response's shape (kind set on every one);
                # a title reason's empty item_id is written as null.
                "because": [r if r["item_id"] else {**r, "item_id": None} for r in i.because],
            }
            for i, artist in zip(recs.items, artists, strict=True)
        ],
        "strategy": recs.strategy,
        "unknown_tracks": list(recs.unknown_seeds),
        "model_version": recs.model_version,
    }
    return orjson.dumps(body)


def catalogue_public(serving: CatalogueServing) -> CataloguePublic:
    """One catalogue's spec and the state of its primary (or first ready) arm."""
    state, spec = serving.model, serving.catalogue
    info, bundle = state.info, state.bundle
    return CataloguePublic(
        name=spec.name,
        noun=spec.noun,
        registered_model=spec.registered_model,
        ready=state.ready,
        model_version=info.version if info is not None else None,
        model_type=info.model_type if info is not None else None,
        items=len(bundle.items) if bundle is not None else None,
        problem=None if state.ready else state.problem,
    )
