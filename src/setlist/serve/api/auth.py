"""Who may call: API keys with scopes, and rate limits per key and per client address.

One pure ASGI middleware, between the metrics (outermost, so refusals are counted) and the
in-flight limit (so a refused caller never takes a slot). For each request:

1. The scope the path needs (:func:`required_scope`): none for ``/health``, ``/ready`` and the
   API documents; ``read`` for ``/metrics`` when the ``auth_metrics`` setting says so; ``events``
   for ``/v1/events``; ``admin`` under ``/v1/admin/``; ``read`` for everything else (unknown
   paths included: no probing for routes without a key).
2. With keys required (``auth``: ``on``, or ``auto`` and a non-loopback bind address), the key
   from ``X-API-Key`` or ``Authorization: Bearer``: none, malformed, unknown or revoked is 401
   with ``WWW-Authenticate``; a key without the scope is 403 (an admin attempt is audited).
   Lookups are cached ``auth_cache_s`` seconds per worker (a revocation is seen within that),
   unknown prefixes too (bounded), so a flood of made-up keys costs no database round trips.
3. The rate limit (the ``limits`` library, sliding window counter): a key's own quota (set at
   creation, else ``rate_limit_key``) under the key's name; without a key (or on an open path)
   ``rate_limit`` under the client address, unless that is loopback (the operator's machine:
   the keyless laptop demo, ``setlist simulate`` and the app are not limited). Over it: 429
   with ``Retry-After`` and the ``RateLimit-Limit``/``-Remaining``/``-Reset`` headers (on 429
   answers only: a header on every answer would cost a second storage call on the hot path,
   Redis included). ``POST /v1/events`` charges the rest of a batch (events, not requests)
   once parsed (:meth:`Gate.charge`).

The key itself is never logged, echoed in an error, put in a metric label or stored; errors name
the header (``X-API-Key``) and at most the key's name.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from setlist.config import Settings
from setlist.errors import ConfigError
from setlist.events.keys import ApiKey, KeyStore, check_rate, key_prefix
from setlist.serve.runtime.metrics import ServiceMetrics

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health", "/ready", "/openapi.json", "/docs", "/redoc"})
ADMIN_PREFIX = "/v1/admin/"
EVENTS_PATH = "/v1/events"
STATE_KEY = "setlist.key"  # scope["state"] entry: the caller's ApiKey (None when keyless)
STATE_LIMIT = "setlist.limit"  # scope["state"] entry: (item, identifiers) charged
_MAX_NEGATIVE = 10_000
TOUCH_EVERY_S = 60.0
_CHALLENGE = b'Bearer realm="setlist", ApiKey realm="setlist" header="X-API-Key"'


def auth_required(settings: Settings) -> bool:
    """Whether requests need keys: ``auth`` on, or auto and a bind address beyond loopback."""
    if settings.auth != "auto":
        return settings.auth == "on"
    return not bind_is_loopback(settings.host)


def bind_is_loopback(host: str) -> bool:
    """Whether a bind address is loopback only (a host name other than localhost: not sure)."""
    host = host.strip("[]")
    return host == "localhost" or _is_loopback(host)


def required_scope(method: str, path: str, metrics_need_key: bool = False) -> str | None:
    """The scope a request needs (None: open). Works on paths and on OpenAPI templates."""
    if path in OPEN_PATHS or path.startswith("/docs/"):
        return None
    if path == "/metrics":
        return "read" if metrics_need_key else None
    if path.startswith(ADMIN_PREFIX):
        return "admin"
    if path == EVENTS_PATH:
        return "events"
    return "read"


def rate_storage_url(settings: Settings) -> str:
    """Where the counters live: the setting, else memory (one worker) or the bus's Redis."""
    url = settings.rate_limit_storage
    if not url:
        bus = settings.events_bus_url
        shared = bus.startswith(("redis://", "rediss://"))
        # Bound to loopback with keys off, no limit applies (loopback callers are not limited,
        # and nobody else can connect): counters per worker are then as good as shared ones.
        if settings.workers == 1 or (not shared and not _limits_apply(settings)):
            return "async+memory://"
        if not shared:
            raise ConfigError(
                f"{settings.workers} workers need a shared rate-limit storage: set "
                "rate_limit_storage to redis://... (or events_bus_url to Redis)",
                field="rate_limit_storage",
            )
        url = bus.split("?", 1)[0]
    return url if url.startswith("async+") else "async+" + url


def _limits_apply(settings: Settings) -> bool:
    return auth_required(settings) or not bind_is_loopback(settings.host)


@dataclass
class _Cached:
    record: ApiKey | None
    at: float


class Gate:
    """Keys, scopes and rate limits of one worker (see the module's docstring)."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.required = auth_required(settings)
        self.metrics_need_key = settings.auth_metrics
        self.cache_s = settings.auth_cache_s
        self.metrics = metrics
        self._store_url = settings.events().store_url
        self._pepper = (
            settings.auth_pepper.get_secret_value().encode() if settings.auth_pepper else None
        )
        self._keys: KeyStore | None = None
        self._cache: dict[str, _Cached] = {}
        self.address_rate = (
            parse(check_rate(settings.rate_limit, "rate_limit"))
            if (settings.rate_limit.strip())
            else None
        )
        self.key_rate = parse(check_rate(settings.rate_limit_key, "rate_limit_key"))
        self._rates: dict[str, RateLimitItem] = {}
        url = rate_storage_url(settings)
        # redis-py (a dependency already) rather than limits' default async client, coredis.
        options = {"implementation": "redispy"} if "redis" in url.split("://")[0] else {}
        storage = storage_from_string(url, **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)

    # keys

    def keys(self) -> KeyStore:
        """The key store (opened on first use; blocking: call from a worker thread)."""
        if self._keys is None:
            self._keys = KeyStore(self._store_url, self._pepper)
        return self._keys

    def close(self) -> None:
        if self._keys is not None:
            self._keys.close()

    async def identify(self, key: str) -> ApiKey | None:
        """The active key record ``key`` belongs to, or None (unknown, revoked, malformed)."""
        prefix = key_prefix(key)
        if prefix is None:
            return None
        now = time.monotonic()
        cached = self._cache.get(prefix)
        if cached is None or now - cached.at > self.cache_s:
            record = await run_in_threadpool(self._lookup, prefix)
            if len(self._cache) >= _MAX_NEGATIVE:
                self._cache.clear()
            cached = self._cache[prefix] = _Cached(record, now)
        record = cached.record
        if record is None or not record.active or not self.keys().matches(record, key):
            return None
        return record

    def _lookup(self, prefix: str) -> ApiKey | None:
        keys = self.keys()
        record = keys.find(prefix)
        if record is not None and record.active:
            used = record.last_used_at
            if used is None or (datetime.now(UTC) - used).total_seconds() > TOUCH_EVERY_S:
                keys.touch(record.name)  # "last used" to the minute: one write a minute at most
        return record

    def audit(self, actor: str, action: str, target: str | None, source: str, outcome: str) -> None:
        try:
            self.keys().audit(actor, action, target, source, outcome)
        except Exception:  # the audit must not turn a refusal into a 500
            log.exception("could not write the audit entry %s %s", action, outcome)

    # rate limits

    def rate_of(self, record: ApiKey) -> RateLimitItem:
        if record.rate is None:
            return self.key_rate
        item = self._rates.get(record.rate)
        if item is None:
            item = self._rates[record.rate] = parse(record.rate)
        return item

    async def hit(self, item: RateLimitItem, ident: tuple[str, ...], cost: int = 1) -> bool:
        return await self.limiter.hit(item, *ident, cost=cost)

    async def refusal_headers(
        self, item: RateLimitItem, ident: tuple[str, ...]
    ) -> list[tuple[bytes, bytes]]:
        stats = await self.limiter.get_window_stats(item, *ident)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        return [
            (b"retry-after", str(wait).encode()),
            (b"ratelimit-limit", str(item.amount).encode()),
            (b"ratelimit-remaining", str(max(0, stats.remaining)).encode()),
            (b"ratelimit-reset", str(wait).encode()),
        ]

    async def charge(self, scope: Scope, cost: int) -> list[tuple[bytes, bytes]] | None:
        """Charge ``cost`` more to the request's limit; the 429 headers when that is over it."""
        limit = scope.get("state", {}).get(STATE_LIMIT)
        if limit is None or cost <= 0 or scope.get("state", {}).get(STATE_KEY) is None:
            return None
        item, ident = limit
        if await self.hit(item, ident, cost):
            return None
        return await self.refusal_headers(item, ident)


class AuthMiddleware:
    """Keys, scopes and rate limits in front of every route (see the module's docstring)."""

    def __init__(self, app: ASGIApp, gate: Gate, owner: Any) -> None:
        self.app = app
        self.gate = gate
        self.owner = owner  # the FastAPI app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gate = self.gate
        path: str = scope["path"]
        needed = required_scope(scope["method"], path, gate.metrics_need_key)
        record: ApiKey | None = None
        if gate.required and needed is not None:
            key = _presented_key(scope)
            if key is None:
                if not await self._address_over(scope, send):
                    await self._refuse(scope, send, 401, "unauthorized", "no API key", needed)
                return
            try:
                record = await gate.identify(key)
            except Exception:
                log.exception("the key store cannot be read")
                gate.metrics.error(scope, "unavailable")
                body: dict[str, Any] = {
                    "code": "unavailable",
                    "message": "cannot check keys now; retry",
                }
                await _send_json(send, 503, body, [(b"retry-after", b"5")])
                return
            if record is None:
                if not await self._address_over(scope, send):
                    await self._refuse(scope, send, 401, "unauthorized", "unknown API key", needed)
                return
            if needed not in record.scopes:
                message = f"the key {record.name!r} lacks the {needed!r} scope"
                await self._refuse(scope, send, 403, "forbidden", message, needed, record)
                return
        if record is not None:
            item: RateLimitItem | None = gate.rate_of(record)
            ident: tuple[str, ...] = ("key", record.name)
        else:
            item, ident = self._by_address(scope)
        state = scope.setdefault("state", {})
        state[STATE_KEY] = record
        if item is not None:
            state[STATE_LIMIT] = (item, ident)
            if await self._over(scope, send, item, ident, record):
                return
        await self.app(scope, receive, send)

    def _by_address(self, scope: Scope) -> tuple[RateLimitItem | None, tuple[str, ...]]:
        address = _address(scope)
        # The operator's own machine (the laptop demo, simulate, the app) is not limited.
        item = None if _is_loopback(address) else self.gate.address_rate
        return item, ("addr", address)

    async def _address_over(self, scope: Scope, send: Send) -> bool:
        """Keyless refusals count against the address too: a flood of them answers 429 cheaply
        (no audit write for refused admin attempts past the limit)."""
        item, ident = self._by_address(scope)
        return item is not None and await self._over(scope, send, item, ident, None)

    async def _over(
        self,
        scope: Scope,
        send: Send,
        item: RateLimitItem,
        ident: tuple[str, ...],
        record: ApiKey | None,
    ) -> bool:
        """Hit the limit; over it, answer 429 with its headers and say so."""
        gate = self.gate
        if await gate.hit(item, ident):
            return False
        headers = await gate.refusal_headers(item, ident)
        who = f"key {record.name!r}" if record else "this address"
        body = {
            "code": "rate_limited",
            "message": f"{who} is over its rate limit of {item}; retry later",
            "field": None,
            "limit": str(item),
        }
        gate.metrics.error(scope, "rate_limited")
        await _send_json(send, 429, body, headers)
        return True

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        code: str,
        message: str,
        needed: str,
        record: ApiKey | None = None,
    ) -> None:
        self.gate.metrics.error(scope, code)
        if needed == "admin":
            actor = record.name if record else "anonymous"
            action = f"{scope['method']} {scope['path']}"
            outcome = f"refused: {status} {message}"
            await run_in_threadpool(
                self.gate.audit, actor, "admin.refused", action, _address(scope), outcome
            )
        body = {
            "code": code,
            "message": f"{message}; send X-API-Key or Authorization: Bearer"
            if status == 401
            else message,
            "field": "X-API-Key",
            "scope": needed,
        }
        headers = [(b"www-authenticate", _CHALLENGE)] if status == 401 else []
        await _send_json(send, status, body, headers)


def _presented_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-api-key":
            return str(value.decode("latin-1")).strip() or None
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return str(token).strip()
    return None


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _send_json(
    send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]]
) -> None:
    data = json.dumps({"error": body}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
