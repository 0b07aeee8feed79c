"""Moods derived from Last.fm tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from setlist.serve.api.deps import StateDep
from setlist.serve.api.schemas import ErrorPublic, MoodItemPublic, MoodPublic, MoodsPublic

router = APIRouter(prefix="/v1", tags=["moods"])

_ERRORS: dict[int | str, dict[str, Any]] = {503: {"model": ErrorPublic}}
EXAMPLES = 5


@router.get("/moods", responses=_ERRORS)
async def moods(state: StateDep) -> MoodsPublic:
    """The moods this model's catalogue supports, with their tags and best artists."""
    bundle, info = state.require()
    return MoodsPublic(
        model_version=info.version,
        moods=[
            MoodPublic(
                name=m.mood.name,
                description=m.mood.description,
                tags=list(m.mood.tags),
                artists=m.n_items,
                examples=[
                    MoodItemPublic(item_id=str(bundle.items.ids[r]), name=str(bundle.item_names[r]))
                    for r in m.top_rows[:EXAMPLES].tolist()
                ],
            )
            for m in state.moods()
        ],
    )
