"""Wiring of the events layer into the service: opened in the lifespan, closed at shutdown.

:class:`Feedback` holds the events service: a placeholder until :meth:`Feedback.start` opens
the store, the bus and the online updater (writing into the service's online history) in a
worker thread. Nothing here raises: without a store the service still starts, and
``POST /v1/events`` answers 503 with the reason.

Two things feed the metrics. :class:`EventCounter` counts each accepted event by type and by
the arm that served its item (the event's own ``arm``, else the arm of a recent impression of
the same user and item, else ``none``: organic), so that listen-through and like rate per arm
are ratios in PromQL. :class:`ServiceCounters` copies the events service's running totals into
Prometheus counters by their increase since the last copy, at each ingest and each scrape:
unlike a collector that reports the totals at scrape time, that adds up across workers.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from setlist.config import Settings
from setlist.events.online import HistorySink
from setlist.events.schema import EVENT_TYPES, Event
from setlist.events.service import EventService, IngestResult
from setlist.serve.runtime.metrics import NO_ARM, ServiceMetrics

IMPRESSION_MEMORY = 100_000  # recent (user, item) impressions kept to attribute reactions


class Feedback:
    """The events service of the app and the counters fed from it."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        """Before start-up (no I/O): a placeholder events service, the counters."""
        self.settings = settings
        self.events = EventService(settings.events(), problem="the service is still starting")
        self.counter = EventCounter(metrics)
        self.counters = ServiceCounters(metrics)
        metrics.on_render(lambda: self.counters.sync(self.events))

    async def start(self, online: HistorySink) -> None:
        self.events = await run_in_threadpool(EventService.open, self.settings.events(), online)
        self.counters.sync(self.events)

    async def stop(self) -> None:
        await run_in_threadpool(self.events.close)

    def accepted(self, events: Sequence[Event], result: IngestResult) -> None:
        """Count a stored batch: a batch resent whole (a client retrying after a timeout)
        counts once; the store does not say which events of a partly new batch are resends,
        so such a batch counts whole."""
        if result.stored:
            self.counter.count(events)
        self.counters.sync(self.events)


class EventCounter:
    """Counts accepted events by type and serving arm (O(1) per event)."""

    def __init__(self, metrics: ServiceMetrics, memory: int = IMPRESSION_MEMORY) -> None:
        self.metrics = metrics
        self.memory = memory
        self._shown: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()
        for kind in EVENT_TYPES:  # zero series from the start, so that every ratio has a base
            for arm in (*sorted(metrics.arm_names), NO_ARM):
                metrics.events_ingested.labels(kind, arm)

    def count(self, events: Sequence[Event]) -> None:
        tally: Counter[tuple[str, str]] = Counter()
        with self._lock:
            for event in events:
                tally[event.type, self._arm(event)] += 1
        for (kind, arm), n in tally.items():
            self.metrics.events_ingested.labels(kind, arm).inc(n)

    def _arm(self, event: Event) -> str:
        key = (event.user_id, event.item_id)
        if event.arm:
            arm = self.metrics.event_arm(event.arm)
        else:
            arm = self._shown.get(key, NO_ARM)
        if event.type == "impression" and arm != NO_ARM:
            self._shown[key] = arm
            self._shown.move_to_end(key)
            if len(self._shown) > self.memory:
                self._shown.popitem(last=False)
        return arm


class ServiceCounters:
    """The events service's totals as Prometheus counters (each increase added once)."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self._service: EventService | None = None
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def sync(self, service: EventService) -> None:
        m = self.metrics
        updater = service.updater
        totals = {
            "received": (m.events_received, service.received),
            "stored": (m.events_stored, service.stored),
            "publish_failures": (m.publish_failures, service.publish_failures),
            "applied": (m.online_applied, updater.applied if updater else 0),
            "failures": (m.online_failures, updater.failures if updater else 0),
        }
        with self._lock:
            if service is not self._service:  # a new lifespan: its totals start at zero
                self._service, self._last = service, {}
            for name, (counter, total) in totals.items():
                increase = total - self._last.get(name, 0)
                if increase > 0:
                    counter.inc(increase)
                    self._last[name] = total
        m.online_running.set(1.0 if updater is not None and updater.running else 0.0)
