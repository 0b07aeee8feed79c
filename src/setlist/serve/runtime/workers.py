"""Several uvicorn worker processes, each listening on a socket of its own (``SO_REUSEPORT``).

uvicorn's own ``--workers`` shares one listening socket: whichever worker wakes first accepts
every connection waiting (its event loop accepts up to a backlog's worth per wake-up), so a
client that opens its keep-alive connections at once (a load balancer, a gateway, ``wrk``) often
lands all of them on one worker while the others idle. Measured with ``wrk -c32`` on 2 workers:
3 runs out of 4 put all 32 connections on one worker, at half the throughput. Here each worker
binds its own socket to the same address with ``SO_REUSEPORT``, and the kernel spreads new
connections over the sockets by a hash of their addresses (as nginx's ``reuseport``), so each
worker gets its share whatever the clients do. Workers start with glibc's malloc asking for
transparent huge pages (see :func:`huge_page_tunables`).

The supervisor (:func:`run_workers`) first checks that nobody listens on the address (with
``SO_REUSEPORT`` a second service on the same port would otherwise share its traffic silently),
starts the workers as fresh (spawned) processes, restarts one that dies after its start-up (logged;
its Prometheus files are marked dead), stops everything when one fails to start (uvicorn's exit
code 3, or any exit within ``STARTUP_GRACE_S``; that exit code is returned), and on SIGINT or
SIGTERM stops the workers gracefully (uvicorn's own shutdown: in-flight requests finish).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from types import FrameType

from setlist.errors import ConfigError

log = logging.getLogger(__name__)

STARTUP_GRACE_S = 10.0  # a worker that exits sooner failed to start: stop, do not loop
STARTUP_FAILURE = 3  # uvicorn's exit code when the app cannot be loaded or started
STOP_TIMEOUT_S = 30.0  # after SIGTERM, how long a worker may take to finish its requests


@dataclass(frozen=True)
class WorkerSpec:
    """What every worker runs: ``uvicorn.Config`` arguments for one process."""

    app: str  # "module:attribute", as uvicorn imports it
    host: str
    port: int
    factory: bool = True
    loop: str = "auto"
    http: str = "auto"
    log_level: str | None = None
    access_log: bool = False


def _tcp_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other ``SO_REUSEPORT`` sockets may share."""
    sock = _tcp_socket(host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def huge_page_tunables(current: str | None) -> str:
    """``GLIBC_TUNABLES`` with ``glibc.malloc.hugetlb=1`` added unless the value sets it already.

    With it, glibc's malloc asks for transparent huge pages (``madvise``) on its large blocks,
    as numpy already does for its arrays: faiss's graph and codes then sit on 2 MiB pages
    instead of 4 KiB ones, and a search's random reads miss the TLB far less (on
    ``benchmarks/serving.py``, 4,500 -> 5,370 recommendations/s on 2 workers, the bare
    endpoint unchanged). Kernels with THP ``never`` and other C libraries ignore it.
    """
    if current and "glibc.malloc.hugetlb" in current:
        return current
    return f"{current}:glibc.malloc.hugetlb=1" if current else "glibc.malloc.hugetlb=1"


def check_free(host: str, port: int) -> None:
    """Fail when something already listens on ``host:port`` (bound without ``SO_REUSEPORT``)."""
    with _tcp_socket(host) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", field="port", value=port
            ) from exc


def _worker(spec: WorkerSpec) -> None:  # pragma: no cover - runs in the worker process
    import uvicorn

    sock = reuse_port_socket(spec.host, spec.port)
    config = uvicorn.Config(
        spec.app,
        factory=spec.factory,
        host=spec.host,
        port=spec.port,
        loop=spec.loop,
        http=spec.http,
        log_level=spec.log_level,
        access_log=spec.access_log,
    )
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts ``n`` workers of ``spec``, keeps them running, stops them on a signal."""

    def __init__(self, spec: WorkerSpec, n: int) -> None:
        if n < 1:
            raise ConfigError(f"workers must be at least 1, got {n}", field="workers", value=n)
        self.spec = spec
        self.n = n
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[tuple[SpawnProcess, float]] = []
        self.stopping = False
        self.restarts = 0
        self.startup_grace_s = STARTUP_GRACE_S

    def _start(self) -> tuple[SpawnProcess, float]:
        proc = self.context.Process(target=_worker, args=(self.spec,), name="setlist-worker")
        before = os.environ.get("GLIBC_TUNABLES")
        os.environ["GLIBC_TUNABLES"] = huge_page_tunables(before)  # read by the new process
        try:
            proc.start()
        finally:
            if before is None:
                del os.environ["GLIBC_TUNABLES"]
            else:
                os.environ["GLIBC_TUNABLES"] = before
        log.info("worker %s started on %s:%s", proc.pid, self.spec.host, self.spec.port)
        return proc, time.monotonic()

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Stop serving (a signal handler, or called from another thread)."""
        self.stopping = True

    def run(self) -> int:
        """Serve until :meth:`stop` (0) or a worker's start-up failure (its exit code)."""
        check_free(self.spec.host, self.spec.port)
        code = 0
        try:
            self.workers = [self._start() for _ in range(self.n)]
            while not self.stopping:
                time.sleep(0.2)
                code = self._check()
                if code:
                    break
        finally:
            self._shutdown()
        return code

    def _check(self) -> int:
        for i, (proc, started) in enumerate(self.workers):
            if proc.is_alive() or self.stopping:
                continue
            exitcode = proc.exitcode if proc.exitcode is not None else 1
            _mark_dead(proc.pid)
            if exitcode == STARTUP_FAILURE or time.monotonic() - started < self.startup_grace_s:
                log.error("worker %s failed at start-up (exit %s): stopping", proc.pid, exitcode)
                return exitcode or 1
            log.warning("worker %s exited (%s): starting another", proc.pid, exitcode)
            self.restarts += 1
            self.workers[i] = self._start()
        return 0

    def _shutdown(self) -> None:
        for proc, _ in self.workers:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc, _ in self.workers:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("worker %s did not stop in %.0f s: killed", proc.pid, STOP_TIMEOUT_S)
                proc.kill()
                proc.join()
            _mark_dead(proc.pid)


def _mark_dead(pid: int | None) -> None:
    """Drop a dead worker's live gauges from the shared metrics folder (multiprocess mode)."""
    if pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def run_workers(spec: WorkerSpec, n: int) -> int:
    """Serve ``spec`` from ``n`` processes until SIGINT or SIGTERM; the exit code (0 then)."""
    supervisor = Supervisor(spec, n)
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, supervisor.stop) for s in signals}
    try:
        return supervisor.run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
