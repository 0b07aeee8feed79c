"""Recommendations for a listener."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from setlist.serve.answer.ask import DEFAULT_K, Ask
from setlist.serve.answer.explore import get_explore
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

router = APIRouter(prefix="/v1/users", tags=["recommendations"])

_ERRORS: dict[int | str, dict[str, Any]] = {
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
    # and app objects read directly rather than through dependencies (each costs per request).
    # One inline answer per loop turn (setlist.serve.api.limits.Turns): sockets are read between.
    # Validate, pick the arm, answer (ModelState.answer: every rule and the policy), record, write.
    state = request.app.state
    settings, metrics = state.settings, state.metrics
    k = check_k(k, settings)
    excluded = tuple(check_exclude(list(exclude or []), settings))
    explore = get_explore(request)
    ask = Ask(user_id, (), k, excluded, mood, explore if explore.active else None)
    arm = state.arms.assign(user_id)
    request.state.arm = arm.name
    turns = state.turns
    await turns.take()
    try:
        recs = arm.state.answer(ask)
        if recs.fallback_reason is not None:
            metrics.fallbacks.labels(recs.fallback_reason, arm.name).inc()
        metrics.answered(arm.name, arm.state.bundle, recs.strategy, recs.mood, recs.items)
        body = recommendations_json(recs, arm.name, recs.items, recs.shown_propensities())
    finally:
        turns.give()
    return Response(body, media_type="application/json")
