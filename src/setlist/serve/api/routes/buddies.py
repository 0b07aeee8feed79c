"""Taste buddies: the listeners nearest a listener, or a new listener's seed artists, in taste.

Both answer through :class:`setlist.serve.answer.buddies.BuddyFinder` of the served bundle:
its listener index (SVD-reduced taste vectors in faiss, re-ranked by the exact hub-corrected
log1p x IDF pairing; see :mod:`setlist.index.listeners`), or exact search for a bundle without
one. The pairing was chosen by ``benchmarks/buddies.py`` against HetRec's friend graph.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from setlist.events.schema import JsonInt
from setlist.serve.answer.ask import MAX_ID_LENGTH, MAX_SEEDS
from setlist.serve.answer.buddies import BuddyFinder, NamedBuddy
from setlist.serve.answer.state import ModelState
from setlist.serve.api.deps import StateDep
from setlist.serve.api.schemas import ErrorPublic, Id

router = APIRouter(prefix="/v1", tags=["buddies"])

MAX_BUDDIES = 100
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}


class ItemRefPublic(BaseModel):
    item_id: str
    name: str


class BuddyPublic(BaseModel):
    user_id: str
    similarity: float = Field(description="Cosine of the two listeners' taste vectors.")
    shared: list[ItemRefPublic] = Field(description="Artists both love most.")
    discoveries: list[ItemRefPublic] = Field(
        description="What the buddy loves most that the listener has not heard."
    )


class BuddiesPublic(BaseModel):
    items: list[BuddyPublic]


class SeedBuddiesIn(BaseModel):
    """A new listener's seed artists (ids or names), as onboarding takes them."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[Id] = Field(
        min_length=1, max_length=MAX_SEEDS, description="Seed artists: item ids or names."
    )
    k: JsonInt = Field(default=10, ge=1, le=MAX_BUDDIES, description="How many buddies.")


class SeedBuddiesPublic(BuddiesPublic):
    seeds: list[str] = Field(description="The seeds that matched an artist.")
    unknown_seeds: list[str] = Field(description="The seeds that matched nothing.")


@router.get("/users/{user_id:path}/buddies", responses=_ERRORS, response_model=BuddiesPublic)
async def buddies(
    state: StateDep,
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    k: Annotated[int, Query(ge=1, le=MAX_BUDDIES)] = 10,
) -> JSONResponse:
    """A listener's taste buddies: the training listeners nearest in taste, never themself.

    Taste is the listener's history weighted log1p x IDF; neighbours come through the bundle's
    listener index and are ranked by cosine less a hubness correction. An unknown listener is
    a 404 naming ``user_id``.

    Answered on the event loop through the listener index (about a millisecond of numpy and
    faiss, as the recommendation hot path does; exact search goes to the threadpool) and
    written as JSON directly: the shape is :class:`BuddiesPublic`, built here from plain
    values rather than validated twice.
    """
    finder = _finder(state)
    if finder.indexed:
        found = finder.for_user(user_id, k)
    else:  # exact search over every listener (and its vectors, once): off the event loop
        found = await run_in_threadpool(finder.for_user, user_id, k)
    return JSONResponse({"items": [_plain(b) for b in found]})


@router.post("/buddies", responses=_ERRORS)
def seed_buddies(body: SeedBuddiesIn, state: StateDep) -> SeedBuddiesPublic:
    """The taste buddies of a new listener from a few seed artists (one listen each).

    Seeds that match no artist are returned in ``unknown_seeds``; when none matches, a 404
    names ``seeds``.
    """
    found = _finder(state).for_seeds(body.seeds, body.k)
    return SeedBuddiesPublic(
        seeds=found.seeds, unknown_seeds=found.unknown_seeds, items=_public(found.items)
    )


def _finder(state: ModelState) -> BuddyFinder:
    state.require()
    return state.buddy_finder()


def _plain(b: NamedBuddy) -> dict[str, Any]:
    """One buddy as :class:`BuddyPublic`'s JSON."""
    return {
        "user_id": b.user_id,
        "similarity": b.similarity,
        "shared": [{"item_id": i, "name": n} for i, n in b.shared],
        "discoveries": [{"item_id": i, "name": n} for i, n in b.discoveries],
    }


def _public(found: list[NamedBuddy]) -> list[BuddyPublic]:
    return [
        BuddyPublic(
            user_id=b.user_id,
            similarity=b.similarity,
            shared=[ItemRefPublic(item_id=i, name=n) for i, n in b.shared],
            discoveries=[ItemRefPublic(item_id=i, name=n) for i, n in b.discoveries],
        )
        for b in found
    ]
