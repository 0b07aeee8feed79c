"""Organic playlists: real, human-made playlists (the MPD catalogue) for a listener, each with why.

``GET /v1/users/{user_id}/playlists`` for a known listener, ``POST /v1/recommendations/playlists``
for a new one from seed artists (none known: the most-followed playlists). Both answer from the
newest saved version of the organic ranker (:mod:`setlist.serve.runtime.organic`) over the
served artists bundle; ``serendipity`` (0..1) trades familiar artists for new ones.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StringConstraints
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from setlist.events.schema import JsonInt
from setlist.serve.answer.ask import MAX_ID_LENGTH
from setlist.serve.answer.organic import OrganicAnswerer, OrganicPick
from setlist.serve.api.deps import ServiceDep
from setlist.serve.api.schemas import ErrorPublic

router = APIRouter(prefix="/v1", tags=["organic playlists"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}
MAX_PLAYLISTS = 50
MAX_SEEDS = 50
SeedId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


class ArtistRefPublic(BaseModel):
    item_id: str
    name: str


class BecausePublic(BaseModel):
    familiar: list[ArtistRefPublic] = Field(description="Artists in it the listener loves.")
    new: list[ArtistRefPublic] = Field(
        description="Artists in it new to the listener, those their buddies play first."
    )
    buddies: list[str] = Field(description="The listener's taste buddies who play its artists.")


class OrganicPlaylistPublic(BaseModel):
    playlist_id: str
    name: str
    num_followers: int
    num_tracks: int
    because: BecausePublic


class OrganicPlaylistsPublic(BaseModel):
    version: str = Field(description="The organic ranker's saved version.")
    champion: str = Field(description="What orders them: ranker, overlap or most_followed.")
    items: list[OrganicPlaylistPublic]


class OrganicSeedsIn(BaseModel):
    """A new listener's seed artists (ids or names, accents and case ignored)."""

    model_config = ConfigDict(extra="forbid")

    seeds: list[SeedId] = Field(default_factory=list, max_length=MAX_SEEDS)
    k: JsonInt = Field(default=10, ge=1, le=MAX_PLAYLISTS, description="How many playlists.")
    # StrictFloat takes JSON integers too, never a string or a boolean; one type, so the
    # schema states the bounds.
    serendipity: StrictFloat = Field(
        default=0.3, ge=0, le=1, description="0: most familiar, 1: most discovery."
    )


def _public(answerer: OrganicAnswerer, picks: list[OrganicPick]) -> OrganicPlaylistsPublic:
    def refs(found: list[Any]) -> list[ArtistRefPublic]:
        return [ArtistRefPublic(item_id=r.item_id, name=r.name) for r in found]

    return OrganicPlaylistsPublic(
        version=answerer.artifact.version,
        champion=answerer.artifact.champion,
        items=[
            OrganicPlaylistPublic(
                playlist_id=p.playlist_id,
                name=p.name,
                num_followers=p.num_followers,
                num_tracks=p.num_tracks,
                because=BecausePublic(
                    familiar=refs(p.familiar), new=refs(p.new), buddies=p.buddies
                ),
            )
            for p in picks
        ],
    )


def _json(answerer: OrganicAnswerer, picks: list[OrganicPick]) -> bytes:
    """The :class:`OrganicPlaylistsPublic` shape, written straight to JSON."""
    items = []
    for p in picks:
        d = asdict(p)
        because = {key: d.pop(key) for key in ("familiar", "new", "buddies")}
        items.append({**d, "because": because})
    a = answerer.artifact
    return orjson.dumps({"version": a.version, "champion": a.champion, "items": items})


@router.get(
    "/users/{user_id:path}/playlists", responses=_ERRORS, response_model=OrganicPlaylistsPublic
)
async def user_playlists(
    service: ServiceDep,
    user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)],
    k: Annotated[int, Query(ge=1, le=MAX_PLAYLISTS, description="How many playlists.")] = 10,
    serendipity: Annotated[
        float, Query(ge=0, le=1, description="0: most familiar, 1: most discovery.")
    ] = 0.3,
) -> Response:
    """Organic playlists for a listener: candidates from their artists and their taste buddies',
    ordered by the learned ranker (from the weekly top-picks table while it is fresh); 404
    naming ``user_id`` for an unknown listener.

    Answered on the event loop in the service's turns (a few milliseconds of numpy and
    LightGBM), one at a time: in the threadpool, requests interleaved under the GIL and each
    took several times its own work at the tail. Linking a newly swapped bundle (about a
    second) goes to the threadpool; the JSON is written directly."""
    bundle, _ = service.artists.model.require()
    answerer = service.organic.built(bundle)
    if answerer is None:
        answerer = await run_in_threadpool(service.organic.answerer, bundle)
    turns = service.turns
    await turns.take()
    try:
        picks = service.organic.stored(user_id, k, float(serendipity))
        if picks is None:
            picks = answerer.for_user(user_id, k, float(serendipity))
        body = _json(answerer, picks)
    finally:
        turns.give()
    return Response(body, media_type="application/json")


@router.post("/recommendations/playlists", responses=_ERRORS)
def seed_playlists(body: OrganicSeedsIn, service: ServiceDep) -> OrganicPlaylistsPublic:
    """Organic playlists for a new listener from seed artists; no known seed: the most followed."""
    bundle, _ = service.artists.model.require()
    answerer = service.organic.answerer(bundle)
    return _public(answerer, answerer.for_seeds(body.seeds, body.k, float(body.serendipity)))
