"""Kafka bus (confluent-kafka): one topic keyed by user id, consumer groups with manual commits.

``publish`` waits until the broker acknowledged every message (``acks=all``). A consumer
commits an offset only once every delivery before it in that partition is acknowledged, so a
consumer that dies loses nothing: whoever gets its partitions next (after the group
rebalances: at once when it closed, after ``session_timeout_ms`` when it crashed) starts again
from the last committed offset; some acknowledged events may come again (at least once).

URL: ``kafka://HOST:PORT[,HOST:PORT]?topic=setlist-events&partitions=1&session_timeout_ms=6000
&max_poll_interval_ms=60000`` (a member that stops polling for that long, hung or wedged, is
dropped from the group and its partitions go to the others).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from confluent_kafka import Consumer as KConsumer
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from setlist.errors import ConfigError, UnavailableError
from setlist.events.bus.base import Consumer, Delivery, EventBus, decode, encode
from setlist.events.schema import Event


@dataclass(frozen=True)
class KafkaOptions:
    servers: str
    topic: str = "setlist-events"
    partitions: int = 1
    session_timeout_ms: int = 6000
    max_poll_interval_ms: int = 60_000


def parse_url(url: str) -> KafkaOptions:
    """The options a ``kafka://`` URL names."""
    parts = urlsplit(url)
    if parts.scheme != "kafka" or not parts.netloc:
        raise ConfigError(f"not a Kafka URL (kafka://HOST:PORT): {url!r}", field="events_bus_url")
    query = dict(parse_qsl(parts.query))
    try:
        options = KafkaOptions(
            servers=parts.netloc,
            topic=query.get("topic", "setlist-events"),
            partitions=int(query.get("partitions", "1")),
            session_timeout_ms=int(query.get("session_timeout_ms", "6000")),
            max_poll_interval_ms=int(query.get("max_poll_interval_ms", "60000")),
        )
    except ValueError:
        raise ConfigError(f"Kafka URL options must be integers: {url!r}") from None
    if (
        not options.topic
        or options.partitions < 1
        or options.session_timeout_ms < 1000
        or options.max_poll_interval_ms < options.session_timeout_ms
    ):
        raise ConfigError(
            f"bad Kafka options in {url!r}: need a topic, partitions >= 1, "
            "session_timeout_ms >= 1000 and max_poll_interval_ms >= session_timeout_ms"
        )
    return options


class KafkaBus(EventBus):
    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.options = parse_url(url)
        self.servers, self.topic = self.options.servers, self.options.topic
        self.timeout_s = timeout_s
        self._ensure_topic(self.options.partitions)
        self._producer = Producer(
            {"bootstrap.servers": self.servers, "acks": "all", "linger.ms": 1}
        )
        self._lock = threading.Lock()

    def _ensure_topic(self, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.servers})
        futures = admin.create_topics([NewTopic(self.topic, partitions, 1)])
        try:
            futures[self.topic].result(self.timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not (
                isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS
            ):
                raise UnavailableError(f"cannot create Kafka topic {self.topic!r}: {exc}") from exc

    def publish(self, events: Sequence[Event]) -> None:
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        with self._lock:  # one flush per batch: its events, and only they, are awaited
            for event in events:
                self._producer.produce(
                    self.topic,
                    key=event.user_id.encode(),
                    value=encode(event),
                    on_delivery=delivered,
                )
            left = self._producer.flush(self.timeout_s)
        if left or failures:
            raise UnavailableError(
                f"Kafka bus {self.topic!r}: {left} events not acknowledged, errors: {failures[:3]}"
            )

    def consumer(self, group: str, name: str) -> Consumer:
        return KafkaConsumer(self, group, name)

    def close(self) -> None:
        self._producer.flush(self.timeout_s)


class KafkaConsumer(Consumer):
    """Not thread-safe: poll and ack from one thread (as the online updater does)."""

    def __init__(self, bus: KafkaBus, group: str, name: str) -> None:
        self.bus = bus
        self.group = group
        self.name = name
        session = bus.options.session_timeout_ms
        self._consumer = KConsumer(
            {
                "bootstrap.servers": bus.servers,
                "group.id": group,
                "client.id": name,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": session,
                "heartbeat.interval.ms": max(100, session // 3),
                "max.poll.interval.ms": bus.options.max_poll_interval_ms,
                "fetch.wait.max.ms": 20,
            }
        )
        # partition -> {offset: acknowledged?} for what this member holds in flight
        self._flight: dict[int, dict[int, bool]] = {}
        self._consumer.subscribe([bus.topic], on_revoke=self._revoked)

    def _revoked(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._flight.pop(tp.partition, None)

    def poll(self, max_events: int = 500, timeout_s: float = 0.1) -> list[Delivery]:
        try:
            messages = self._consumer.consume(num_messages=max_events, timeout=timeout_s)
        except KafkaException as exc:
            raise UnavailableError(f"Kafka bus {self.bus.topic!r}: poll failed: {exc}") from exc
        out = []
        for msg in messages:
            if msg.error() is not None:
                continue  # partition EOF and transient errors: librdkafka retries by itself
            partition, offset, value = msg.partition(), msg.offset(), msg.value()
            if partition is None or offset is None or value is None:
                continue
            self._flight.setdefault(partition, {})[offset] = False
            out.append(Delivery(decode(value), (partition, offset)))
        return out

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        touched: set[int] = set()
        for d in deliveries:
            partition, offset = d.token
            flight = self._flight.get(partition)
            if flight is not None and offset in flight:
                flight[offset] = True
                touched.add(partition)
        commits = []
        for partition in touched:
            flight = self._flight[partition]
            done = []
            for offset in sorted(flight):
                if not flight[offset]:
                    break
                done.append(offset)
            if done:
                for offset in done:
                    del flight[offset]
                commits.append(TopicPartition(self.bus.topic, partition, done[-1] + 1))
        if commits:
            try:
                self._consumer.commit(offsets=commits, asynchronous=False)
            except KafkaException as exc:
                raise UnavailableError(f"Kafka bus: commit failed: {exc}") from exc

    def close(self) -> None:
        self._consumer.close()
