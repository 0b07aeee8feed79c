"""Playlist routes, answered from the ``tracks`` catalogue: continue a new playlist, read a
training playlist, search tracks by track or artist name.

They name no catalogue in their path: playlists are made of tracks, so they always answer from
the catalogue called ``tracks``. A service that does not serve it answers 404 naming ``tracks``;
one that serves it without a loaded model answers 503 naming it (and why). The continuation goes
through :meth:`setlist.serve.answer.state.ModelState.answer`, like every recommendation, and is
counted under ``catalogue="tracks"`` in the answer metrics.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from setlist.catalogue import TRACKS_CATALOGUE
from setlist.serve.answer.ask import MAX_ID_LENGTH, Ask
from setlist.serve.api.deps import ServiceDep, check_exclude
from setlist.serve.api.present import continuation_json
from setlist.serve.api.routes.catalogue import search_rows
from setlist.serve.api.schemas import (
    ContinueIn,
    ContinuePublic,
    ErrorPublic,
    PlaylistPublic,
    PlaylistTrackPublic,
    TrackPublic,
    TrackSearchPublic,
)
from setlist.serve.api.service import Service
from setlist.serve.runtime.loading import CatalogueServing

router = APIRouter(prefix="/v1", tags=["playlists"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic},
    404: {"model": ErrorPublic},
    413: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}
MAX_TRACK_SEARCH = 1000


def _tracks(service: Service) -> CatalogueServing:
    """The served ``tracks`` catalogue; 404 naming it when this service does not serve it."""
    return service.catalogue(TRACKS_CATALOGUE)


@router.post("/playlists/continue", responses=_ERRORS, response_model=ContinuePublic)
def continue_playlist(body: ContinueIn, request: Request, service: ServiceDep) -> Response:
    """The k tracks that best continue a new playlist, from its tracks, its name, or both.

    Never a seed track, never one twice; unknown seed ids are listed in ``unknown_tracks``.
    """
    serving = _tracks(service)
    excluded = tuple(check_exclude(body.exclude, service.settings))
    arm = serving.arms.ready_arm()
    request.state.arm = arm.name
    state = arm.state
    ask = Ask(
        k=body.k,
        exclude=excluded,
        continuation=True,
        playlist_name=body.name,
        playlist_tracks=tuple(body.tracks),
    )
    recs = state.answer(ask)
    if recs.fallback_reason is not None:
        service.metrics.fell_back(recs.fallback_reason, arm.name, serving.name)
    service.metrics.answered(arm.name, state.bundle, recs.strategy, None, recs.items, serving.name)
    artists = [state.artist(i.row) for i in recs.items]
    return Response(continuation_json(recs, artists), media_type="application/json")


@router.get("/playlists/{pid}", responses=_ERRORS)
def playlist(
    pid: Annotated[
        str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="A training playlist.")
    ],
    service: ServiceDep,
) -> PlaylistPublic:
    """A playlist the tracks model was trained on: name, followers, tracks in order (named)."""
    found = _tracks(service).model.playlist(pid)
    return PlaylistPublic(
        pid=found.pid,
        name=found.name,
        num_followers=found.num_followers,
        tracks=[
            PlaylistTrackPublic(item_id=t.item_id, name=t.name, artist=t.artist)
            for t in found.tracks
        ],
    )


@router.get("/tracks/search", responses=_ERRORS)
def search_tracks(
    service: ServiceDep,
    q: Annotated[
        str, Query(max_length=100, description="Part of a track or artist name; empty: popular.")
    ] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_TRACK_SEARCH)] = 20,
) -> TrackSearchPublic:
    """Tracks whose name or artist contains ``q`` (any case): prefix matches first, then the
    tracks on most training playlists. Without ``q``, the most popular tracks."""
    state = _tracks(service).model
    bundle, _ = state.require()
    rows = search_rows(bundle, q, attribute="artist")[:limit].tolist()
    return TrackSearchPublic(
        query=q,
        items=[
            TrackPublic(
                item_id=str(bundle.items.ids[r]),
                name=str(bundle.item_names[r]),
                artist=state.artist(r),
                playlists=int(bundle.popularity[r]),
            )
            for r in rows
        ],
    )
