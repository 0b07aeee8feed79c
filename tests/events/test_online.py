"""The online updater: weights per event type, at-least-once delivery made idempotent."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from setlist.errors import UnavailableError
from setlist.events.bus.base import Consumer, Delivery, EventBus
from setlist.events.bus.memory import MemoryBus
from setlist.events.online import OnlineUpdater
from setlist.events.schema import Event
from setlist.serve.answer.online import InMemoryOnlineHistory
from tests.events.conftest import make_event


def wait_for(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.005)
    assert condition(), "condition not met in time"  # type: ignore[operator]


def test_weights_per_event_type() -> None:
    history = InMemoryOnlineHistory()
    updater = OnlineUpdater(MemoryBus(), history)
    updater.apply(
        [
            make_event(1, user_id="u", item_id="a", type="listen"),
            make_event(2, user_id="u", item_id="a", type="like"),
            make_event(3, user_id="u", item_id="b", type="listen", play_ms=5_000),  # short
            make_event(4, user_id="u", item_id="c", type="skip"),
            make_event(5, user_id="u", item_id="d", type="dislike"),
            make_event(6, user_id="u", item_id="e", type="impression"),
            make_event(7, user_id="u", item_id="f", type="playlist_add"),
        ]
    )
    extra = history.extra("u")
    assert extra["a"] == 6.0 and extra["b"] == -0.5 and extra["c"] == -0.5
    assert extra["d"] == -math.inf and extra["f"] == 3.0
    assert "e" not in extra


def test_redelivered_events_are_applied_once() -> None:
    history = InMemoryOnlineHistory()
    updater = OnlineUpdater(MemoryBus(), history)
    listen = make_event(1, user_id="u", item_id="a")
    updater.apply([listen, listen])
    updater.apply([listen])
    assert history.extra("u") == {"a": 1.0}
    assert updater.applied == 1 and updater.repeats == 2


def test_the_thread_consumes_applies_and_acknowledges() -> None:
    bus = MemoryBus(claim_idle_s=0.05)
    history = InMemoryOnlineHistory()
    updater = OnlineUpdater(bus, history, group="g")
    updater.start()
    try:
        bus.publish([make_event(i, user_id="u", item_id=f"i{i}") for i in range(50)])
        wait_for(lambda: updater.applied == 50)
    finally:
        updater.stop()
    assert len(history.extra("u")) == 50
    with bus.consumer("g", "later") as later:  # everything was acknowledged: nothing comes back
        time.sleep(0.1)
        assert later.poll(100, 0.1) == []


class FlakyBus(EventBus):
    """A bus whose consumers fail a few times before working (a Redis restart, say)."""

    url = "flaky://"

    def __init__(self, failures: int) -> None:
        self.inner = MemoryBus()
        self.failures = failures

    def publish(self, events: Sequence[Event]) -> None:
        self.inner.publish(events)

    def consumer(self, group: str, name: str) -> Consumer:
        bus = self
        inner = self.inner.consumer(group, name)

        class Flaky(Consumer):
            def poll(self, max_events: int = 500, timeout_s: float = 0.1) -> list[Delivery]:
                if bus.failures > 0:
                    bus.failures -= 1
                    raise UnavailableError("bus down")
                return inner.poll(max_events, timeout_s)

            def ack(self, deliveries: Sequence[Delivery]) -> None:
                inner.ack(deliveries)

            def close(self) -> None:
                inner.close()

        return Flaky()

    def close(self) -> None:
        self.inner.close()


def test_the_updater_outlives_an_unreachable_bus() -> None:
    bus = FlakyBus(failures=3)
    history = InMemoryOnlineHistory()
    updater = OnlineUpdater(bus, history)
    updater.start()
    try:
        bus.publish([make_event(1, user_id="u", item_id="a")])
        wait_for(lambda: updater.applied == 1)
    finally:
        updater.stop()
    assert updater.failures == 3
    assert history.extra("u") == {"a": 1.0}
