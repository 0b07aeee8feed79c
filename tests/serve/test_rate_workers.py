"""The per-key limit holds across `setlist serve --workers 2`, counted in the real Redis."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from setlist.events.keys import KeyStore
from tests.events.conftest import redis_or_skip
from tests.monitor.test_service_metrics import _per_worker_requests
from tests.net import clean_env, free_port
from tests.serve.tagged import save_tagged_bundle

pytestmark = pytest.mark.e2e


def _probed_workers(folder: Path) -> set[str]:
    """The worker (pid) files that counted a readiness probe answered ready."""
    found = set()
    for path in folder.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)]):
            for s in family.samples:
                if s.name == "setlist_readiness_probes_total" and s.value > 0:
                    found.add(path.stem)
    return found


def test_two_workers_share_one_limit_in_redis(tmp_path: Path) -> None:
    redis_url = redis_or_skip()
    store_url = f"sqlite:///{tmp_path / 'events.db'}"
    store = KeyStore(store_url)
    name = f"shared-{uuid.uuid4().hex[:8]}"  # Redis outlives the test: a fresh counter
    key = store.create(name, "read", "20/minute", "test", "test")[1]
    store.close()
    env = clean_env(
        SETLIST_HOME=str(tmp_path / "home"),
        OPENBLAS_NUM_THREADS="1",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"),
        SETLIST_ONLINE_UPDATES="false",
        SETLIST_AUTH="on",
        SETLIST_EVENTS_STORE_URL=store_url,
        SETLIST_RATE_LIMIT_STORAGE=redis_url,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bundle = save_tagged_bundle(tmp_path / "bundle")
    command = [sys.executable, "-m", "setlist", "serve", "--workers", "2", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--bundle", str(bundle)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "not ready within 90 s"
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        # /ready answers once one worker is up; the other may not listen yet (then the kernel
        # hands it no connection). Probe on new connections until both have answered one.
        with httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            while len(_probed_workers(tmp_path / "prom")) < 2:
                assert time.monotonic() < deadline, "the second worker never answered"
                c.get("/ready")
                time.sleep(0.05)
        statuses: list[int] = []
        # A new connection per request, so that the kernel hands them to both workers.
        with httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            for _ in range(30):
                response = c.get("/v1/users/u1/recommendations", headers={"X-API-Key": key})
                statuses.append(response.status_code)
        time.sleep(0.5)  # a request is counted just after its answer is sent
        per_worker = _per_worker_requests(tmp_path / "prom")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert statuses.count(200) == 20 and statuses.count(429) == 10, statuses
    assert statuses[:20] == [200] * 20
    assert len(per_worker) == 2, f"one worker answered all: {per_worker}"  # both counted
