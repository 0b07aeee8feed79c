"""Request body size limit for the recommendation routes (413 with the JSON error shape).

Runs before the body is read: a declared ``Content-Length`` over the limit is refused at once,
and a chunked body is counted as it arrives and cut off when it passes the limit.
"""

from __future__ import annotations

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
        body = json.dumps(
            {
                "error": {
                    "code": "too_large",
                    "message": f"request body over {self.max_bytes} bytes",
                    "field": "body",
                }
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
