"""`setlist serve --workers N`: one SO_REUSEPORT socket per worker, supervised."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from setlist.errors import ConfigError
from setlist.serve.runtime.workers import Supervisor, WorkerSpec, check_free, huge_page_tunables
from tests.net import free_port

pytestmark = pytest.mark.e2e


def _wait(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def supervised() -> Iterator[tuple[Supervisor, str]]:
    port = free_port()
    supervisor = Supervisor(
        WorkerSpec("tests.serve.pid_app:app", "127.0.0.1", port, factory=False), 2
    )
    supervisor.startup_grace_s = 0.5
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait(url)
        yield supervisor, url
    finally:
        supervisor.stop()
        thread.join(60)
    assert result == [0] and not thread.is_alive()
    assert all(not proc.is_alive() for proc, _ in supervisor.workers)


def _pids_of_connections(url: str, n: int) -> list[int]:
    """``n`` keep-alive connections opened at once, as a gateway or load generator opens them."""
    clients = [httpx.Client(timeout=10) for _ in range(n)]
    try:
        barrier = threading.Barrier(n)
        pids = [0] * n

        def one(i: int) -> None:
            barrier.wait()
            pids[i] = int(clients[i].get(url).text)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return pids
    finally:
        for c in clients:
            c.close()


def test_connections_opened_at_once_reach_every_worker(
    supervised: tuple[Supervisor, str],
) -> None:
    supervisor, url = supervised
    workers = {proc.pid for proc, _ in supervisor.workers}
    for _ in range(3):
        pids = _pids_of_connections(url, 24)
        # The kernel spreads connections over the sockets: each worker gets a share.
        assert set(pids) == workers, pids
        assert min(pids.count(p) for p in workers) >= 3, pids


def test_workers_start_with_malloc_asking_for_huge_pages(
    supervised: tuple[Supervisor, str],
) -> None:
    supervisor, _ = supervised
    for proc, _ in supervisor.workers:
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        tunables = [e for e in environ if e.startswith(b"GLIBC_TUNABLES=")]
        assert tunables and b"glibc.malloc.hugetlb=1" in tunables[0]
    assert "glibc.malloc.hugetlb" not in os.environ.get("GLIBC_TUNABLES", "")  # ours untouched


def test_huge_page_tunables_keep_what_is_set() -> None:
    assert huge_page_tunables(None) == "glibc.malloc.hugetlb=1"
    assert huge_page_tunables("glibc.malloc.arena_max=2") == (
        "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    )
    assert huge_page_tunables("glibc.malloc.hugetlb=0") == "glibc.malloc.hugetlb=0"


def test_a_worker_that_dies_is_replaced(supervised: tuple[Supervisor, str]) -> None:
    supervisor, url = supervised
    time.sleep(0.6)  # past the start-up grace: a death now is not a start-up failure
    victim = supervisor.workers[0][0].pid
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while supervisor.restarts < 1 or len({p for p in _pids_of_connections(url, 16)}) < 2:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.2)
    assert victim not in {proc.pid for proc, _ in supervisor.workers}


def test_a_start_up_failure_stops_the_service_with_its_exit_code() -> None:
    port = free_port()
    supervisor = Supervisor(WorkerSpec("tests.serve.no_such_module:app", "127.0.0.1", port), 2)
    started = time.monotonic()
    code = supervisor.run()
    assert code != 0 and time.monotonic() - started < 60
    assert all(not proc.is_alive() for proc, _ in supervisor.workers)


def test_an_address_in_use_is_refused_naming_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}") as info:
            check_free("127.0.0.1", port)
        assert info.value.details.get("field") == "port"
