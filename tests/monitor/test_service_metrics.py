"""The service's metrics: answers by strategy, coverage, diversity, events by arm, readiness,
memory, and several workers adding up into one scrape."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from setlist.bundle import ModelBundle
from setlist.cli.serve import metrics_folder, settings_environment
from setlist.config import Settings
from setlist.errors import ConfigError
from setlist.serve import create_app
from setlist.serve.runtime.coverage import UNTAGGED, CoverageTracker, primary_tags, tag_diversity
from setlist.serve.runtime.resources import read_memory
from tests.monitor.promtext import total, value
from tests.net import clean_env, free_port
from tests.registry.bundles import save_bundle
from tests.serve.conftest import make_settings
from tests.serve.tagged import save_tagged_bundle

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

ROUTE = "/v1/users/{user_id}/recommendations"


@pytest.fixture(scope="module")
def tagged_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tagged_bundle(tmp_path_factory.mktemp("tagged") / "bundle")


@pytest.fixture
def tc(tagged_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    """A fresh app per test: counts start at zero."""
    with TestClient(create_app(make_settings(tmp_path / "home"), tagged_dir)) as client:
        yield client


def _scrape(client: TestClient) -> str:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    return resp.text


def test_answers_are_counted_by_strategy_and_mood(tc: TestClient) -> None:
    assert tc.get("/v1/users/u1/recommendations", params={"k": 2}).status_code == 200
    assert tc.get("/v1/users/nobody/recommendations", params={"k": 2}).status_code == 200
    mood = tc.get("/v1/users/newbie/recommendations", params={"k": 2, "mood": "chill"})
    assert mood.json()["strategy"] == "mood"
    assert tc.post("/v1/recommendations", json={"seeds": ["a"], "k": 2}).status_code == 200
    batch = tc.post("/v1/recommendations/batch", json={"user_ids": ["u2", "ghost"], "k": 2})
    assert batch.status_code == 200
    text = _scrape(tc)
    counts = {
        s: value(
            text, "setlist_recommendations_total", arm="local", catalogue="artists", strategy=s
        )
        for s in ("personalized", "popular_fallback", "mood", "onboarding", "personalized_online")
    }
    assert counts == {
        "personalized": 2.0,  # u1, and u2 in the batch
        "popular_fallback": 2.0,  # nobody, and ghost in the batch
        "mood": 1.0,
        "onboarding": 1.0,
        "personalized_online": 0.0,  # a zero series from the start, so that ratios have a base
    }
    assert (
        value(
            text,
            "setlist_recommendation_moods_total",
            arm="local",
            catalogue="artists",
            mood="chill",
        )
        == 1.0
    )


def test_coverage_counts_each_item_shown_once_per_period(tc: TestClient, tagged_dir: Path) -> None:
    shown: set[str] = set()
    for user in ("u1", "u1", "u4"):
        body = tc.get(f"/v1/users/{user}/recommendations", params={"k": 3}).json()
        shown |= {i["item_id"] for i in body["items"]}
    text = _scrape(tc)
    catalogue = len(ModelBundle.load(tagged_dir).items)
    assert value(text, "setlist_catalogue_items", arm="local", catalogue="artists") == catalogue
    distinct = value(
        text,
        "setlist_recommendation_distinct_items",
        arm="local",
        catalogue="artists",
        period="current",
    )
    assert distinct == len(shown)
    assert 3 < len(shown) < catalogue  # two listeners of different tastes, a bigger catalogue


def test_coverage_restarts_each_period_and_keeps_the_last_one(tagged_dir: Path) -> None:
    bundle = ModelBundle.load(tagged_dir)
    now = [0.0]
    tracker = CoverageTracker(period_s=60.0, clock=lambda: now[0])
    rows = bundle.items.rows(["a", "b", "c", "x"]).tolist()
    a, b, c, x = rows
    assert min(rows) >= 0
    first = tracker.observe("a", bundle, [a, b, a, -1, len(bundle.items)])  # off the catalogue
    assert (first.distinct, first.previous, first.new_catalogue) == (2, None, True)
    assert first.catalogue == len(bundle.items)
    assert tracker.observe("a", bundle, [b, c]).distinct == 3
    now[0] = 61.0
    later = tracker.observe("a", bundle, [x])
    assert (later.distinct, later.previous, later.new_catalogue) == (1, 3, False)
    other_arm = tracker.observe("b", bundle, [x])
    assert (other_arm.distinct, other_arm.new_catalogue) == (1, True)


def test_primary_tags_and_answer_diversity(tagged_dir: Path) -> None:
    bundle = ModelBundle.load(tagged_dir)
    primary = primary_tags(bundle)
    name = {
        str(bundle.items.ids[row]): str(bundle.tag_names[tag])
        for row, tag in enumerate(primary.tolist())
        if tag != UNTAGGED
    }
    assert name["a"] == "chill" and name["b"] == "rock" and name["AC/DC"] == "rock"
    assert name["Björk"] == "dreamy" and name["x"] == "electronic"
    assert tag_diversity([3, 3, 5, UNTAGGED]) == pytest.approx(2 / 3)
    assert tag_diversity([4, UNTAGGED]) is None  # one tagged item says nothing of diversity
    rock = int(primary[bundle.items.row("b")])
    assert tag_diversity([rock, int(primary[bundle.items.row("AC/DC")])]) == 0.5


def test_diversity_histogram_counts_answers(tc: TestClient) -> None:
    for user in ("u1", "u4", "nobody"):
        assert tc.get(f"/v1/users/{user}/recommendations", params={"k": 4}).status_code == 200
    text = _scrape(tc)
    assert (
        value(text, "setlist_recommendation_tag_diversity_count", arm="local", catalogue="artists")
        == 3.0
    )
    assert (
        0.0
        < value(text, "setlist_recommendation_tag_diversity_sum", arm="local", catalogue="artists")
        <= 3.0
    )


def _event(n: int, kind: str, item: str, arm: str | None = None) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": f"e{n}",
        "user_id": "u1",
        "item_id": item,
        "type": kind,
        "ts": "2024-06-01T12:00:00Z",
    }
    if arm is not None:
        event["arm"] = arm
    return event


def test_events_are_counted_by_type_and_the_arm_that_served_them(tc: TestClient) -> None:
    events = [
        _event(1, "impression", "x", arm="local"),
        _event(2, "impression", "y", arm="local"),
        _event(3, "listen", "x"),  # no arm: the impression of u1/x says it was "local"
        _event(4, "like", "x"),
        _event(5, "listen", "z"),  # never shown: organic
        _event(6, "skip", "y", arm="made-up-arm"),  # a client's label is not a new series
    ]
    assert tc.post("/v1/events", json={"events": events}).status_code == 200
    resend = tc.post("/v1/events", json={"events": events})
    assert resend.json()["duplicates"] == len(events)
    text = _scrape(tc)

    def ingested(kind: str, arm: str) -> float:
        return value(text, "setlist_events_ingested_total", type=kind, arm=arm)

    assert ingested("impression", "local") == 2.0
    assert ingested("listen", "local") == 1.0
    assert ingested("like", "local") == 1.0
    assert ingested("listen", "none") == 1.0
    assert ingested("skip", "other") == 1.0
    assert ingested("dislike", "local") == 0.0
    assert 'arm="made-up-arm"' not in text
    assert value(text, "setlist_events_received_total") == 2.0 * len(events)
    assert value(text, "setlist_events_stored_total") == len(events)


def test_readiness_counts_failures_in_a_row(tagged_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "a"), tmp_path / "missing")) as client:
        for _ in range(3):
            assert client.get("/ready").status_code == 503
        text = _scrape(client)
        assert value(text, "setlist_readiness_consecutive_failures") == 3.0
        assert value(text, "setlist_readiness_probes_total", outcome="not_ready") == 3.0
        assert value(text, "setlist_ready") == 0.0
    with TestClient(create_app(make_settings(tmp_path / "b"), tagged_dir)) as client:
        assert client.get("/ready").status_code == 200
        text = _scrape(client)
        assert value(text, "setlist_readiness_consecutive_failures") == 0.0
        assert value(text, "setlist_readiness_probes_total", outcome="ready") == 1.0
        assert value(text, "setlist_ready") == 1.0
        assert (
            value(
                text, "setlist_index_recall_at_10", arm="local", catalogue="artists", kind="exact"
            )
            == 1.0
        )


def test_memory_gauges_compare_usage_with_a_limit(tc: TestClient) -> None:
    text = _scrape(tc)
    source = "cgroup" if 'source="cgroup"' in text else "process"
    usage = value(text, "setlist_memory_usage_bytes", source=source)
    limit = value(text, "setlist_memory_limit_bytes", source=source)
    assert 0 < usage < limit


def _cgroup_v2(root: Path, limit: str, current: int, inactive: int) -> Path:
    root.mkdir(parents=True)
    (root / "memory.max").write_text(f"{limit}\n")
    (root / "memory.current").write_text(f"{current}\n")
    (root / "memory.stat").write_text(f"anon 1\ninactive_file {inactive}\nactive_file 3\n")
    return root


def test_memory_under_a_cgroup_limit_is_its_working_set(tmp_path: Path) -> None:
    root = _cgroup_v2(tmp_path / "limited", str(512 << 20), 300 << 20, 100 << 20)
    memory = read_memory(workers=False, root=root)
    assert (memory.source, memory.limit_bytes) == ("cgroup", float(512 << 20))
    assert memory.usage_bytes == float(200 << 20)  # page cache the kernel can drop is left out
    unlimited = read_memory(workers=False, root=_cgroup_v2(tmp_path / "free", "max", 1, 0))
    assert unlimited.source == "process"
    assert 0 < unlimited.usage_bytes < unlimited.limit_bytes  # this process vs the machine


_WORKER = """
import sys
from setlist.serve.runtime.metrics import ServiceMetrics
m = ServiceMetrics()
for _ in range(int(sys.argv[1])):
    m.observe("/v1/x", "GET", 200, 0.01, "a")
m.model_loaded.labels("a", "artists").set(1)
"""
_SCRAPE = """
from setlist.serve.runtime.metrics import ServiceMetrics
print(ServiceMetrics().render().decode())
"""


def _python(code: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_counts_of_worker_processes_add_up_in_one_scrape(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "OPENBLAS_NUM_THREADS": "1"}
    _python(_WORKER, env, "3")
    _python(_WORKER, env, "4")
    text = _python(_SCRAPE, env)
    labels = {"route": "/v1/x", "method": "GET", "status": "200", "arm": "a"}
    assert value(text, "setlist_http_requests_total", **labels) == 7.0
    assert value(text, "setlist_http_request_duration_seconds_count", route="/v1/x", arm="a") == 7
    # Live gauges of workers that are gone are dropped, not summed or kept forever.
    assert total(text, "setlist_model_loaded", arm="a") == 0.0


def test_the_workers_metrics_folder_must_be_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    with metrics_folder() as folder:
        assert folder == tmp_path / "prom" and folder.is_dir()
    (folder / "counter_123.db").write_bytes(b"")
    with pytest.raises(ConfigError, match="counter_123.db"), metrics_folder():
        pass
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    with metrics_folder() as temporary:
        assert temporary.is_dir()
    assert not temporary.exists()


def test_workers_get_the_commands_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path, port=8123, online_updates=False, mood_weight=0.25)
    for key in list(os.environ):
        if key.startswith(("SETLIST_", "MLFLOW_")):
            monkeypatch.delenv(key)
    for key, text in settings_environment(settings).items():
        monkeypatch.setenv(key, text)
    assert Settings() == settings


def _per_worker_requests(folder: Path) -> dict[str, float]:
    """Requests to the recommendations route, by the worker (pid) file that counted them."""
    counts: dict[str, float] = {}
    for path in folder.glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)]):
            for s in family.samples:
                if s.name == "setlist_http_requests_total" and s.labels["route"] == ROUTE:
                    counts[path.stem] = counts.get(path.stem, 0.0) + s.value
    return counts


def _wait_ready(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError("setlist serve --workers 2 did not become ready within 90 s")


@pytest.mark.e2e
def test_serve_with_two_workers_adds_their_counts_up(tmp_path: Path) -> None:
    bundle = save_bundle(tmp_path / "bundle")
    folder = tmp_path / "prom"
    env = clean_env(
        SETLIST_HOME=str(tmp_path / "home"),
        OPENBLAS_NUM_THREADS="1",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        SETLIST_ONLINE_UPDATES="false",  # the in-process bus cannot cross workers
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = ["-m", "setlist", "serve", "--workers", "2", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, *command, "--bundle", str(bundle)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(proc, url)
        sent = 0
        # A new connection per request, so that the kernel hands them to both workers.
        with httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0)) as c:
            while sent < 400 and (sent < 20 or len(_per_worker_requests(folder)) < 2):
                assert c.get("/v1/users/u1/recommendations").status_code == 200
                sent += 1
            # A request is counted just after its answer is sent: let the last ones land.
            deadline = time.monotonic() + 10
            while sum(_per_worker_requests(folder).values()) < sent < 400:
                assert time.monotonic() < deadline, _per_worker_requests(folder)
                time.sleep(0.05)
            per_worker = _per_worker_requests(folder)
            text = c.get("/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert len(per_worker) == 2, f"one worker answered all {sent} requests: {per_worker}"
    assert sum(per_worker.values()) == sent
    labels = {"route": ROUTE, "method": "GET", "status": "200", "arm": "local"}
    assert value(text, "setlist_http_requests_total", **labels) == sent


def test_several_workers_refuse_the_in_process_bus_for_online_updates(tmp_path: Path) -> None:
    from setlist.cli.serve import serve_workers
    from setlist.config import Settings
    from setlist.errors import ConfigError

    settings = Settings(home=tmp_path, workers=2, events_bus_url="memory://")
    with pytest.raises(ConfigError, match="bus shared by the workers") as info:
        serve_workers(settings)
    assert info.value.details.get("field") == "workers"


def test_each_worker_reads_every_event_in_a_group_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from setlist.config import get_settings
    from setlist.serve.api import app as app_module

    seen: list[str] = []
    monkeypatch.setattr(app_module, "create_app", lambda s, b=None: seen.append(s.events_group))
    monkeypatch.setenv("SETLIST_HOME", str(tmp_path))
    for workers, expected in (("2", f"online-{os.getpid()}"), ("1", "online")):
        monkeypatch.setenv("SETLIST_WORKERS", workers)
        get_settings.cache_clear()
        app_module.worker_app()
        assert seen[-1] == expected
    get_settings.cache_clear()
