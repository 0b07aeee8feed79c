"""The events runtime of one process: store, bus and online updater, opened and closed together.

:meth:`EventService.ingest` is what ``POST /v1/events`` calls: commit to the store (durable,
idempotent), then publish to the bus. A publish that fails after the commit does not fail the
request (the events are safe in the store, and reach the model at the next training); it is
counted in ``publish_failures`` and logged. Every accepted event is published, resent ones
included: the consumers skip ids they have seen, and a resend after a crash between commit
and publish still reaches them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from setlist.config import EventsConfig
from setlist.errors import SetlistError, UnavailableError
from setlist.events.bus import EventBus, open_bus
from setlist.events.online import HistorySink, OnlineUpdater
from setlist.events.schema import Event
from setlist.events.store import EventStore, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


class EventService:
    """Store + bus + updater; or, when they could not be opened, the reason (``problem``)."""

    def __init__(
        self,
        config: EventsConfig,
        store: EventStore | None = None,
        bus: EventBus | None = None,
        updater: OnlineUpdater | None = None,
        problem: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        self.updater = updater
        self.problem = problem
        self.received = 0
        self.stored = 0
        self.publish_failures = 0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, config: EventsConfig, history: HistorySink | None) -> EventService:
        """Open everything; never raises (a failure leaves ``problem`` set and ingest refusing)."""
        store = bus = None
        try:
            store = open_store(config.store_url)
            bus = open_bus(config.bus_url)
            updater = None
            if config.online_updates and history is not None:
                updater = OnlineUpdater(bus, history, group=config.consumer_group)
                updater.start()
            return cls(config, store, bus, updater)
        except Exception as exc:  # the service must start without its events layer
            log.exception("events layer not available")
            for part in (bus, store):
                if part is not None:
                    part.close()
            return cls(config, problem=str(exc))

    def require(self) -> EventStore:
        if self.store is None:
            raise UnavailableError(f"the event store is not available: {self.problem}")
        return self.store

    def ingest(self, events: Sequence[Event]) -> IngestResult:
        """Commit, then publish; returns once the events are durable."""
        new = self.require().append(events)
        with self._lock:
            self.received += len(events)
            self.stored += len(new)
        if self.bus is not None and events:
            try:
                self.bus.publish(events)
            except SetlistError as exc:
                with self._lock:
                    self.publish_failures += 1
                log.error("events stored but not published: %s", exc.message)
        return IngestResult(received=len(events), stored=len(new))

    def close(self) -> None:
        if self.updater is not None:
            self.updater.stop()
        if self.bus is not None:
            self.bus.close()
        if self.store is not None:
            self.store.close()
