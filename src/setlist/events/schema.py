"""The feedback event: what a client may send, what the server adds, and how bodies are parsed.

A client sends :class:`Event` objects (one, or a batch of up to :data:`MAX_BATCH`). The server
adds ``seq`` (its order of arrival) and ``received_at``; a client that sends either, or any other
unknown field, is refused. Every refusal is a :class:`setlist.errors.ValidationError` naming the
field, as ``ts`` for a single event or ``events.3.ts`` for the fourth event of a batch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)
from pydantic import ValidationError as PydanticValidationError

from setlist.errors import MalformedError, TooLargeError, ValidationError

EventType = Literal[
    "listen",
    "skip",
    "like",
    "dislike",
    "playlist_add",
    "impression",
    "playlist_follow",
    "playlist_play",
    "playlist_skip",
    "playlist_impression",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
#: Feedback on (or the showing of) a whole organic playlist: these carry ``playlist_id``, and no
#: other type does. ``playlist_impression``: the playlist was shown at ``position``.
PLAYLIST_EVENT_TYPES: tuple[str, ...] = (
    "playlist_follow",
    "playlist_play",
    "playlist_skip",
    "playlist_impression",
)
SERVER_FIELDS = frozenset({"seq", "received_at"})
MAX_BATCH = 1000
MAX_BODY_BYTES = 1 << 20
MAX_EVENT_ID = 128
MAX_ID = 256
MAX_LABEL = 128
DEFAULT_MAX_FUTURE_S = 300.0
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def storable_text(value: str) -> str:
    """``value`` unless a store or a JSON answer cannot hold it: a NUL or a lone surrogate.

    Any other character is fine in an id (newlines included). PostgreSQL refuses NUL in text
    and UTF-8 has no lone surrogates (``"\\ud800"`` decodes from JSON but cannot be written
    back): both are refused at the door, naming the field, rather than failing later.
    """
    if "\x00" in value:
        raise ValueError("holds a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate (not valid Unicode)") from None
    return value


StorableText = AfterValidator(storable_text)


def json_integer(value: Any) -> Any:
    """A JSON integer: an int, or a float with no fraction (JSON Schema counts ``2.0`` as the
    integer 2, and clients that write every number as a double send it so); never a boolean
    (``true`` is not 1) or a string."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ValueError("must be a whole number")
    if not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


JsonInt = Annotated[int, BeforeValidator(json_integer)]
EventId = Annotated[str, Field(min_length=1, max_length=MAX_EVENT_ID), StorableText]
ExternalId = Annotated[str, Field(min_length=1, max_length=MAX_ID), StorableText]
Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL), StorableText]


class Event(BaseModel):
    """One thing a listener did (or was shown), as a client reports it."""

    # The schema states the playlist_id rule too (JSON Schema's if/then/else), so a client
    # generated from it, or schemathesis, knows it as the server does.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        str_strip_whitespace=False,
        json_schema_extra={
            "if": {
                "properties": {"type": {"enum": list(PLAYLIST_EVENT_TYPES)}},
                "required": ["type"],
            },
            "then": {
                "required": ["playlist_id"],
                "properties": {"playlist_id": {"type": "string"}},
            },
            "else": {"not": {"required": ["playlist_id"]}},
        },
    )

    event_id: EventId = Field(description="Client-chosen id; a resent id is stored once.")
    user_id: ExternalId
    item_id: ExternalId
    type: EventType
    ts: datetime = Field(
        description="When it happened (ISO 8601 or epoch seconds; UTC if naive): from "
        "2000-01-01 to a few minutes past the server's clock (the max_future_s setting).",
        json_schema_extra={"x-minimum": "2000-01-01T00:00:00Z", "x-maximum": "server time + 300 s"},
    )
    # Bounds before the validator, so the schema states them as minimum/maximum.
    play_ms: Annotated[int, Ge(0), Le(86_400_000), BeforeValidator(json_integer)] | None = None
    position: Annotated[int, Ge(0), Le(10_000), BeforeValidator(json_integer)] | None = None
    arm: Label | None = Field(default=None, description="A/B arm or policy that served the item.")
    model_version: Label | None = None
    propensity: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Probability the item (or, on playlist events, the playlist) was shown: "
        "the slate's propensity.",
    )
    playlist_id: ExternalId | None = Field(
        default=None,
        validate_default=True,
        description="The playlist a playlist_follow, playlist_play, playlist_skip or "
        "playlist_impression (the playlist was shown at position) is about: required there, "
        "refused on other types; item_id is then the track it concerns, or the playlist id.",
    )

    @field_validator("playlist_id")
    @classmethod
    def _playlist_events_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind is None:
            return value  # the type itself was refused: that is the error to report
        if kind in PLAYLIST_EVENT_TYPES and value is None:
            raise ValueError(f"is required on a {kind} event")
        if kind not in PLAYLIST_EVENT_TYPES and value is not None:
            raise ValueError(f"belongs only on playlist events, not on a {kind} event")
        return value

    @field_validator("ts")
    @classmethod
    def _in_range(cls, value: datetime, info: ValidationInfo) -> datetime:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        context = info.context if isinstance(info.context, dict) else {}
        ahead = float(context.get("max_future_s", DEFAULT_MAX_FUTURE_S))
        now = context.get("now") or datetime.now(UTC)
        if math.isfinite(ahead) and value > now + timedelta(seconds=ahead):
            raise ValueError(f"is more than {ahead:g} s ahead of the server clock ({now:%FT%TZ})")
        if value < EARLIEST:
            raise ValueError(f"is before {EARLIEST:%Y-%m-%d}")
        return value


class StoredEvent(Event):
    """An event as the store holds it: with the server's sequence number and arrival time."""

    seq: int
    received_at: datetime


_BATCH = TypeAdapter(list[Event])


@dataclass(frozen=True)
class Parsed:
    """The events of one request body and whether it was a batch (for error field names)."""

    events: list[Event]
    batch: bool


def parse_body(
    body: bytes, *, max_future_s: float = DEFAULT_MAX_FUTURE_S, now: datetime | None = None
) -> Parsed:
    """Parse a request body: one event object, ``{"events": [...]}`` or a JSON array of events."""
    if len(body) > MAX_BODY_BYTES:
        raise TooLargeError(
            f"body: {len(body):,} bytes is over the limit of {MAX_BODY_BYTES:,}",
            field="body",
            limit=MAX_BODY_BYTES,
        )
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise MalformedError(f"body: not valid JSON at {where}: {exc.msg}", field="body") from None
    except UnicodeDecodeError as exc:
        raise MalformedError(f"body: not UTF-8 JSON: {exc.reason}", field="body") from None
    except RecursionError:
        raise MalformedError("body: JSON nested too deeply", field="body") from None
    return parse_data(data, max_future_s=max_future_s, now=now)


def parse_data(
    data: Any, *, max_future_s: float = DEFAULT_MAX_FUTURE_S, now: datetime | None = None
) -> Parsed:
    """Validate decoded JSON (see :func:`parse_body`)."""
    context = {"max_future_s": max_future_s, "now": now or datetime.now(UTC)}
    if isinstance(data, dict) and "events" in data:
        prefix, items = "events", data["events"]
        if set(data) != {"events"}:
            extra = sorted(set(data) - {"events"})[0]
            raise ValidationError(f"{extra}: unknown field of a batch body", field=extra)
    elif isinstance(data, list):
        prefix, items = "events", data
    elif isinstance(data, dict):
        return Parsed([_validate_one(data, context)], batch=False)
    else:
        raise ValidationError(
            'body: expected an event object, {"events": [...]} or an array', field="body"
        )
    if not isinstance(items, list):
        raise ValidationError("events: expected an array of events", field=prefix)
    if not items:
        raise ValidationError("events: a batch needs at least one event", field=prefix)
    if len(items) > MAX_BATCH:
        raise TooLargeError(
            f"events: {len(items):,} events is over the limit of {MAX_BATCH:,} per request",
            field=prefix,
            limit=MAX_BATCH,
        )
    try:
        return Parsed(_BATCH.validate_python(items, context=context), batch=True)
    except PydanticValidationError as exc:
        raise _refusal(exc, prefix) from None


def _validate_one(data: dict[str, Any], context: dict[str, Any]) -> Event:
    try:
        return Event.model_validate(data, context=context)
    except PydanticValidationError as exc:
        raise _refusal(exc, "") from None


def _refusal(exc: PydanticValidationError, prefix: str) -> ValidationError:
    """The first problem as our error, its field a dotted path (``events.3.ts``)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    field = ".".join([prefix, *loc] if prefix else loc) or "body"
    name = loc[-1] if loc else ""
    if first.get("type") == "extra_forbidden" and name in SERVER_FIELDS:
        message = f"{field}: set by the server; clients may not send it"
    else:
        message = f"{field}: {first.get('msg', 'invalid value')}"
    details: dict[str, Any] = {"field": field}
    value = first.get("input")
    if isinstance(value, float) and not math.isfinite(value):
        details["value"] = repr(value)  # NaN and infinities have no strict JSON form
    elif isinstance(value, str):
        details["value"] = value[:100].encode("utf-8", "backslashreplace").decode("utf-8")
    elif isinstance(value, int | float | bool):
        details["value"] = value
    if len(errors) > 1:
        details["problems"] = len(errors)
    return ValidationError(message, **details)
