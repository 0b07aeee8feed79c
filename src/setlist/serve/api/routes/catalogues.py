"""Routes of one catalogue (``/v1/catalogues/{catalogue}/...``) and the list of catalogues.

Each catalogue (artists, tracks, ...) answers from its own model, arms and metrics labels; an
unknown catalogue is a 404 naming it. The routes without a catalogue in their path
(``/v1/users/{id}/recommendations`` and the others) stay the ``artists`` catalogue's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import StringConstraints

from setlist.serve.answer.ask import MAX_ID_LENGTH
from setlist.serve.api.deps import (
    CatalogueDep,
    ExcludeDep,
    ItemIdPath,
    KDep,
    MoodQuery,
    ServiceDep,
    UserIdPath,
)
from setlist.serve.api.present import catalogue_public
from setlist.serve.api.routes.onboarding import onboard_in
from setlist.serve.api.routes.recommendations import respond
from setlist.serve.api.schemas import (
    CatalogueItemPublic,
    CatalogueItemsPublic,
    CataloguesPublic,
    ErrorPublic,
    ItemScorePublic,
    OnboardingIn,
    OnboardingPublic,
    RecommendationsPublic,
    SimilarItemsPublic,
)

router = APIRouter(prefix="/v1/catalogues", tags=["catalogues"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}
ItemIds = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]],
    Query(max_length=100, description="Item ids (repeat the parameter); unknown: skipped."),
]


@router.get("")
async def list_catalogues(service: ServiceDep) -> CataloguesPublic:
    """The catalogues this service serves, each with the model it answers from."""
    return CataloguesPublic(catalogues=[catalogue_public(c) for c in service.catalogues.values()])


@router.get(
    "/{catalogue}/users/{user_id:path}/recommendations",
    responses=_ERRORS,
    response_model=RecommendationsPublic,
)
async def recommend(
    request: Request,
    serving: CatalogueDep,
    service: ServiceDep,
    user_id: UserIdPath,
    k: KDep,
    exclude: ExcludeDep,
    mood: MoodQuery = None,
) -> Response:
    """Top-k unheard items of the catalogue for a user; popular items for an unknown user."""
    return await respond(request, service, serving, user_id, k, tuple(exclude), mood)


@router.get("/{catalogue}/items/{item_id:path}/similar", responses=_ERRORS)
def similar(item_id: ItemIdPath, k: KDep, serving: CatalogueDep) -> SimilarItemsPublic:
    """The k items of the catalogue most similar to an item; 404 for an unknown item."""
    found = serving.model.similar(item_id, k)
    return SimilarItemsPublic(
        item_id=found.item_id,
        model_version=found.model_version,
        items=[ItemScorePublic(item_id=i.item_id, name=i.name, score=i.score) for i in found.items],
    )


@router.get("/{catalogue}/items", responses=_ERRORS)
def items(item_id: ItemIds, serving: CatalogueDep) -> CatalogueItemsPublic:
    """Names, links and attributes (a track's artist) of the given items of the catalogue."""
    bundle, _ = serving.model.require()
    found: list[CatalogueItemPublic] = []
    for wanted in item_id:
        row = bundle.items.get(wanted)
        if row is None:
            continue
        name = str(bundle.item_names[row])
        url = str(bundle.item_urls[row]) if len(bundle.item_urls) > row else ""
        found.append(
            CatalogueItemPublic(
                item_id=wanted,
                name=name,
                url=serving.catalogue.link(wanted, name, url),
                attributes={k: str(v[row]) for k, v in bundle.item_attributes.items()},
            )
        )
    return CatalogueItemsPublic(catalogue=serving.name, items=found)


@router.post("/{catalogue}/recommendations", responses=_ERRORS)
def onboard(
    body: OnboardingIn, request: Request, serving: CatalogueDep, service: ServiceDep
) -> OnboardingPublic:
    """Picks of the catalogue for a new listener from a few seed items (ids or names)."""
    return onboard_in(body, request, service, serving)
