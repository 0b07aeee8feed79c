"""The event store interface, shared by every backend (SQLite embedded, PostgreSQL production).

Contract (one test suite, ``tests/events/test_store.py``, runs against every backend):

- :meth:`EventStore.append` returns only after the events are durably committed; it returns the
  events that were new. An ``event_id`` already stored (earlier, or twice in the same batch) is
  accepted and ignored: the first copy wins, so a resent event is stored exactly once.
- Every stored event gets ``seq`` (increasing in order of arrival within one writer) and
  ``received_at`` (the server's clock).
- The schema is created and upgraded by Alembic migrations when a store is opened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl

from setlist.events.schema import Event, StoredEvent

TABLE = "setlist_events"
VERSION_TABLE = "setlist_events_version"
# The order of columns in rows read back from every backend.
COLUMNS = (
    "seq",
    "event_id",
    "user_id",
    "item_id",
    "type",
    "ts_us",
    "received_us",
    "play_ms",
    "position",
    "arm",
    "model_version",
    "propensity",
    "playlist_id",
)
INSERT_COLUMNS = COLUMNS[1:]
FRAME_SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "event_id": pl.String(),
    "user_id": pl.String(),
    "item_id": pl.String(),
    "type": pl.String(),
    "ts_us": pl.Int64(),
    "received_us": pl.Int64(),
    "play_ms": pl.Int64(),
    "position": pl.Int64(),
    "arm": pl.String(),
    "model_version": pl.String(),
    "propensity": pl.Float64(),
    "playlist_id": pl.String(),
}
Row = tuple[Any, ...]


def to_us(value: datetime) -> int:
    """Microseconds since the epoch (UTC); the stores keep times as integers, exact and portable."""
    delta = value.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


def unique_by_id(events: Sequence[Event]) -> list[Event]:
    """The events with the first copy of each ``event_id`` kept, in order."""
    seen: set[str] = set()
    out = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            out.append(event)
    return out


def insert_rows(events: Sequence[Event], received: datetime) -> list[Row]:
    """Rows in :data:`INSERT_COLUMNS` order."""
    received_us = to_us(received)
    return [
        (
            e.event_id,
            e.user_id,
            e.item_id,
            e.type,
            to_us(e.ts),
            received_us,
            e.play_ms,
            e.position,
            e.arm,
            e.model_version,
            e.propensity,
            e.playlist_id,
        )
        for e in events
    ]


def stored_event(row: Row) -> StoredEvent:
    """A row in :data:`COLUMNS` order as a :class:`StoredEvent` (already valid: not re-checked)."""
    values = dict(zip(COLUMNS, row, strict=True))
    return StoredEvent.model_construct(
        seq=int(values["seq"]),
        event_id=values["event_id"],
        user_id=values["user_id"],
        item_id=values["item_id"],
        type=values["type"],
        ts=from_us(int(values["ts_us"])),
        received_at=from_us(int(values["received_us"])),
        play_ms=values["play_ms"],
        position=values["position"],
        arm=values["arm"],
        model_version=values["model_version"],
        propensity=values["propensity"],
        playlist_id=values["playlist_id"],
    )


class EventStore(ABC):
    """Durable, idempotent storage of feedback events."""

    url: str

    @abstractmethod
    def append(self, events: Sequence[Event]) -> list[Event]:
        """Commit the events durably; return those not stored before (first copy of each id)."""

    @abstractmethod
    def existing(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these event ids are stored."""

    @abstractmethod
    def count(self) -> int:
        """How many events are stored."""

    @abstractmethod
    def rows(self, after_seq: int, limit: int, types: Sequence[str] | None = None) -> list[Row]:
        """Up to ``limit`` rows with ``seq > after_seq`` in seq order, in :data:`COLUMNS` order."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""

    def scan(
        self, after_seq: int = 0, limit: int = 10_000, types: Sequence[str] | None = None
    ) -> list[StoredEvent]:
        """Stored events with ``seq > after_seq``, in seq order."""
        return [stored_event(r) for r in self.rows(after_seq, limit, types)]

    def iter_rows(
        self, types: Sequence[str] | None = None, chunk: int = 50_000, after_seq: int = 0
    ) -> Iterator[Row]:
        after = after_seq
        while True:
            block = self.rows(after, chunk, types)
            yield from block
            if len(block) < chunk:
                return
            after = int(block[-1][0])

    def frame(self, types: Sequence[str] | None = None) -> pl.DataFrame:
        """All stored events (optionally of some types) as a polars frame (:data:`FRAME_SCHEMA`)."""
        rows = list(self.iter_rows(types))
        return pl.DataFrame(rows, schema=FRAME_SCHEMA, orient="row")

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
