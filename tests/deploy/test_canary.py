"""`setlist canary decide` and `setlist canary load` against local services: two real
ServiceMetrics registries (the service's own exporter) behind HTTP servers on loopback, fed
known requests, latencies and events; the decision and its exit code follow the figures."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from setlist.cli import app
from setlist.monitor.canary import (
    ArmFigures,
    Thresholds,
    decide,
    histogram_quantile,
    metrics_url,
    parse_figures,
)
from setlist.serve.runtime.metrics import ServiceMetrics

ROUTE = "/v1/users/{user_id}/recommendations"


def feed(
    metrics: ServiceMetrics,
    *,
    n: int,
    errors: int,
    seconds: float,
    listens: int = 0,
    impressions: int = 0,
    arm: str = "champion",
) -> None:
    for i in range(n):
        metrics.observe(ROUTE, "GET", 500 if i < errors else 200, seconds, arm)
    for _ in range(50):  # probes answer for no arm: never counted
        metrics.observe("/health", "GET", 500, 9.0, "none")
    metrics.events_ingested.labels("listen", arm).inc(listens)
    metrics.events_ingested.labels("impression", arm).inc(impressions)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[], bytes]], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(render: Callable[[], bytes]) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = render() if self.path == "/metrics" else b"{}"
                self.send_response(200 if self.path != "/broken" else 500)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["canary", *args])
    return result.exit_code, result.output


def test_a_healthy_canary_is_promoted_and_a_bad_one_rolled_back(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stable, good, slow, failing, dull = (ServiceMetrics() for _ in range(5))
    feed(stable, n=1000, errors=2, seconds=0.02, listens=300, impressions=1000)
    feed(good, n=400, errors=1, seconds=0.02, listens=125, impressions=400)
    feed(slow, n=400, errors=0, seconds=0.4, listens=125, impressions=400)
    feed(failing, n=400, errors=20, seconds=0.02, listens=125, impressions=400)
    feed(dull, n=400, errors=0, seconds=0.02, listens=40, impressions=400)
    stable_url = serve(stable.render)
    out = tmp_path / "decision.json"
    code, text = run(
        "decide", "--stable", stable_url, "--canary", serve(good.render), "--out", str(out)
    )
    assert code == 0 and "verdict: promote" in text, text
    body = json.loads(out.read_text())
    assert body["verdict"] == "promote" and body["requests"] == {"canary": 400, "stable": 1000}
    for metrics, failed in ((slow, "p99_s"), (failing, "error_rate"), (dull, "listen_through")):
        code, text = run(
            "decide", "--stable", stable_url, "--canary", serve(metrics.render), "--out", str(out)
        )
        checks = {c["name"]: c["passed"] for c in json.loads(out.read_text())["checks"]}
        assert code == 1 and "verdict: rollback" in text, text
        assert checks[failed] is False, (failed, checks)


def test_too_little_canary_traffic_waits(serve) -> None:  # type: ignore[no-untyped-def]
    stable, canary = ServiceMetrics(), ServiceMetrics()
    feed(stable, n=1000, errors=0, seconds=0.02)
    feed(canary, n=50, errors=0, seconds=0.02)
    code, text = run("decide", "--stable", serve(stable.render), "--canary", serve(canary.render))
    assert code == 3 and "verdict: wait" in text
    code, _ = run(
        "decide", "--stable", serve(stable.render), "--canary", serve(canary.render),
        "--min-requests", "10",
    )  # fmt: skip
    assert code == 0


def test_two_ab_arms_of_one_service_are_judged_apart(serve) -> None:  # type: ignore[no-untyped-def]
    metrics = ServiceMetrics()
    feed(metrics, n=1000, errors=0, seconds=0.02, arm="control")
    feed(metrics, n=300, errors=30, seconds=0.02, arm="candidate")
    url = serve(metrics.render)
    args = ("decide", "--stable", url, "--canary", url, "--stable-arm", "control")
    assert run(*args, "--canary-arm", "candidate")[0] == 1
    assert run(*args, "--canary-arm", "control")[0] == 0


def test_the_window_counts_only_what_happened_in_it(serve) -> None:  # type: ignore[no-untyped-def]
    stable, canary = ServiceMetrics(), ServiceMetrics()
    feed(stable, n=1000, errors=0, seconds=0.02)
    feed(canary, n=1000, errors=100, seconds=0.02)  # before the window: a bad start
    urls = serve(stable.render), serve(canary.render)
    from setlist.monitor import canary as module

    def later(_: float) -> None:  # what the window sees: a clean canary
        feed(stable, n=500, errors=0, seconds=0.02)
        feed(canary, n=500, errors=0, seconds=0.02)

    canary_figures, stable_figures = module.observe(urls[0], urls[1], window_s=5, sleep=later)
    assert (canary_figures.requests, canary_figures.errors) == (500, 0)
    assert decide(canary_figures, stable_figures, Thresholds()).verdict == "promote"
    assert decide(*module.observe(urls[0], urls[1]), Thresholds()).verdict == "rollback"


def test_figures_and_quantiles_match_promql() -> None:
    metrics = ServiceMetrics()
    for seconds in [0.003] * 90 + [0.2] * 10:
        metrics.observe(ROUTE, "GET", 200, seconds, "champion")
    figures = parse_figures(metrics.render().decode())
    assert figures.requests == 100 and figures.errors == 0
    # the 99th of 100: in the (0.1, 0.25] bucket, 9/10 of its way
    assert figures.quantile(0.99) == pytest.approx(0.1 + 0.15 * 0.9)
    assert figures.quantile(0.5) == pytest.approx(0.0025 + 0.0025 * 50 / 90)
    assert math.isnan(histogram_quantile(0.99, []))
    assert histogram_quantile(0.99, [(1.0, 0.0), (math.inf, 10.0)]) == 1.0
    assert math.isnan(ArmFigures().listen_through)
    assert metrics_url("http://a:8000") == "http://a:8000/metrics"
    assert metrics_url("http://a:8000/x/metrics") == "http://a:8000/x/metrics"


def test_the_load_test_fails_on_errors_and_keeps_its_results(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = serve(lambda: b"")
    out = tmp_path / "load.json"
    args = ("load", "--url", url, "--requests", "60", "--concurrency", "3", "--out", str(out))
    code, text = run(*args, "--path", "/v1/users/{user}/recommendations")
    result = json.loads(out.read_text())
    assert code == 0 and result["passed"] and result["requests"] == 60, text
    assert result["statuses"] == {"200": 60} and result["p99_s"] >= result["p50_s"] > 0
    code, _ = run(*args, "--path", "/v1/model", "--path", "/broken")
    result = json.loads(out.read_text())
    assert code == 1 and not result["passed"] and result["statuses"]["500"] > 0
    assert run(*args, "--path", "/v1/model", "--max-p99", "0")[0] == 1


def test_requests_in_flight_are_exported_for_the_autoscaler() -> None:
    import asyncio

    from setlist.serve.runtime.metrics import MetricsMiddleware

    metrics = ServiceMetrics()
    seen: list[float | None] = []

    def gauge() -> float | None:
        return metrics.registry.get_sample_value("setlist_http_requests_in_flight")

    async def inner(scope: object, receive: object, send: Callable[..., object]) -> None:
        seen.append(gauge())
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[misc]
        raise RuntimeError("boom")  # a failing request leaves the gauge too

    async def send(message: object) -> None:
        pass

    async def receive() -> dict[str, str]:
        return {"type": "http.request"}

    middleware = MetricsMiddleware(inner, metrics)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        asyncio.run(middleware({"type": "http", "method": "GET", "path": "/x"}, receive, send))  # type: ignore[arg-type]
    assert seen == [1.0] and gauge() == 0.0
