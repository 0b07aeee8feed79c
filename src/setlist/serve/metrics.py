"""Prometheus metrics of the service, in a registry of its own per app (tests build many apps).

Labels use the route *template* (``/v1/users/{user_id}/recommendations``), never the raw path,
so that ids do not blow up the number of series; unmatched paths share one label. Every series
carries the A/B ``arm`` that answered (``none`` for requests no arm answers: health, metrics).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from setlist.serve.state import ModelInfo

UNMATCHED = "<unmatched>"
NO_ARM = "none"
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """The service's counters, histogram and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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
        self.fallbacks = Counter(
            "setlist_recommendation_fallbacks",
            "Recommendations answered by popularity instead of the model, by reason.",
            ["reason", "arm"],
            registry=r,
        )
        self.model_info = Gauge(
            "setlist_model_info",
            "The loaded model (1 for the version served).",
            ["version", "model_type", "arm"],
            registry=r,
        )
        self.model_loaded = Gauge(
            "setlist_model_loaded", "1 when a model is loaded, else 0.", ["arm"], registry=r
        )
        self.swaps = Counter(
            "setlist_model_swaps",
            "Hot-swap outcomes per arm: swapped, or refused (a broken or failing version).",
            ["arm", "outcome"],
            registry=r,
        )

    def set_model(self, info: ModelInfo | None, arm: str = "champion") -> None:
        self.set_arm_model(arm, info)

    def set_arm_model(self, arm: str, info: ModelInfo | None) -> None:
        for labels in list(self.model_info._metrics):  # drop this arm's previous version
            if labels[2] == arm:
                self.model_info.remove(*labels)
        if info is not None:
            self.model_info.labels(info.version, info.model_type, arm).set(1)
        self.model_loaded.labels(arm).set(0 if info is None else 1)

    def observe(
        self, route: str, method: str, status: int, seconds: float, arm: str = NO_ARM
    ) -> None:
        method = method if method in _METHODS else "OTHER"
        self.requests.labels(route, method, str(status), arm).inc()
        self.latency.labels(route, arm).observe(seconds)

    def error(self, scope: Scope, code: str) -> None:
        self.errors.labels(route_template(scope), code, scope_arm(scope)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def scope_arm(scope: Scope) -> str:
    """The arm a route recorded on ``request.state.arm``, else ``none``."""
    state = scope.get("state")
    arm = state.get("arm") if isinstance(state, dict) else None
    return str(arm) if arm else NO_ARM


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

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.observe(
                route_template(scope), scope["method"], status, elapsed, scope_arm(scope)
            )
