"""Recommendations for a listener."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from setlist.serve.deps import KDep, MetricsDep, StateDep, UserIdPath
from setlist.serve.schemas import ErrorPublic, ItemScorePublic, RecommendationsPublic

router = APIRouter(prefix="/v1/users", tags=["recommendations"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}


@router.get("/{user_id:path}/recommendations", responses=_ERRORS)
def recommend(
    user_id: UserIdPath, k: KDep, state: StateDep, metrics: MetricsDep
) -> RecommendationsPublic:
    """Top-k unheard items for a user; the most popular items for an unknown user."""
    recs = state.recommend(user_id, k)
    if recs.fallback_reason is not None:
        metrics.fallbacks.labels(recs.fallback_reason).inc()
    return RecommendationsPublic(
        user_id=recs.user_id,
        model_version=recs.model_version,
        strategy=recs.strategy,
        items=[ItemScorePublic(item_id=i.item_id, name=i.name, score=i.score) for i in recs.items],
    )
