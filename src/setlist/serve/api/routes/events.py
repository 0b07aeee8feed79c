"""Feedback events: one event or a batch, acknowledged only once durably stored.

The body is read and parsed by hand, not by FastAPI, so that an oversized body is refused
before it is read whole and every refusal names its field (``events.3.ts``); the OpenAPI
document still describes the three accepted shapes. A batch that breaks the schema is refused
whole. Playlist events (``playlist_follow``, ``playlist_play``, ``playlist_skip``,
``playlist_impression``) must name a playlist of the served playlist catalogue (the ``tracks``
catalogue's playlists, where it is served and loaded): those that do not are refused, the rest
of the batch is stored, and the answer is a 404 naming the first refused event's
``playlist_id`` and value, with the counts of what was accepted.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from setlist.bundle import ModelBundle
from setlist.catalogue import TRACKS_CATALOGUE
from setlist.errors import NotFoundError, TooLargeError
from setlist.events.schema import MAX_BATCH, MAX_BODY_BYTES, Event, Parsed, parse_body
from setlist.events.service import EventService, IngestResult
from setlist.serve.api.deps import ServiceDep
from setlist.serve.api.errors import error_response
from setlist.serve.api.schemas import ErrorPublic
from setlist.serve.api.service import Service
from setlist.serve.runtime.feedback import Feedback

router = APIRouter(prefix="/v1", tags=["events"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "The body is not JSON."},
    413: {"model": ErrorPublic, "description": f"Body over 1 MiB or over {MAX_BATCH} events."},
    422: {
        "model": ErrorPublic,
        "description": "An event breaks the schema (field named; nothing stored).",
    },
    404: {
        "model": ErrorPublic,
        "description": "An event names a playlist the served catalogue lacks (field and value "
        "named; the batch's other events are stored and counted in accepted, stored and "
        "duplicates).",
    },
    503: {"model": ErrorPublic, "description": "The event store is not available."},
}
_EVENT_SCHEMA = Event.model_json_schema()
_ARRAY_SCHEMA = {"type": "array", "items": _EVENT_SCHEMA, "minItems": 1, "maxItems": MAX_BATCH}
_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _EVENT_SCHEMA,
                        {
                            "type": "object",
                            "title": "EventBatch",
                            "properties": {"events": _ARRAY_SCHEMA},
                            "required": ["events"],
                            "additionalProperties": False,
                        },
                        _ARRAY_SCHEMA,
                    ]
                }
            }
        },
    }
}


class EventsAcceptedPublic(BaseModel):
    accepted: int
    stored: int
    duplicates: int


@router.post(
    "/events", responses=_ERRORS, openapi_extra=_BODY_SCHEMA, response_model=EventsAcceptedPublic
)
async def post_events(request: Request, service: ServiceDep) -> EventsAcceptedPublic | Response:
    """Record one event, or a batch of up to 1,000 ({"events": [...]}); 200 once durable.

    A key's rate limit counts events: the request was charged one, the rest of the batch is
    charged once parsed, and a batch over the quota is refused (429) with nothing stored.
    """
    feedback = service.feedback
    events = feedback.events
    events.require()
    body = await _read_body(request, MAX_BODY_BYTES)
    # Parsing a large batch takes milliseconds: off the event loop.
    parsed = await run_in_threadpool(parse_body, body, max_future_s=events.config.max_future_s)
    over = await service.gate.charge(request.scope, len(parsed.events) - 1)
    if over is not None:
        message = f"{len(parsed.events)} events are over this key's rate limit; none stored"
        refusal = {"code": "rate_limited", "message": message, "field": "events"}
        return error_response(request, 429, refusal, {k.decode(): v.decode() for k, v in over})
    refused = await run_in_threadpool(unknown_playlists, service, parsed)
    if refused:
        skip = set(refused)
        kept = [e for i, e in enumerate(parsed.events) if i not in skip]
        partial = None
        if kept:
            partial = await run_in_threadpool(_accept, feedback, events, Parsed(kept, parsed.batch))
        raise _unknown_playlist(parsed, refused, partial)
    result = await run_in_threadpool(_accept, feedback, events, parsed)
    return EventsAcceptedPublic(
        accepted=result.received, stored=result.stored, duplicates=result.duplicates
    )


def _accept(feedback: Feedback, events: EventService, parsed: Parsed) -> IngestResult:
    result = events.ingest(parsed.events)
    feedback.accepted(parsed.events, result)
    return result


def unknown_playlists(service: Service, parsed: Parsed) -> list[int]:
    """Positions of the events naming a playlist the served playlist catalogue lacks (none
    where no playlist catalogue is served and loaded: there is nothing to check against)."""
    named = [i for i, e in enumerate(parsed.events) if e.playlist_id is not None]
    if not named:
        return []
    serving = service.catalogues.get(TRACKS_CATALOGUE)
    bundle = serving.arms.ready_arm().state.bundle if serving is not None else None
    if bundle is None or bundle.playlists is None:
        return []
    known = _playlist_ids(bundle)
    return [i for i in named if parsed.events[i].playlist_id not in known]


_known: dict[int, tuple[ModelBundle, frozenset[str]]] = {}
_known_lock = threading.Lock()


def _playlist_ids(bundle: ModelBundle) -> frozenset[str]:
    """The bundle's playlist ids, computed once per bundle (a hot-swap brings a new one)."""
    with _known_lock:
        hit = _known.get(id(bundle))
        if hit is not None and hit[0] is bundle:
            return hit[1]
    assert bundle.playlists is not None
    ids = frozenset(bundle.playlists.get_column("pid").to_list())
    with _known_lock:
        _known.clear()  # one served playlist catalogue: keep only the newest bundle's ids
        _known[id(bundle)] = (bundle, ids)
    return ids


def _unknown_playlist(
    parsed: Parsed, refused: list[int], result: IngestResult | None
) -> NotFoundError:
    """A 404 naming the first unknown playlist: the events are valid (the schema allows any id)
    but name a playlist the served catalogue lacks, as an unknown seed or user is a 404."""
    first = refused[0]
    field = f"events.{first}.playlist_id" if parsed.batch else "playlist_id"
    value = parsed.events[first].playlist_id or ""
    kept = len(parsed.events) - len(refused)
    message = (
        f"{field}: unknown playlist {value!r} (not in the served playlist catalogue); "
        f"{len(refused)} event(s) refused, the other {kept} accepted"
    )
    return NotFoundError(
        message,
        field=field,
        value=value[:100],
        refused=len(refused),
        accepted=0 if result is None else result.received,
        stored=0 if result is None else result.stored,
        duplicates=0 if result is None else result.duplicates,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` bytes (never read whole into memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> TooLargeError:
    return TooLargeError(
        f"body: {size:,} bytes or more is over the limit of {limit:,}", field="body", limit=limit
    )
