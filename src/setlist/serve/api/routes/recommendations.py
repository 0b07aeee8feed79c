"""Recommendations for a listener."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from setlist.serve.answer.ask import DEFAULT_K, Ask
from setlist.serve.api.deps import (
    ExcludeQuery,
    KQuery,
    MoodQuery,
    UserIdPath,
    check_exclude,
    check_k,
)
from setlist.serve.api.present import recommendations_json
from setlist.serve.api.schemas import ErrorPublic, RecommendationsPublic
from setlist.serve.api.service import Service
from setlist.serve.runtime.loading import CatalogueServing

router = APIRouter(prefix="/v1/users", tags=["recommendations"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No known seed, or a mood this catalogue lacks."},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}


@router.get(
    "/{user_id:path}/recommendations", responses=_ERRORS, response_model=RecommendationsPublic
)
async def recommend(
    request: Request,
    user_id: UserIdPath,
    k: KQuery = DEFAULT_K,
    exclude: ExcludeQuery = None,
    mood: MoodQuery = None,
) -> Response:
    """Top-k unheard items for a user, each with its reasons; popular items for an unknown user."""
    # The hot path: inline, not in the threadpool (an ANN answer takes well under a millisecond),
    # and the service read directly rather than through dependencies (each costs per request).
    # One inline answer per loop turn (setlist.serve.api.limits.Turns): sockets are read between.
    # Validate, pick the arm, answer (ModelState.answer: every rule and the policy), record, write.
    service: Service = request.app.state.service
    settings = service.settings
    k = check_k(k, settings)
    excluded = tuple(check_exclude(list(exclude or []), settings))
    return await respond(request, service, service.artists, user_id, k, excluded, mood)


async def respond(
    request: Request,
    service: Service,
    serving: CatalogueServing,
    user_id: str,
    k: int,
    excluded: tuple[str, ...],
    mood: str | None,
) -> Response:
    """One validated user request of any catalogue: pick the arm, answer, record, write."""
    explore = service.explore
    ask = Ask(user_id, (), k, excluded, mood, explore if explore.active else None)
    arm = serving.arms.assign(user_id)
    request.state.arm = arm.name
    metrics, turns = service.metrics, service.turns
    await turns.take()
    try:
        recs = arm.state.answer(ask)
        if recs.fallback_reason is not None:
            metrics.fell_back(recs.fallback_reason, arm.name, serving.name)
        metrics.answered(
            arm.name, arm.state.bundle, recs.strategy, recs.mood, recs.items, serving.name
        )
        body = recommendations_json(recs, arm.name, recs.items, recs.shown_propensities())
    finally:
        turns.give()
    return Response(body, media_type="application/json")
