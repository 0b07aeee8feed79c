"""Feedback events: one event or a batch, acknowledged only once durably stored.

The body is read and parsed by hand, not by FastAPI, so that an oversized body is refused
before it is read whole and every refusal names its field (``events.3.ts``); the OpenAPI
document still describes the three accepted shapes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from setlist.errors import TooLargeError
from setlist.events.schema import MAX_BATCH, MAX_BODY_BYTES, Event, Parsed, parse_body
from setlist.events.service import EventService, IngestResult
from setlist.serve.api.deps import ServiceDep
from setlist.serve.api.errors import error_response
from setlist.serve.api.schemas import ErrorPublic
from setlist.serve.runtime.feedback import Feedback

router = APIRouter(prefix="/v1", tags=["events"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "The body is not JSON."},
    413: {"model": ErrorPublic, "description": f"Body over 1 MiB or over {MAX_BATCH} events."},
    422: {"model": ErrorPublic, "description": "An event breaks the schema (field named)."},
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
    result = await run_in_threadpool(_accept, feedback, events, parsed)
    return EventsAcceptedPublic(
        accepted=result.received, stored=result.stored, duplicates=result.duplicates
    )


def _accept(feedback: Feedback, events: EventService, parsed: Parsed) -> IngestResult:
    result = events.ingest(parsed.events)
    feedback.accepted(parsed.events, result)
    return result


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
