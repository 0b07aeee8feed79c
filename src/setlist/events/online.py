"""The online updater: consumes the bus and folds each user's new feedback into their history.

The service answers from that history (``ModelState.recommend``: the trained history plus what
arrived since, folded into a fresh user vector with ALS fold-in; heard and disliked items are
excluded), so a listen shows in the user's very next recommendations. Weights per event type
are :class:`setlist.events.weights.FeedbackWeights`.

Delivery is at least once, so the updater remembers the last ``remember`` event ids it applied
and skips repeats; it acknowledges a batch only after applying all of it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from setlist.errors import SetlistError
from setlist.events.bus.base import Consumer, EventBus
from setlist.events.schema import Event
from setlist.events.weights import FeedbackWeights

log = logging.getLogger(__name__)


class HistorySink(Protocol):
    """Where the updater writes (``setlist.serve.answer.online.OnlineHistory`` satisfies it)."""

    def add(self, user_id: str, item_id: str, weight: float) -> None: ...


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class OnlineUpdater:
    """A background thread: poll the bus, apply, acknowledge; until :meth:`stop`."""

    def __init__(
        self,
        bus: EventBus,
        history: HistorySink,
        *,
        group: str = "online",
        name: str | None = None,
        weights: FeedbackWeights | None = None,
        batch: int = 500,
        remember: int = 100_000,
    ) -> None:
        self.bus = bus
        self.history = history
        self.group = group
        self.name = name or default_consumer_name()
        self.weights = weights or FeedbackWeights()
        self.batch = batch
        self.remember = remember
        self.applied = 0
        self.repeats = 0
        self.failures = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._consumer = self.bus.consumer(self.group, self.name)
        self._thread = threading.Thread(target=self._run, name="setlist-online", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        assert self._consumer is not None
        backoff = 0.1
        while not self._stop.is_set():
            try:
                self.step(self._consumer)
                backoff = 0.1
            except SetlistError as exc:  # the bus is down: wait, then try again
                self.failures += 1
                log.warning("online updater: %s (retrying in %.1f s)", exc.message, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # never let one bad event stop the updates for everyone
                self.failures += 1
                log.exception("online updater: unexpected error")
                self._stop.wait(backoff)

    def step(self, consumer: Consumer, timeout_s: float = 0.1) -> int:
        """Poll once, apply, acknowledge; returns how many deliveries were handled."""
        deliveries = consumer.poll(self.batch, timeout_s)
        if deliveries:
            self.apply([d.event for d in deliveries])
            consumer.ack(deliveries)
        return len(deliveries)

    def apply(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.event_id in self._seen:
                self.repeats += 1
                continue
            self._seen[event.event_id] = None
            if len(self._seen) > self.remember:
                self._seen.popitem(last=False)
            weight = self.weights.event(event)
            if weight != 0.0:
                self.history.add(event.user_id, event.item_id, weight)
            self.applied += 1
