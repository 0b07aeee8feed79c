"""One suite, every bus: in-process, Redis Streams (real server), Kafka (real broker)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from setlist.events.bus import Consumer, Delivery, EventBus, open_bus
from setlist.events.schema import Event
from tests.events.conftest import make_event, redis_or_skip

# Kafka group joins and rebalances take seconds; everything else answers in milliseconds.
DEADLINE_S = 40.0


@pytest.fixture(params=["memory", "redis", "kafka"])
def bus(request: pytest.FixtureRequest) -> Iterator[EventBus]:
    name = f"setlist-test-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        url = "memory://?claim_idle_s=0.2"
    elif request.param == "redis":
        url = f"{redis_or_skip()}?stream={name}&claim_idle_ms=200"
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        url = f"kafka://{bootstrap}?topic={name}&session_timeout_ms=6000&max_poll_interval_ms=6000"
    opened = open_bus(url)
    try:
        yield opened
    finally:
        if hasattr(opened, "delete"):
            opened.delete()
        opened.close()


def collect(
    consumer: Consumer,
    until: Callable[[list[Delivery]], bool],
    ack: bool = True,
    deadline_s: float = DEADLINE_S,
) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + deadline_s
    while not until(got) and time.monotonic() < deadline:
        batch = consumer.poll(100, 0.2)
        if ack:
            consumer.ack(batch)
        got.extend(batch)
    return got


def ids(deliveries: list[Delivery]) -> list[str]:
    return [d.event.event_id for d in deliveries]


def events(n: int) -> list[Event]:
    return [make_event(i, user_id="u1") for i in range(n)]


def test_a_group_gets_every_event_in_order_intact(bus: EventBus) -> None:
    sent = events(30)
    sent[3] = make_event(3, user_id="u1", type="impression", position=2, propensity=0.25, arm="b")
    with bus.consumer("g", "c1") as consumer:
        bus.publish(sent[:10])
        bus.publish(sent[10:])
        got = collect(consumer, lambda g: len(g) >= 30)
    assert ids(got) == [e.event_id for e in sent]
    assert [d.event for d in got] == sent


def test_each_group_gets_everything(bus: EventBus) -> None:
    sent = events(12)
    with bus.consumer("a", "c") as first, bus.consumer("b", "c") as second:
        bus.publish(sent)
        assert set(ids(collect(first, lambda g: len(g) >= 12))) == {e.event_id for e in sent}
        assert set(ids(collect(second, lambda g: len(g) >= 12))) == {e.event_id for e in sent}


def test_unacknowledged_events_of_a_closed_consumer_are_redelivered(bus: EventBus) -> None:
    sent = events(20)
    bus.publish(sent)
    first = bus.consumer("g", "first")
    got = collect(first, lambda g: len(g) >= 20, ack=False)
    assert len(got) == 20
    first.ack(got[:8])  # processed the first 8, then stopped
    first.close()
    with bus.consumer("g", "second") as second:
        again = collect(second, lambda g: set(ids(got[8:])) <= set(ids(g)))
    assert set(ids(got[8:])) <= set(ids(again))
    assert all(d.redelivered for d in again) or bus.url.startswith("kafka")


_TAKE_AND_HANG = """
import sys, time
from setlist.events.bus import open_bus
consumer = open_bus(sys.argv[1]).consumer("g", "crashed")
taken = []
deadline = time.monotonic() + 40
while len(taken) < int(sys.argv[2]) and time.monotonic() < deadline:
    taken += [d.event.event_id for d in consumer.poll(100, 0.2)]
print(" ".join(taken), flush=True)
time.sleep(600)
"""


def take_and_die(url: str, n: int) -> set[str]:
    """A consumer in another process takes n events without acknowledging them: kill -9."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _TAKE_AND_HANG, url, str(n)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        return set(proc.stdout.readline().split())
    finally:
        proc.kill()
        proc.wait(10)


def test_a_crashed_consumer_pending_events_go_to_another(bus: EventBus) -> None:
    """A consumer takes events and dies (kill -9; in-process: it just stops, never closed)."""
    sent = events(10)
    bus.publish(sent)
    crashed = None
    if bus.url.startswith("memory"):
        crashed = bus.consumer("g", "crashed")
        taken = set(ids(collect(crashed, lambda g: len(g) >= 10, ack=False)))
    else:
        taken = take_and_die(bus.url, 10)
    assert taken == {e.event_id for e in sent}
    with bus.consumer("g", "survivor") as survivor:
        again = collect(survivor, lambda g: taken <= set(ids(g)), deadline_s=60)
    assert taken <= set(ids(again))


def test_acknowledged_events_are_not_delivered_again(bus: EventBus) -> None:
    sent = events(10)
    bus.publish(sent)
    with bus.consumer("g", "first") as first:
        assert len(collect(first, lambda g: len(g) >= 10)) == 10
    with bus.consumer("g", "second") as second:
        bus.publish(events(1))
        later = collect(second, lambda g: len(g) >= 1)
    assert len(later) == 1
    assert later[0].event.event_id not in {e.event_id for e in sent}


def test_members_of_a_group_never_share_an_event(bus: EventBus) -> None:
    sent = events(40)
    with bus.consumer("g", "one") as one, bus.consumer("g", "two") as two:
        bus.publish(sent)
        got_one: list[Delivery] = []
        got_two: list[Delivery] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(got_one) + len(got_two) < 40 and time.monotonic() < deadline:
            for consumer, sink in ((one, got_one), (two, got_two)):
                batch = consumer.poll(7, 0.1)
                consumer.ack(batch)
                sink.extend(batch)
    assert not set(ids(got_one)) & set(ids(got_two))
    assert set(ids(got_one)) | set(ids(got_two)) == {e.event_id for e in sent}
