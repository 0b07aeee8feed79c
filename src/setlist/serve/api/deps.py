"""Dependencies of the routes: settings, arms and model state, metrics, shared parameters.

They are ``async def`` on purpose: none of them blocks, and a plain ``def`` dependency costs a
hop through the threadpool on every request.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Path, Query, Request
from pydantic import StringConstraints

from setlist.config import Settings
from setlist.errors import ValidationError
from setlist.serve.answer.ask import DEFAULT_K, MAX_ID_LENGTH, MAX_MOOD_LENGTH
from setlist.serve.answer.state import ModelState
from setlist.serve.runtime.abtest import Arms
from setlist.serve.runtime.metrics import ServiceMetrics


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_state(request: Request) -> ModelState:
    return cast(ModelState, request.app.state.model)


async def get_metrics(request: Request) -> ServiceMetrics:
    return cast(ServiceMetrics, request.app.state.metrics)


async def get_arms(request: Request) -> Arms:
    return cast(Arms, request.app.state.arms)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[ModelState, Depends(get_state)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
ArmsDep = Annotated[Arms, Depends(get_arms)]


def check_k(k: int, settings: Settings) -> int:
    if k > settings.max_k:
        raise ValidationError(
            f"k must be between 1 and {settings.max_k}, got {k}", field="k", value=k
        )
    return k


KQuery = Annotated[int, Query(ge=1, description="How many items (1 to the max_k setting).")]


async def get_k(settings: SettingsDep, k: KQuery = DEFAULT_K) -> int:
    """``k`` from the query string, bounded by ``settings.max_k`` (known only at run time)."""
    return check_k(k, settings)


def check_exclude(exclude: list[str], settings: Settings) -> list[str]:
    if len(exclude) > settings.max_exclude:
        raise ValidationError(
            f"exclude holds {len(exclude)} ids; at most {settings.max_exclude} are allowed",
            field="exclude",
        )
    return exclude


ItemId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


ExcludeQuery = Annotated[
    list[ItemId] | None,
    Query(description="Item ids never to return (repeat the parameter for several)."),
]


async def get_exclude(settings: SettingsDep, exclude: ExcludeQuery = None) -> list[str]:
    return check_exclude(list(exclude or []), settings)


KDep = Annotated[int, Depends(get_k)]
ExcludeDep = Annotated[list[str], Depends(get_exclude)]
MoodQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_MOOD_LENGTH,
        description="Blend the listener's taste with a mood (see GET /v1/moods).",
    ),
]
UserIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External user id.")
]
ItemIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External item id.")
]
