"""Overload: past its in-flight limit a worker answers 503 with Retry-After at once, never 500."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from setlist.serve.api.limits import InFlightLimitMiddleware, Turns
from tests.net import clean_env, free_port
from tests.serve.tagged import save_tagged_bundle


class Gate:
    """A real ASGI app whose answers wait until the test opens the gate (a slow request)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.started = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.started += 1
        await self.open.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _drive(
    limit: int, n: int, path: str = "/v1/x", admitted: int | None = None
) -> tuple[list[httpx.Response], Gate]:
    """``n`` concurrent requests through the limiter; the gate opens once each was admitted
    (waiting at the gate) or answered, and ``n - admitted`` must have been answered by then."""
    gate = Gate()
    app = InFlightLimitMiddleware(gate, limit=limit)
    transport = httpx.ASGITransport(app=app)
    done: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def one() -> None:
            done.append(await client.get(path))

        tasks = [asyncio.create_task(one()) for _ in range(n)]
        while len(done) + gate.started < n:
            await asyncio.sleep(0.01)
        answered_before_open = len(done)
        gate.open.set()
        await asyncio.gather(*tasks)
    assert answered_before_open == n - (min(n, limit) if admitted is None else admitted)
    return done, gate


def test_requests_past_the_limit_get_503_at_once() -> None:
    done, gate = asyncio.run(_drive(limit=3, n=10))
    statuses = [r.status_code for r in done]
    # The 7 refusals came back while the 3 admitted requests were still waiting.
    assert statuses[:7] == [503] * 7 and statuses[7:] == [200] * 3
    assert gate.started == 3
    for refused in done[:7]:
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"


def test_a_limit_of_zero_and_the_health_routes_are_never_refused() -> None:
    done, gate = asyncio.run(_drive(limit=0, n=5, admitted=5))
    assert [r.status_code for r in done] == [200] * 5
    done, gate = asyncio.run(_drive(limit=1, n=4, path="/health", admitted=4))
    assert [r.status_code for r in done] == [200] * 4 and gate.started == 4


async def _pieces(
    turns: Turns, n: int, cancel: int | None = None, piece_s: float = 0.0
) -> list[tuple[int, int]]:
    """``n`` tasks ready in one loop turn each run a piece of at least ``piece_s`` (busy, as
    inline work is) under ``turns``: (task, loop turn it ran in)."""
    loop = asyncio.get_running_loop()
    ticks = 0

    def tick() -> None:  # counts loop turns: rescheduled once per turn
        nonlocal ticks
        ticks += 1
        loop.call_soon(tick)

    ran: list[tuple[int, int]] = []

    async def piece(i: int) -> None:
        await turns.take()
        try:
            ran.append((i, ticks))
            until = time.perf_counter() + piece_s
            while time.perf_counter() < until:
                pass
        finally:
            turns.give()

    loop.call_soon(tick)
    tasks = [asyncio.create_task(piece(i)) for i in range(n)]
    await asyncio.sleep(0)
    if cancel is not None:
        tasks[cancel].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return ran


def _per_turn(ran: list[tuple[int, int]]) -> list[int]:
    return [sum(1 for _, t in ran if t == turn) for turn in sorted({t for _, t in ran})]


def test_turns_with_no_budget_run_one_piece_per_loop_turn_in_order() -> None:
    turns = Turns(budget_s=0.0)
    ran = asyncio.run(_pieces(turns, 6))
    assert [i for i, _ in ran] == list(range(6))
    assert _per_turn(ran) == [1] * 6
    assert turns.waited == 5


def test_turns_stop_a_loop_turn_after_its_budget() -> None:
    # 1 ms pieces, 2.5 ms budget: at most 3 start in a turn (a slow machine makes fewer).
    ran = asyncio.run(_pieces(Turns(budget_s=0.0025), 12, piece_s=0.001))
    assert [i for i, _ in ran] == list(range(12))
    assert max(_per_turn(ran)) <= 3 and len(_per_turn(ran)) >= 4
    # A budget far above the work: the whole burst in the turn it arrived in.
    assert _per_turn(asyncio.run(_pieces(Turns(budget_s=60.0), 12, piece_s=0.001))) == [12]


def test_a_cancelled_waiter_loses_no_turn() -> None:
    turns = Turns(budget_s=0.0)

    async def run() -> list[int]:
        ran = await _pieces(turns, 5, cancel=2)
        await asyncio.wait_for(turns.take(), 1)  # the turn is free again afterwards
        turns.give()
        return [i for i, _ in ran]

    assert asyncio.run(run()) == [0, 1, 3, 4]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`setlist serve` over a tiny bundle with at most 2 requests in flight."""
    home = tmp_path_factory.mktemp("home")
    bundle = save_tagged_bundle(tmp_path_factory.mktemp("b") / "bundle", "hnsw")
    env = clean_env(
        SETLIST_HOME=str(home),
        SETLIST_DOWNLOAD="false",
        SETLIST_MAX_IN_FLIGHT="2",
        SETLIST_SWAP_INTERVAL_S="0",
        OPENBLAS_NUM_THREADS="1",
    )
    port = free_port()
    cmd = [sys.executable, "-m", "setlist", "serve", "--bundle", str(bundle), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise AssertionError(f"the server did not become ready (exit {proc.poll()})")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


async def _burst(url: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        paths = [f"/v1/users/u{1 + i % 5}/recommendations?k=3" for i in range(n)]
        return list(await asyncio.gather(*(client.get(p) for p in paths)))


def test_a_real_server_sheds_a_burst_with_503_and_no_500(server: str) -> None:
    """The hot route computes inline; bursts of 64 still see refusals, and only 200 or 503."""
    seen: list[httpx.Response] = []
    for _ in range(10):  # a burst that happened to arrive spread out sheds nothing: again
        seen += asyncio.run(_burst(server, 64))
        if any(r.status_code == 503 for r in seen):
            break
    statuses = {r.status_code for r in seen}
    assert statuses <= {200, 503} and 503 in statuses and 200 in statuses
    refused = [r for r in seen if r.status_code == 503]
    assert all(r.headers["retry-after"] == "1" for r in refused)
    assert {r.json()["error"]["code"] for r in refused} == {"overloaded"}
    assert httpx.get(f"{server}/health").status_code == 200
    metrics = httpx.get(f"{server}/metrics").text
    # Refusals are counted under their route, whose template holds braces: one sample a line.
    pattern = r'^setlist_http_errors_total\{.*code="overloaded".*\} (\S+)$'
    counted = sum(float(m) for m in re.findall(pattern, metrics, re.M))
    assert "<unmatched>" not in "".join(re.findall(r"^setlist_http_errors_total.*$", metrics, re.M))
    assert counted == len(refused)
