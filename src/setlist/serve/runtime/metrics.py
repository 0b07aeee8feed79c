"""Prometheus metrics of the service, in a registry of its own per app (tests build many apps).

Labels use the route *template* (``/v1/users/{user_id}/recommendations``), never the raw path,
so that ids do not blow up the number of series; unmatched paths share one label. Every series
carries the A/B ``arm`` that answered (``none`` for requests no arm answers: health, metrics);
the series of models and answers also carry their ``catalogue`` (artists, tracks, ...): each
catalogue has arms of its own, which may share names with another catalogue's.
Label values that come from clients (an event's ``arm``) are mapped onto the known arms first.

Several workers (``setlist serve --workers N``) share one scrape: ``PROMETHEUS_MULTIPROC_DIR``
is set before the workers import prometheus_client, each worker writes its values to files
there, and ``/metrics`` adds them up with ``MultiProcessCollector``. Each gauge names how the
workers' values combine (``multiprocess_mode``); the memory gauges are read at scrape time and
cover every worker. See docs/monitoring.md for every metric and the queries built on them.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from setlist.catalogue import DEFAULT_CATALOGUE
from setlist.serve.runtime.coverage import CoverageTracker
from setlist.serve.runtime.resources import MemoryCollector

if TYPE_CHECKING:
    from setlist.bundle import ModelBundle
    from setlist.serve.answer.state import ModelInfo, ScoredItem

UNMATCHED = "<unmatched>"
NO_ARM = "none"
OTHER_ARM = "other"  # an arm name a client sent that this service does not serve
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SHARE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
STRATEGIES = ("personalized", "personalized_online", "onboarding", "mood", "popular_fallback")
FALLBACK_REASONS = ("unknown_user", "no_positive_history", "model_error", "popular_first")
SWAP_OUTCOMES = ("swapped", "refused")


@dataclass
class _ArmSeries:
    current: Gauge
    diversity: Histogram
    answers: dict[str, Counter] = field(default_factory=dict)
    distinct: int = -1
    previous: int = -1


def multiprocess_mode() -> bool:
    """Whether prometheus_client writes values to ``PROMETHEUS_MULTIPROC_DIR`` files."""
    return values.ValueClass is not values.MutexValue


class ServiceMetrics:
    """The service's counters, histograms and gauges; :meth:`render` is the scrape."""

    def __init__(self, coverage_period_s: float = 3600.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_mode()
        self.memory = MemoryCollector(self.multiprocess)
        self.registry.register(self.memory)
        if not self.multiprocess:
            ProcessCollector(registry=self.registry)
        else:
            _forget_dead_workers()
        self.coverage = CoverageTracker(coverage_period_s)
        self.arm_names: frozenset[str] = frozenset()
        self._refreshers: list[Callable[[], None]] = []
        self._loaded: dict[tuple[str, str], bool] = {}
        self._arm_series: dict[tuple[str, str], _ArmSeries] = {}
        self._lock = threading.Lock()
        self._http(self.registry)
        self._model(self.registry)
        self._answers(self.registry)
        self._events(self.registry)

    def _http(self, r: CollectorRegistry) -> None:
        self.requests = Counter(
            "setlist_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status", "arm"],
            registry=r,
        )
        self.latency = Histogram(
            "setlist_http_request_duration_seconds",
            "Time to answer, by route template.",
            ["route", "arm"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "setlist_http_errors",
            "Error responses by route template and error code.",
            ["route", "code", "arm"],
            registry=r,
        )
        # The API's HorizontalPodAutoscaler scales on this (deploy/k8s/base/hpa.yaml), summed over
        # the pod's workers.
        self.in_flight = Gauge(
            "setlist_http_requests_in_flight",
            "Requests being answered now (every route).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ready = Gauge(
            "setlist_ready",
            "1 when /ready answers 200 (some arm has a model loaded), else 0.",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.readiness_probes = Counter(
            "setlist_readiness_probes",
            "Calls of /ready by outcome (ready, not_ready).",
            ["outcome"],
            registry=r,
        )
        self.readiness_failures = Gauge(
            "setlist_readiness_consecutive_failures",
            "Calls of /ready answered 503 since the last 200.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.ready.set(0)
        self.readiness_failures.set(0)
        for outcome in ("ready", "not_ready"):
            self.readiness_probes.labels(outcome)

    def _model(self, r: CollectorRegistry) -> None:
        self.model_info = Gauge(
            "setlist_model_info",
            "The loaded model (1 for the version served).",
            ["version", "model_type", "arm", "catalogue"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_loaded = Gauge(
            "setlist_model_loaded",
            "1 when a model is loaded, else 0.",
            ["arm", "catalogue"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.swaps = Counter(
            "setlist_model_swaps",
            "Hot-swap outcomes per arm: swapped, or refused (a broken or failing version).",
            ["arm", "outcome", "catalogue"],
            registry=r,
        )
        self.index_recall = Gauge(
            "setlist_index_recall_at_10",
            "Recall@10 of the served vector index against exact search, measured at build.",
            ["arm", "kind", "catalogue"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.catalogue_items = Gauge(
            "setlist_catalogue_items",
            "Items in the served model's catalogue.",
            ["arm", "catalogue"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def _answers(self, r: CollectorRegistry) -> None:
        self.fallbacks = Counter(
            "setlist_recommendation_fallbacks",
            "Recommendations answered by popularity instead of the model, by reason.",
            ["reason", "arm", "catalogue"],
            registry=r,
        )
        self.answers = Counter(
            "setlist_recommendations",
            "Answers by strategy (personalized, personalized_online, onboarding, mood, "
            "popular_fallback): the cold-start share is all but the first two.",
            ["arm", "strategy", "catalogue"],
            registry=r,
        )
        self.moods = Counter(
            "setlist_recommendation_moods",
            "Answers to a ?mood= request, by mood.",
            ["arm", "mood", "catalogue"],
            registry=r,
        )
        self.distinct_items = Gauge(
            "setlist_recommendation_distinct_items",
            "Distinct items shown in the current coverage period, and in the previous one.",
            ["arm", "period", "catalogue"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.diversity = Histogram(
            "setlist_recommendation_tag_diversity",
            "Per answer: distinct primary tags / tagged items shown (1: every item a new tag).",
            ["arm", "catalogue"],
            buckets=_SHARE_BUCKETS,
            registry=r,
        )

    def _events(self, r: CollectorRegistry) -> None:
        self.events_ingested = Counter(
            "setlist_events_ingested",
            "Events accepted by POST /v1/events, by type and the arm that served the item "
            "(none: not from a recommendation; other: an arm this service does not serve).",
            ["type", "arm"],
            registry=r,
        )
        self.events_received = Counter(
            "setlist_events_received", "Events accepted by POST /v1/events.", registry=r
        )
        self.events_stored = Counter(
            "setlist_events_stored", "Events newly committed (not resends).", registry=r
        )
        self.publish_failures = Counter(
            "setlist_events_publish_failures",
            "Batches committed but not published to the bus.",
            registry=r,
        )
        self.online_applied = Counter(
            "setlist_online_events_applied", "Events folded into the online history.", registry=r
        )
        self.online_failures = Counter(
            "setlist_online_updater_failures",
            "Errors of the online updater (bus unreachable and others).",
            registry=r,
        )
        self.online_running = Gauge(
            "setlist_online_updater_running",
            "1 while the online updater runs (the lowest over the workers).",
            registry=r,
            multiprocess_mode="livemin",
        )

    # ----------------------------------------------------------------- model and readiness

    def set_model(self, info: ModelInfo | None, arm: str = "champion") -> None:
        self.set_arm_model(arm, info)

    def set_arm_model(
        self, arm: str, info: ModelInfo | None, catalogue: str = DEFAULT_CATALOGUE
    ) -> None:
        for labels in list(self.model_info._metrics):  # drop this arm's previous version
            if labels[2:] == (arm, catalogue):
                # Zero first: with several workers the value lives on in the worker's file.
                self.model_info.labels(*labels).set(0)
                self.model_info.remove(*labels)
        if info is not None:
            self.model_info.labels(info.version, info.model_type, arm, catalogue).set(1)
            self._set_index(arm, info, catalogue)
        self.model_loaded.labels(arm, catalogue).set(0 if info is None else 1)
        for outcome in SWAP_OUTCOMES:  # zero series exist from the start: rate() needs them
            self.swaps.labels(arm, outcome, catalogue)
        for reason in FALLBACK_REASONS:
            self.fallbacks.labels(reason, arm, catalogue)
        for strategy in STRATEGIES:
            self.answers.labels(arm, strategy, catalogue)
        with self._lock:
            self._loaded[catalogue, arm] = info is not None
            self.ready.set(1 if any(self._loaded.values()) else 0)

    def _set_index(self, arm: str, info: ModelInfo, catalogue: str) -> None:
        index = info.index or {}
        # No index: exact scoring over every item (dense models), recall 1 by construction.
        kind = str(index.get("kind") or "exact")
        recall = index.get("recall_at_10")
        for labels in list(self.index_recall._metrics):
            if (labels[0], labels[2]) == (arm, catalogue):
                # With workers the old value lives on in the file: at 1 it cannot lower the min.
                self.index_recall.labels(*labels).set(1.0)
                self.index_recall.remove(*labels)
        self.index_recall.labels(arm, kind, catalogue).set(1.0 if recall is None else float(recall))

    def set_arms(self, names: Sequence[str]) -> None:
        """The arms this service serves: the only ``arm`` label values taken from clients."""
        self.arm_names = frozenset(names)

    def readiness(self, ready: bool) -> None:
        """One call of /ready: counts in a row the 503s the orchestrator saw."""
        self.readiness_probes.labels("ready" if ready else "not_ready").inc()
        if ready:
            self.readiness_failures.set(0)
        else:
            self.readiness_failures.inc()

    # ----------------------------------------------------------------- answers

    def answered(
        self,
        arm: str,
        bundle: ModelBundle | None,
        strategy: str,
        mood: str | None,
        items: Sequence[ScoredItem],
        catalogue: str = DEFAULT_CATALOGUE,
    ) -> None:
        """One answer shown: its strategy, mood, coverage and diversity (O(k))."""
        series = self._arm_series.get((catalogue, arm)) or self._series_of(arm, catalogue)
        answers = series.answers.get(strategy)
        if answers is None:
            answers = series.answers[strategy] = self.answers.labels(arm, strategy, catalogue)
        answers.inc()
        if mood is not None:
            self.moods.labels(arm, mood, catalogue).inc()
        if bundle is None:
            return
        key = arm if catalogue == DEFAULT_CATALOGUE else f"{catalogue}/{arm}"
        seen = self.coverage.observe(key, bundle, (i.row for i in items))
        if seen.new_catalogue:
            self.catalogue_items.labels(arm, catalogue).set(seen.catalogue)
        if seen.distinct != series.distinct:  # a gauge write is a file write with workers
            series.distinct = seen.distinct
            series.current.set(seen.distinct)
        if seen.previous is not None and seen.previous != series.previous:
            series.previous = seen.previous
            self.distinct_items.labels(arm, "previous", catalogue).set(seen.previous)
        if seen.diversity is not None:
            series.diversity.observe(seen.diversity)

    def fell_back(self, reason: str, arm: str, catalogue: str = DEFAULT_CATALOGUE) -> None:
        """One answer by popularity instead of the model, and why."""
        self.fallbacks.labels(reason, arm, catalogue).inc()

    def _series_of(self, arm: str, catalogue: str) -> _ArmSeries:
        """The labelled children of one arm, looked up once (``labels()`` costs a lock)."""
        with self._lock:
            series = self._arm_series.get((catalogue, arm))
            if series is None:
                current = self.distinct_items.labels(arm, "current", catalogue)
                series = _ArmSeries(current, self.diversity.labels(arm, catalogue))
                self._arm_series[catalogue, arm] = series
            return series

    def event_arm(self, arm: str | None) -> str:
        if not arm:
            return NO_ARM
        return arm if arm in self.arm_names else OTHER_ARM

    # ----------------------------------------------------------------- HTTP and scrape

    def observe(
        self, route: str, method: str, status: int, seconds: float, arm: str = NO_ARM
    ) -> None:
        method = method if method in _METHODS else "OTHER"
        self.requests.labels(route, method, str(status), arm).inc()
        self.latency.labels(route, arm).observe(seconds)

    def error(self, scope: Scope, code: str) -> None:
        label_route(scope)  # a request refused before routing counts under the route it aimed at
        self.errors.labels(route_template(scope), code, scope_arm(scope)).inc()

    def on_render(self, refresh: Callable[[], None]) -> None:
        """Run ``refresh`` before each scrape (values read from elsewhere, synced as counters)."""
        self._refreshers.append(refresh)

    def render(self) -> bytes:
        for refresh in list(self._refreshers):
            refresh()
        if not self.multiprocess:
            return generate_latest(self.registry)
        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape)  # type: ignore[no-untyped-call]
        scrape.register(self.memory)
        return generate_latest(scrape)


def _forget_dead_workers() -> None:
    """Drop the live gauges of workers that died (the supervisor restarts them, new pids)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = name.rsplit("_", 1)[-1].removesuffix(".db")
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), path)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def scope_arm(scope: Scope) -> str:
    """The arm a route recorded on ``request.state.arm``, else ``none``."""
    state = scope.get("state")
    arm = state.get("arm") if isinstance(state, dict) else None
    return str(arm) if arm else NO_ARM


def label_route(scope: Scope) -> None:
    """Set ``scope["route"]`` to the app's route the path matches, when routing has not run.

    Refusals answered before the router (in-flight 503, body 413, keys 401/403, rate 429) would
    otherwise be counted under ``<unmatched>``. Only on errors: it tries every route in turn.
    """
    if "route" in scope:
        return
    from starlette.routing import BaseRoute, Match

    def leaves(routes: Iterable[Any]) -> Iterator[BaseRoute]:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI's included routers
            if inner is not None:
                yield from leaves(inner.routes)
            elif isinstance(route, BaseRoute):
                yield route

    for route in leaves(getattr(scope.get("app"), "routes", ())):
        if route.matches(scope)[0] == Match.FULL:
            scope["route"] = route
            return


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else UNMATCHED


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request (500 when one raises)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        self.metrics.in_flight.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            self.metrics.observe(
                route_template(scope), scope["method"], status, elapsed, scope_arm(scope)
            )
