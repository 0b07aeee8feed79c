"""Redis Streams bus: ``XADD`` to one stream, consumer groups with ``XREADGROUP`` / ``XACK``.

Redelivery: a consumer first re-reads its own pending entries (a restart under the same name
picks up where it died), then claims entries other consumers left idle for ``claim_idle_ms``
(``XAUTOCLAIM``: they crashed or hung), then reads new ones. The stream is capped at about
``maxlen`` entries (``XADD MAXLEN ~``): the events live in the store, the stream only carries them.

URL: ``redis://HOST:PORT/DB?stream=setlist-events&maxlen=1000000&claim_idle_ms=30000``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from setlist.errors import ConfigError, UnavailableError
from setlist.events.bus.base import Consumer, Delivery, EventBus, decode, encode
from setlist.events.schema import Event

_FIELD = b"e"


def parse_url(url: str) -> tuple[str, str, int, int]:
    """(redis URL without setlist's options, stream, maxlen, claim_idle_ms)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"not a Redis URL: {url!r}", field="events_bus_url")
    query = dict(parse_qsl(parts.query))
    stream = query.pop("stream", "setlist-events")
    try:
        maxlen = int(query.pop("maxlen", "1000000"))
        claim = int(query.pop("claim_idle_ms", "30000"))
    except ValueError:
        raise ConfigError(f"maxlen and claim_idle_ms must be integers in {url!r}") from None
    if not stream or maxlen < 1 or claim < 0:
        raise ConfigError(f"bad stream, maxlen or claim_idle_ms in {url!r}")
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return clean, stream, maxlen, claim


class RedisBus(EventBus):
    def __init__(self, url: str) -> None:
        self.url = url
        clean, self.stream, self.maxlen, self.claim_idle_ms = parse_url(url)
        self.redis = redis.Redis.from_url(clean, socket_connect_timeout=5, health_check_interval=30)
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise UnavailableError(f"cannot reach Redis at {url}: {exc}") from exc

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        try:
            pipe = self.redis.pipeline(transaction=False)
            for event in events:
                pipe.xadd(
                    self.stream, {_FIELD: encode(event)}, maxlen=self.maxlen, approximate=True
                )
            pipe.execute()
        except redis.RedisError as exc:
            raise UnavailableError(f"Redis bus {self.stream!r}: publish failed: {exc}") from exc

    def consumer(self, group: str, name: str) -> Consumer:
        try:
            self.redis.xgroup_create(self.stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise UnavailableError(f"cannot create group {group!r}: {exc}") from exc
        return RedisConsumer(self, group, name)

    def delete(self) -> None:
        """Remove the stream and its groups (tests clean up their private stream)."""
        self.redis.delete(self.stream)

    def close(self) -> None:
        self.redis.close()


class RedisConsumer(Consumer):
    def __init__(self, bus: RedisBus, group: str, name: str) -> None:
        self.bus = bus
        self.group = group
        self.name = name
        self._own_backlog = True  # first re-read what this name had pending (a restart)
        self._claim_from = "0-0"

    def poll(self, max_events: int = 500, timeout_s: float = 0.1) -> list[Delivery]:
        try:
            if self._own_backlog:
                got = self._read("0", max_events, None, redelivered=True)
                if got:
                    return got
                self._own_backlog = False
            claimed = self._claim(max_events)
            if claimed:
                return claimed
            block = max(1, int(timeout_s * 1000)) if timeout_s > 0 else None
            return self._read(">", max_events, block, redelivered=False)
        except redis.RedisError as exc:
            raise UnavailableError(f"Redis bus {self.bus.stream!r}: read failed: {exc}") from exc

    def _read(self, start: str, count: int, block: int | None, redelivered: bool) -> list[Delivery]:
        reply = self.bus.redis.xreadgroup(
            self.group, self.name, {self.bus.stream: start}, count=count, block=block
        )
        entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        for _stream, messages in cast(list[Any], reply or []):
            entries.extend(messages)
        return self._deliveries(entries, redelivered)

    def _claim(self, count: int) -> list[Delivery]:
        reply: list[Any] = self.bus.redis.xautoclaim(
            self.bus.stream,
            self.group,
            self.name,
            min_idle_time=self.bus.claim_idle_ms,
            start_id=self._claim_from,
            count=count,
        )
        next_id, entries = reply[0], reply[1]
        self._claim_from = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
        return self._deliveries(entries, redelivered=True)

    def _deliveries(self, entries: list[Any], redelivered: bool) -> list[Delivery]:
        out = []
        gone = []
        for entry_id, fields in entries:
            if not fields or _FIELD not in fields:  # trimmed from the stream meanwhile
                gone.append(entry_id)
                continue
            out.append(Delivery(decode(fields[_FIELD]), entry_id, redelivered))
        if gone:
            self.bus.redis.xack(self.bus.stream, self.group, *gone)
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        try:
            self.bus.redis.xack(self.bus.stream, self.group, *[d.token for d in deliveries])
        except redis.RedisError as exc:
            raise UnavailableError(f"Redis bus {self.bus.stream!r}: ack failed: {exc}") from exc

    def close(self) -> None:
        """Nothing to release server-side: what is pending here is claimed by others when idle."""
