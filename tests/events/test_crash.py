"""kill -9 of the API (a real uvicorn process on 127.0.0.1) in the middle of event ingestion.

A client sends batches of events with unique ids and records each acknowledged id; the server
is killed with SIGKILL while requests are in flight, then restarted; every acknowledged id
must be in the store (0 lost), and resending every id ever sent stores none twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from setlist.events.store import open_store
from setlist.events.store.postgres import PostgresEventStore
from tests.events.conftest import private_postgres_url
from tests.net import free_port
from tests.registry.bundles import save_bundle

pytestmark = pytest.mark.integration
BATCH = 25


@dataclass
class Server:
    port: int
    env: dict[str, str]
    bundle: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "setlist", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--bundle", str(self.bundle)]
        self.proc = subprocess.Popen(
            command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server exited during start-up"
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not become ready within 90 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class Sender:
    """Sends batches of fresh ids until told to stop; remembers what was sent and acked."""

    url: str
    sent: list[str] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stop.is_set():
                ids = [uuid.uuid4().hex for _ in range(BATCH)]
                self.sent += ids
                try:
                    resp = client.post("/v1/events", json={"events": [_event(i) for i in ids]})
                except httpx.HTTPError:
                    self.failures += 1
                    time.sleep(0.01)
                    continue
                if resp.status_code == 200:
                    self.acked += ids


def _event(event_id: str) -> dict[str, str]:
    return {
        "event_id": event_id,
        "user_id": f"user-{event_id[:2]}",
        "item_id": "x",
        "type": "listen",
        "ts": datetime.now(UTC).isoformat(),
    }


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
        return
    url = private_postgres_url()
    yield url
    store = open_store(url)
    assert isinstance(store, PostgresEventStore)
    store.drop_schema()
    store.close()


def test_kill_9_loses_no_acknowledged_event(store_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SETLIST_HOME": str(tmp_path / "home"),
        "SETLIST_EVENTS_STORE_URL": store_url,
        "OPENBLAS_NUM_THREADS": "1",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    server = Server(free_port(), env, save_bundle(tmp_path / "bundle"))
    server.start()
    sender = Sender(server.url)
    thread = threading.Thread(target=sender.run)
    try:
        thread.start()
        deadline = time.monotonic() + 30
        while len(sender.acked) < 40 * BATCH and time.monotonic() < deadline:
            time.sleep(0.005)
        server.kill()  # SIGKILL while the sender keeps sending
        time.sleep(0.3)
    finally:
        sender.stop.set()
        thread.join(10)
    assert len(sender.acked) >= 40 * BATCH
    assert sender.failures > 0  # some requests met the dead server
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for start in range(0, len(sender.sent), 500):  # resend everything ever sent
                part = sender.sent[start : start + 500]
                resp = client.post("/v1/events", json={"events": [_event(i) for i in part]})
                assert resp.status_code == 200, resp.text
    finally:
        server.kill()
    with open_store(store_url) as store:
        missing = set(sender.acked) - store.existing(sender.acked)
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert store.count() == len(set(sender.sent))  # every id once, resends included
