"""Wiring of the events layer into the app: opened in the lifespan, closed at shutdown.

``start`` opens the store, the bus and the online updater (writing into ``app.state.online``)
in a worker thread, puts the exploration policy on ``app.state.explore``, and registers the
events counters on the app's metrics registry. Nothing here raises: without a store the
service still starts, and ``POST /v1/events`` answers 503 with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from setlist.config import Settings
from setlist.events.service import EventService
from setlist.serve.explore import ExplorationPolicy
from setlist.serve.metrics import ServiceMetrics


async def start(app: FastAPI, settings: Settings) -> None:
    service = await run_in_threadpool(EventService.open, settings.events(), app.state.online)
    app.state.events = service
    metrics = getattr(app.state, "metrics", None)
    if isinstance(metrics, ServiceMetrics):
        # A lifespan may run again on the same app (test clients, schemathesis): replace the
        # previous run's collector instead of registering a duplicate.
        previous = getattr(app.state, "events_collector", None)
        if previous is not None:
            metrics.registry.unregister(previous)
        app.state.events_collector = EventsCollector(service)
        metrics.registry.register(app.state.events_collector)


async def stop(app: FastAPI) -> None:
    service = getattr(app.state, "events", None)
    if isinstance(service, EventService):
        await run_in_threadpool(service.close)


def install(app: FastAPI, settings: Settings) -> None:
    """Before start-up: the exploration policy (no I/O) and a placeholder events service."""
    app.state.explore = ExplorationPolicy(settings.explore())
    app.state.events = EventService(settings.events(), problem="the service is still starting")


class EventsCollector(Collector):
    """Counters read from the service at scrape time (no work on the ingest path)."""

    def __init__(self, service: EventService) -> None:
        self.service = service

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s = self.service
        yield _counter("setlist_events_received", "Events accepted by POST /v1/events.", s.received)
        yield _counter("setlist_events_stored", "Events newly committed (not resends).", s.stored)
        yield _counter(
            "setlist_events_publish_failures",
            "Batches committed but not published to the bus.",
            s.publish_failures,
        )
        updater = s.updater
        yield _counter(
            "setlist_online_events_applied",
            "Events folded into the online history.",
            updater.applied if updater else 0,
        )
        yield _counter(
            "setlist_online_updater_failures",
            "Errors of the online updater (bus unreachable and others).",
            updater.failures if updater else 0,
        )
        running = GaugeMetricFamily(
            "setlist_online_updater_running", "1 while the online updater runs."
        )
        running.add_metric([], 1.0 if updater and updater.running else 0.0)
        yield running


def _counter(name: str, doc: str, value: int) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc)
    family.add_metric([], float(value))
    return family
