"""Limits on what a request may cost: body size (413) and requests in flight per worker (503).

Body size: runs before the body is read; a declared ``Content-Length`` over the limit is refused
at once, and a chunked body is counted as it arrives and cut off when it passes the limit.

In flight: each worker admits at most ``limit`` requests at a time and answers the rest at once
with 503 and ``Retry-After`` (the JSON error shape, code ``overloaded``), so that under overload
excess requests fail fast instead of queueing without bound, and memory stays bounded by the
limit. The recommendation route computes inline on the event loop, so a request that has started
never yields until it is done; an admitted request therefore yields once before its work, which
lets every request that arrived in the same loop turn be counted (admitted or refused) first. The
count is then the requests admitted and not finished, waiting ones included, and the wait of an
admitted request is at most ``limit`` answers long. Health, readiness and metrics are exempt:
an operator must see an overloaded service.
"""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from setlist.serve.metrics import ServiceMetrics


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` on paths starting with ``prefix``."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, prefix: str, metrics: ServiceMetrics | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI lets an HTTPException out of its body reading; ours maps it to 413.
                    raise HTTPException(413, f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, counting, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if self.metrics is not None:
            self.metrics.errors.labels(scope.get("path", ""), "too_large", "none").inc()
        body = _error_body("too_large", f"request body over {self.max_bytes} bytes", "body")
        await _send_json(send, 413, body)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


OVERLOAD_RETRY_AFTER_S = 1
EXEMPT_PATHS = frozenset({"/health", "/ready", "/metrics"})


class InFlightLimitMiddleware:
    """At most ``limit`` requests in flight in this worker; beyond it, 503 at once (0: off)."""

    def __init__(self, app: ASGIApp, limit: int, metrics: ServiceMetrics | None = None) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.in_flight = 0
        self.refused = 0
        self._body = _error_body("overloaded", f"over {limit} requests in flight; retry", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limit <= 0 or scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.refused += 1
            if self.metrics is not None:
                self.metrics.error(scope, "overloaded")
            extra = [(b"retry-after", str(OVERLOAD_RETRY_AFTER_S).encode())]
            await _send_json(send, 503, self._body, extra)
            return
        self.in_flight += 1
        try:
            await asyncio.sleep(0)  # see the module docstring: the others of this turn first
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def _error_body(code: str, message: str, field: str | None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "field": field}}).encode()


async def _send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
