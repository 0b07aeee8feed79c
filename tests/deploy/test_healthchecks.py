"""The healthcheck commands and probe paths, run against a real API with no model on loopback
(alive, not ready) and a real loop worker's metrics server: the image's check passes on a live
service, compose's API check fails until the service is ready, and every probe path is a route.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping

import httpx
import pytest

from setlist.config import Settings
from tests.deploy.files import (
    API_PROBES,
    DOCS,
    SERVICES,
    containers,
    dockerfile,
    exec_form,
    final_stage,
    k8s_object,
    local_url,
    template,
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The real API on a free loopback port, with an empty registry: alive, never ready."""
    import uvicorn

    from setlist.serve import create_app

    home = tmp_path_factory.mktemp("home")
    settings = Settings(
        home=home,
        mlflow_tracking_uri=None,
        events_store_url=None,
        events_bus_url="memory://",
        ab_arms="",
        swap_interval_s=0,
        download=False,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the API did not start"
    yield int(sock.getsockname()[1])
    server.should_exit = True
    thread.join(30)
    sock.close()


def _run_check(argv: list[str], port: int, env: Mapping[str, str] | None = None) -> int:
    """A healthcheck command, as the container would run it, pointed at ``port``."""
    command = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    command = [re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", a) for a in command]
    done = subprocess.run(
        command, env={**os.environ, **(env or {})}, capture_output=True, timeout=30
    )
    return done.returncode


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_image_healthcheck_passes_on_a_live_service_without_a_model(service: int) -> None:
    (arguments,) = [a for i, a in final_stage(dockerfile()) if i == "HEALTHCHECK"]
    argv = exec_form(arguments)
    assert _run_check(argv, service, {"SETLIST_PORT": str(service)}) == 0
    assert _run_check(argv, service, {"SETLIST_PORT": str(_closed_port())}) != 0


def test_compose_api_is_unhealthy_until_ready(service: int) -> None:
    assert httpx.get(f"http://127.0.0.1:{service}/ready").status_code == 503
    assert _run_check(SERVICES["api"]["healthcheck"]["test"][1:], service) != 0


def test_every_api_probe_path_is_a_route(service: int) -> None:
    paths = {local_url(SERVICES["api"]["healthcheck"]["test"])[1]}
    api = containers(DOCS)["api"]
    paths |= {api[k]["httpGet"]["path"] for k in API_PROBES}
    notes = template(k8s_object(DOCS, "Deployment", "setlist-api"))["annotations"]
    paths.add(notes["prometheus.io/path"])
    status = {path: httpx.get(f"http://127.0.0.1:{service}{path}").status_code for path in paths}
    assert status == {"/health": 200, "/ready": 503, "/metrics": 200}


def test_compose_loop_healthcheck_passes_on_the_loop_metrics() -> None:
    from setlist.monitor.metrics import LoopMetrics

    port = _closed_port()
    LoopMetrics().serve(port)
    assert _run_check(SERVICES["loop"]["healthcheck"]["test"][1:], port) == 0
