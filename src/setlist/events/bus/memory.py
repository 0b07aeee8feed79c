"""The in-process bus (default): a bounded log in memory with consumer groups, like Redis Streams.

Nothing survives the process, which is fine for its one use, feeding the online updater of
the same process: the events themselves are in the durable store before they are published.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from setlist.errors import ConfigError, UnavailableError
from setlist.events.bus.base import Consumer, Delivery, EventBus
from setlist.events.schema import Event


@dataclass
class _Group:
    next: int
    pending: dict[int, tuple[str, float]] = field(default_factory=dict)  # offset -> owner, since
    returned: deque[int] = field(default_factory=deque)  # offsets of closed consumers


class MemoryBus(EventBus):
    def __init__(self, max_len: int = 1_000_000, claim_idle_s: float = 30.0) -> None:
        if max_len < 1 or claim_idle_s < 0:
            raise ConfigError("memory bus needs max_len >= 1 and claim_idle_s >= 0")
        self.url = "memory://"
        self.max_len = max_len
        self.claim_idle_s = claim_idle_s
        self._log: deque[Event] = deque()
        self._base = 0  # offset of _log[0]
        self._groups: dict[str, _Group] = {}
        self._cond = threading.Condition()
        self._closed = False

    def publish(self, events: Sequence[Event]) -> None:
        with self._cond:
            if self._closed:
                raise UnavailableError("the in-process bus is closed")
            self._log.extend(events)
            overflow = len(self._log) - self.max_len
            for _ in range(max(0, overflow)):
                self._log.popleft()
            self._base += max(0, overflow)
            self._cond.notify_all()

    def consumer(self, group: str, name: str) -> Consumer:
        with self._cond:
            self._groups.setdefault(group, _Group(next=self._base))
        return MemoryConsumer(self, group, name)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # The consumers' side: everything below runs under self._cond.

    def _take(self, group: str, name: str, limit: int) -> list[Delivery]:
        state = self._groups[group]
        out: list[Delivery] = []
        now = time.monotonic()
        while state.returned and len(out) < limit:
            self._hand(state, state.returned.popleft(), name, now, out, redelivered=True)
        if len(out) < limit and self.claim_idle_s >= 0:
            idle = [
                off
                for off, (owner, since) in state.pending.items()
                if owner != name and now - since >= self.claim_idle_s
            ]
            for off in idle[: limit - len(out)]:
                self._hand(state, off, name, now, out, redelivered=True)
        state.next = max(state.next, self._base)
        end = self._base + len(self._log)
        while state.next < end and len(out) < limit:
            self._hand(state, state.next, name, now, out, redelivered=False)
            state.next += 1
        return out

    def _hand(
        self,
        state: _Group,
        offset: int,
        name: str,
        now: float,
        out: list[Delivery],
        redelivered: bool,
    ) -> None:
        if offset < self._base:  # trimmed away before anyone acknowledged it
            state.pending.pop(offset, None)
            return
        state.pending[offset] = (name, now)
        out.append(Delivery(self._log[offset - self._base], offset, redelivered))


class MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBus, group: str, name: str) -> None:
        self.bus = bus
        self.group = group
        self.name = name

    def poll(self, max_events: int = 500, timeout_s: float = 0.1) -> list[Delivery]:
        deadline = time.monotonic() + max(0.0, timeout_s)
        cond = self.bus._cond
        with cond:
            while True:
                if self.bus._closed:
                    return []
                got = self.bus._take(self.group, self.name, max_events)
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got
                # Wake at least every claim interval so idle deliveries of others get reclaimed.
                cond.wait(min(left, max(self.bus.claim_idle_s, 0.01)))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self.bus._cond:
            pending = self.bus._groups[self.group].pending
            for d in deliveries:
                if pending.get(d.token, ("",))[0] == self.name:
                    del pending[d.token]

    def close(self) -> None:
        with self.bus._cond:
            state = self.bus._groups[self.group]
            mine = sorted(off for off, (owner, _) in state.pending.items() if owner == self.name)
            for off in mine:
                del state.pending[off]
            state.returned.extend(mine)
            self.bus._cond.notify_all()
