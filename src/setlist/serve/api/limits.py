"""Limits on what a request may cost: body size (413) and requests in flight per worker (503).

Body size: runs before the body is read; a declared ``Content-Length`` over the limit is refused
at once, and a chunked body is counted as it arrives and cut off when it passes the limit.

In flight: each worker admits at most ``limit`` requests at a time and answers the rest at once
with 503 and ``Retry-After`` (the JSON error shape, code ``overloaded``), so that under overload
excess requests fail fast instead of queueing without bound, and memory stays bounded by the
limit. Health, readiness and metrics are exempt: an operator must see an overloaded service.

Turns: the recommendation route computes inline on the event loop (a few hundred microseconds,
cheaper than a hop to a thread). Left alone, every request that became ready in one loop turn
would compute in that turn, back to back, and the loop would read no socket until all were done:
refusals would wait behind the whole batch (48 ms at the median at three times saturation). With
:class:`Turns` the inline work of one loop turn stops after a budget (2 ms): the rest waits, in
arrival order, and between two batches the loop reads its sockets and refuses what is over the
limit at once. An admitted request waits for at most ``limit`` pieces.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from setlist.serve.runtime.metrics import ServiceMetrics


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` on paths starting with one of ``prefixes``."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        prefixes: tuple[str, ...],
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.prefixes = prefixes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefixes):
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
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class Turns:
    """Inline work on the event loop in batches of about ``budget_s`` per loop turn, in order.

    ``await take()`` then ``give()`` (in a ``finally``) around each piece. While nobody waits, a
    piece starts at once if the current loop turn's batch has used less than ``budget_s``;
    otherwise it waits, first come first served. Waiters are let through in batches sized to
    the budget by the mean piece time: the next batch when the last of the previous one is
    done, or in the next loop turn. Between two batches the loop reads its sockets, so the
    in-flight limit counts (and refuses) new requests after at most a batch. ``budget_s`` 0
    runs one piece per loop turn (each loop turn costs an event-loop iteration, about a tenth
    of a recommendation: the budget keeps that off the throughput).
    """

    def __init__(self, budget_s: float = 0.002) -> None:
        self.budget_s = budget_s
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._open = False  # the current loop turn's batch takes pieces at once
        self._opened_at = 0.0
        self._woken = 0  # waiters let through and not done
        self._piece_s = 0.0005  # moving mean of a piece's duration
        self._started_at = 0.0
        self.waited = 0  # pieces that had to wait

    async def take(self) -> None:
        if not self._waiters and not self._woken:
            now = time.perf_counter()
            if not self._open:
                self._open, self._opened_at = True, now
                asyncio.get_running_loop().call_soon(self._close)
                self._started_at = now
                return
            if now - self._opened_at < self.budget_s:
                self._started_at = now
                return
        self.waited += 1
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._done_woken()  # let through, then cancelled before its piece
            raise
        self._started_at = time.perf_counter()

    def give(self) -> None:
        self._piece_s += 0.1 * (time.perf_counter() - self._started_at - self._piece_s)
        if self._woken:
            self._done_woken()

    def _done_woken(self) -> None:
        self._woken -= 1
        if not self._woken:
            self._wake()

    def _close(self) -> None:  # a callback of the loop turn after the batch opened
        self._open = False
        if not self._woken:
            self._wake()

    def _wake(self) -> None:
        n = max(1, int(self.budget_s / max(self._piece_s, 1e-6)))
        while self._waiters and n:
            turn = self._waiters.popleft()
            if not turn.done():  # a cancelled waiter is skipped
                turn.set_result(None)
                self._woken += 1
                n -= 1


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
