"""Event buses behind one interface: in-process (default), Redis Streams and Kafka."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from setlist.errors import ConfigError
from setlist.events.bus.base import Consumer, Delivery, EventBus


def open_bus(url: str) -> EventBus:
    """The bus a URL names: ``memory://``, ``redis://HOST:PORT/DB?stream=...``, ``kafka://...``."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from setlist.events.bus.memory import MemoryBus

        query = dict(parse_qsl(urlsplit(url).query))
        try:
            claim = float(query.get("claim_idle_s", "30"))
            max_len = int(query.get("max_len", "1000000"))
        except ValueError:
            raise ConfigError(f"claim_idle_s and max_len must be numbers in {url!r}") from None
        return MemoryBus(max_len=max_len, claim_idle_s=claim)
    if scheme in ("redis", "rediss", "unix"):
        from setlist.events.bus.redis import RedisBus

        return RedisBus(url)
    if scheme == "kafka":
        from setlist.events.bus.kafka import KafkaBus

        return KafkaBus(url)
    raise ConfigError(
        f"unknown event bus URL {url!r}; use memory://, redis://... or kafka://...",
        field="events_bus_url",
    )


__all__ = ["Consumer", "Delivery", "EventBus", "open_bus"]
