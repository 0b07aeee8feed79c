"""The event bus interface, shared by every backend (in-process, Redis Streams, Kafka).

Contract (one test suite, ``tests/events/test_bus.py``, runs against every backend):

- :meth:`EventBus.publish` returns once the bus holds the events (for Redis and Kafka: the
  server acknowledged them).
- A *consumer group* sees every event published to the bus; a new group starts at the oldest
  event the bus still retains. Within a group each event goes to one consumer at a time.
- Delivery is at least once: a consumer :meth:`Consumer.ack`-s an event only after processing
  it. Events a consumer received but never acknowledged (it closed, crashed or hung) are
  delivered again: to another consumer of the group once they have been idle for
  ``claim_idle_s`` (in-process, Redis) or after the group rebalances (Kafka, once the dead
  member's session times out), and to a restarted consumer of the same name (Redis).
- Consumers therefore must be idempotent (the online updater skips event ids it has applied).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from setlist.events.schema import Event

_ANY_TIME = {"max_future_s": math.inf}


@dataclass(frozen=True)
class Delivery:
    """One event handed to a consumer, with the backend's handle to acknowledge it."""

    event: Event
    token: Any
    redelivered: bool = False


def encode(event: Event) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def decode(data: bytes | str) -> Event:
    # Validated again (the bus is a boundary), but its time was checked when it was accepted.
    return Event.model_validate_json(data, context=_ANY_TIME)


class Consumer(ABC):
    """A member of a consumer group."""

    group: str
    name: str

    @abstractmethod
    def poll(self, max_events: int = 500, timeout_s: float = 0.1) -> list[Delivery]:
        """Up to ``max_events`` deliveries, waiting at most ``timeout_s`` when none is ready."""

    @abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Mark deliveries processed: they will not be delivered again."""

    @abstractmethod
    def close(self) -> None:
        """Leave the group; unacknowledged deliveries go back to it."""

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus(ABC):
    """Publishes events to every consumer group."""

    url: str

    @abstractmethod
    def publish(self, events: Sequence[Event]) -> None:
        """Hand the events to the bus; returns once it holds them."""

    @abstractmethod
    def consumer(self, group: str, name: str) -> Consumer:
        """A consumer named ``name`` in ``group`` (the group is created if needed)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections (consumers should be closed first)."""
