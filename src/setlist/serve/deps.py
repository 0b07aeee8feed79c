"""Dependencies of the routes: settings, the loaded model state, metrics, shared parameters."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Path, Query, Request

from setlist.config import Settings
from setlist.errors import ValidationError
from setlist.serve.metrics import ServiceMetrics
from setlist.serve.state import ModelState

MAX_ID_LENGTH = 256
DEFAULT_K = 10


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_state(request: Request) -> ModelState:
    return cast(ModelState, request.app.state.model)


def get_metrics(request: Request) -> ServiceMetrics:
    return cast(ServiceMetrics, request.app.state.metrics)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[ModelState, Depends(get_state)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]


def get_k(
    settings: SettingsDep,
    k: Annotated[int, Query(ge=1, description="How many items (1 to the max_k setting).")] = (
        DEFAULT_K
    ),
) -> int:
    """``k`` from the query string, bounded by ``settings.max_k`` (known only at run time)."""
    if k > settings.max_k:
        raise ValidationError(
            f"k must be between 1 and {settings.max_k}, got {k}", field="k", value=k
        )
    return k


KDep = Annotated[int, Depends(get_k)]
UserIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External user id.")
]
ItemIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External item id.")
]
