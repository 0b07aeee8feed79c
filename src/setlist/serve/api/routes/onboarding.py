"""Recommendations without a user path: onboarding from seed artists, and batches of users.

Both answer through :meth:`setlist.serve.answer.state.ModelState.answer`, as the single route
does: the same ranking rules, and the serving policy's exploration with its propensities.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from setlist.serve.answer.ask import Ask
from setlist.serve.api.deps import (
    ArmsDep,
    ExploreDep,
    MetricsDep,
    ServiceDep,
    SettingsDep,
    check_exclude,
    check_k,
)
from setlist.serve.api.present import items_public, recommendations_public
from setlist.serve.api.schemas import (
    MAX_BATCH_ITEMS,
    BatchIn,
    BatchPublic,
    ErrorPublic,
    OnboardingIn,
    OnboardingPublic,
)
from setlist.serve.api.service import Service
from setlist.serve.runtime.loading import CatalogueServing

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No known seed, or a mood this catalogue lacks."},
    400: {"model": ErrorPublic},
    413: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}


@router.post("", responses=_ERRORS)
def onboard(body: OnboardingIn, request: Request, service: ServiceDep) -> OnboardingPublic:
    """Personalised picks for a new listener from a few seed artists (ids or names), by fold-in."""
    return onboard_in(body, request, service, service.artists)


def onboard_in(
    body: OnboardingIn, request: Request, service: Service, serving: CatalogueServing
) -> OnboardingPublic:
    """Onboarding in any catalogue: validate, pick the ready arm, answer, record, write."""
    settings, explore = service.settings, service.explore
    check_k(body.k, settings)
    excluded = tuple(check_exclude(body.exclude, settings))
    policy = explore if explore.active else None
    arm = serving.arms.ready_arm()
    request.state.arm = arm.name
    recs = arm.state.answer(Ask(None, tuple(body.seeds), body.k, excluded, body.mood, policy))
    service.metrics.answered(
        arm.name, arm.state.bundle, recs.strategy, recs.mood, recs.items, serving.name
    )
    unknown = set(recs.unknown_seeds)
    return OnboardingPublic(
        model_version=recs.model_version,
        strategy=recs.strategy,
        arm=arm.name,
        mood=recs.mood,
        seeds=[s for s in body.seeds if s not in unknown],
        unknown_seeds=list(recs.unknown_seeds),
        items=items_public(recs.items, recs.shown_propensities()),
    )


@router.post("/batch", responses=_ERRORS)
def batch(
    body: BatchIn,
    arms: ArmsDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    explore: ExploreDep,
) -> BatchPublic:
    """Top-k for up to 1,000 users in one request (each on its own A/B arm); users x k <= 20,000."""
    from setlist.errors import TooLargeError

    check_k(body.k, settings)
    excluded = tuple(check_exclude(body.exclude, settings))
    if len(body.user_ids) > settings.max_batch:
        raise TooLargeError(
            f"user_ids holds {len(body.user_ids)} users; at most {settings.max_batch}",
            field="user_ids",
        )
    if len(body.user_ids) * body.k > MAX_BATCH_ITEMS:
        # The work of one request is bounded (users x k), so no batch can hold the service.
        raise TooLargeError(
            f"{len(body.user_ids)} users x k={body.k} is over {MAX_BATCH_ITEMS:,} answers per "
            "request; send fewer users or a smaller k",
            field="k",
            value=body.k,
            limit=MAX_BATCH_ITEMS,
        )
    policy = explore if explore.active else None
    results = []
    for user_id in body.user_ids:
        arm = arms.assign(user_id)
        recs = arm.state.answer(Ask(user_id, (), body.k, excluded, None, policy))
        if recs.fallback_reason is not None:
            metrics.fell_back(recs.fallback_reason, arm.name)
        metrics.answered(arm.name, arm.state.bundle, recs.strategy, None, recs.items)
        shown = recs.shown_propensities()
        results.append(recommendations_public(recs, arm.name, recs.items, shown))
    return BatchPublic(results=results)
