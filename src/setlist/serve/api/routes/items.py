"""Items similar to an item."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from setlist.serve.api.deps import ItemIdPath, KDep, StateDep
from setlist.serve.api.schemas import ErrorPublic, ItemScorePublic, SimilarItemsPublic

router = APIRouter(prefix="/v1/items", tags=["items"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}


@router.get("/{item_id:path}/similar", responses=_ERRORS)
def similar(item_id: ItemIdPath, k: KDep, state: StateDep) -> SimilarItemsPublic:
    """The k items most similar to an item; 404 for an unknown item."""
    found = state.similar(item_id, k)
    return SimilarItemsPublic(
        item_id=found.item_id,
        model_version=found.model_version,
        items=[ItemScorePublic(item_id=i.item_id, name=i.name, score=i.score) for i in found.items],
    )
