"""Dependencies of the routes: the service and its parts, shared parameters.

They are ``async def`` on purpose: none of them blocks, and a plain ``def`` dependency costs a
hop through the threadpool on every request. Every app object is reached through the one
:class:`setlist.serve.api.service.Service`; the routes without a catalogue in their path answer
from the ``artists`` catalogue, those under ``/v1/catalogues/{catalogue}`` from the one named.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import StringConstraints

from setlist.config import Settings
from setlist.errors import ValidationError
from setlist.serve.answer.ask import DEFAULT_K, MAX_ID_LENGTH, MAX_MOOD_LENGTH
from setlist.serve.answer.explore import ExplorationPolicy
from setlist.serve.answer.moods import MOOD_NAMES
from setlist.serve.answer.state import ModelState
from setlist.serve.api import guard  # noqa: F401  (registers the path convertor first)
from setlist.serve.api.service import Service, service_of
from setlist.serve.runtime.abtest import Arms
from setlist.serve.runtime.loading import CatalogueServing
from setlist.serve.runtime.metrics import ServiceMetrics


async def get_service(request: Request) -> Service:
    return service_of(request.app)


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_settings(service: ServiceDep) -> Settings:
    return service.settings


async def get_state(service: ServiceDep) -> ModelState:
    return service.artists.model


async def get_metrics(service: ServiceDep) -> ServiceMetrics:
    return service.metrics


async def get_arms(service: ServiceDep) -> Arms:
    return service.artists.arms


async def get_explore(service: ServiceDep) -> ExplorationPolicy:
    return service.explore


CatalogueName = Annotated[
    str,
    Path(min_length=1, max_length=64, description="A catalogue: artists, tracks, ..."),
]


async def get_catalogue(service: ServiceDep, catalogue: CatalogueName) -> CatalogueServing:
    """The catalogue named in the path; 404 naming it when it is not served."""
    return service.catalogue(catalogue)


SettingsDep = Annotated[Settings, Depends(get_settings)]
StateDep = Annotated[ModelState, Depends(get_state)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
ArmsDep = Annotated[Arms, Depends(get_arms)]
ExploreDep = Annotated[ExplorationPolicy, Depends(get_explore)]
CatalogueDep = Annotated[CatalogueServing, Depends(get_catalogue)]


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
        description="Blend the listener's taste with a mood (see GET /v1/moods): one of the "
        "vocabulary; 404 where this catalogue does not offer it.",
        json_schema_extra={"enum": list(MOOD_NAMES)},
    ),
]
UserIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External user id.")
]
ItemIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="External item id.")
]
