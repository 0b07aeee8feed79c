"""The Prometheus config, alert rules and Grafana dashboards, checked against real metrics.

Without binaries: every dashboard is well formed and names only metrics the service or the
loop worker export. With promtool: the config and rules load, and the rules' unit tests pass.
With prometheus (integration): a real Prometheus scrapes a real API and loop worker while the
simulator drives them, and every panel expression and every alert rule runs through its HTTP
API; a query error, or a panel without a series, fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import generate_latest

from setlist.monitor.metrics import LoopMetrics
from setlist.serve.runtime.metrics import ServiceMetrics
from tests.monitor.promtext import value
from tests.net import clean_env, free_port

ROOT = Path(__file__).parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# Concrete values for Grafana's variables, as Grafana would send them.
GRAFANA_VARIABLES = {"$__rate_interval": "20s", "$__interval": "5s", "$__range": "10m"}
VARIABLE_ALL = ".*"

needs_promtool = pytest.mark.skipif(
    not Path(PROMTOOL).exists(), reason="promtool not installed (Debian package prometheus)"
)


@dataclass(frozen=True)
class Query:
    where: str  # "service-health.json: panel 'Requests per second by route' A"
    expr: str
    panel: bool  # a panel must return series; an alert rule need only run


def _dashboard_queries() -> list[Query]:
    queries = []
    for path in DASHBOARDS:
        for panel in _panels(json.loads(path.read_text())):
            for target in panel.get("targets", []):
                where = f"{path.name}: panel {panel['title']!r} {target['refId']}"
                queries.append(Query(where, target["expr"], panel=True))
    return queries


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def _alert_queries() -> list[Query]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [
        Query(f"alerts.yml: {rule['alert']}", rule["expr"], panel=False)
        for group in rules["groups"]
        for rule in group["rules"]
    ]


def _concrete(expr: str) -> str:
    for name, concrete in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, concrete)
    return re.sub(r"\$\{?[a-z_]+\}?", VARIABLE_ALL, expr)


def _exported_names() -> set[str]:
    """Every sample name the service and the loop worker can export."""
    names = {"up"}
    for registry in (ServiceMetrics().registry, LoopMetrics().registry):
        for family in registry.collect():
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_sum", "_count"),
            }.get(family.type, ("",))
            names |= {family.name + s for s in suffixes}
    return names


# ------------------------------------------------------------------ without binaries


def test_dashboards_are_complete_and_use_only_exported_metrics() -> None:
    assert {p.stem for p in DASHBOARDS} == {
        "service-health",
        "model-quality",
        "listeners-moods",
        "drift-retraining",
    }
    sources = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
    datasource = yaml.safe_load(sources.read_text())
    uid = datasource["datasources"][0]["uid"]
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        ids = [p["id"] for p in _panels(board)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in _panels(board):
            if panel["type"] == "row":
                continue
            assert panel["targets"], f"{path.name}: {panel['title']!r} has no query"
            assert panel["datasource"]["uid"] == uid, f"{path.name}: {panel['title']!r}"
    assert len(uids) == len(DASHBOARDS)
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/setlist.yml").read_text())
    assert provider["providers"][0]["type"] == "file"

    exported = _exported_names()
    unknown = {
        f"{q.where}: {name}"
        for q in _dashboard_queries() + _alert_queries()
        for name in re.findall(r"\b(setlist_[a-z0-9_]+)", q.expr)
        if name not in exported
    }
    assert not unknown, "metrics nobody exports:\n" + "\n".join(sorted(unknown))


def test_every_alert_has_a_severity_and_a_runbook_section() -> None:
    risks = (ROOT / "docs" / "RISKS.md").read_text()
    anchors = {
        "#" + re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", risks, flags=re.M)
    }
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            link = rule["annotations"]["runbook"]
            assert link.startswith("docs/RISKS.md#"), rule["alert"]
            assert link.removeprefix("docs/RISKS.md") in anchors, f"{rule['alert']}: {link}"


def test_counters_the_alerts_watch_exist_at_zero_from_the_start() -> None:
    # increase() cannot see a counter's first step when its series is born at 1.
    loop = generate_latest(LoopMetrics().registry).decode()
    for trigger, outcome in (("data_drift", "failed"), ("probation", "rolled_back")):
        labels = {"trigger": trigger, "outcome": outcome}
        assert value(loop, "setlist_retrain_runs_total", **labels) == 0.0
    service = ServiceMetrics()
    service.set_arm_model("main", None)
    text = service.render().decode()
    assert (
        value(
            text, "setlist_recommendations_total", arm="main", catalogue="artists", strategy="mood"
        )
        == 0.0
    )
    assert (
        value(text, "setlist_model_swaps_total", arm="main", catalogue="artists", outcome="refused")
        == 0.0
    )
    assert value(text, "setlist_readiness_probes_total", outcome="not_ready") == 0.0


# ------------------------------------------------------------------ promtool


def _promtool(*args: str) -> str:
    done = subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@needs_promtool
def test_promtool_accepts_the_config_and_the_rules() -> None:
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")
    out = _promtool("check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(_alert_queries())} rules found" in out


@needs_promtool
def test_alert_rules_fire_on_the_right_series_only() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")


# ------------------------------------------------------------------ a real Prometheus


def _env(home: Path) -> dict[str, str]:
    env = clean_env(
        SETLIST_HOME=str(home),
        SETLIST_DOWNLOAD="false",
        OPENBLAS_NUM_THREADS="1",
        SETLIST_DATASET="synthetic:tiny",
        SETLIST_FACTORS="8",
        SETLIST_ITERATIONS="3",
        SETLIST_COVERAGE_PERIOD_S="3",  # a period ends during the test: "previous" exists
        SETLIST_SWAP_INTERVAL_S="2",
        SETLIST_DRIFT_WINDOW_S="2",
        SETLIST_DRIFT_MIN_EVENTS="20",
    )
    return env


class Processes:
    """Child processes, stopped at the end whatever happens."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.running.append((name, proc))
        return proc

    def tail(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def check(self) -> None:
        for name, proc in self.running:
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def stop(self) -> None:
        for _, proc in reversed(self.running):
            proc.terminate()
        for _, proc in self.running:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait(what: str, ready: Any, procs: Processes, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs.check()
        try:
            if ready():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    logs = "\n".join(f"--- {name}:\n{procs.tail(name)}" for name, _ in procs.running)
    raise AssertionError(f"{what} within {timeout_s:g} s\n{logs}")


def _prometheus_config(path: Path, api_port: int, loop_port: int) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(PROMETHEUS_DIR / "alerts.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in (("setlist-api", api_port), ("setlist-loop", loop_port))
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _drive(api: str) -> None:
    """Simulated listeners, plus the answers they never ask for: moods, onboarding, errors."""
    from setlist.data.synthetic import generate_preset
    from setlist.simulate import ListenerModel, SimulationConfig, run_http

    model = ListenerModel.from_world(generate_preset("tiny"))
    with httpx.Client(base_url=api, timeout=10) as client:
        moods = client.get("/v1/moods").json()["moods"]
        assert moods, "the synthetic world offers no mood"
        mood = moods[0]["name"]
        assert client.get("/v1/users/nobody/recommendations", params={"mood": mood}).is_success
        assert client.post("/v1/recommendations", json={"seeds": model.item_ids[:3]}).is_success
        assert client.get("/v1/users/x/recommendations", params={"k": 0}).status_code == 422
    config = SimulationConfig(base_url=api, users=60, rate=25.0, duration_s=6.0, seed=1)
    report = run_http(config, model)
    assert report.requests > 50 and report.events_acknowledged > 0, report


def _query(prom: httpx.Client, expr: str) -> tuple[str | None, int]:
    """(error, number of series) of an instant query."""
    resp = prom.get("/api/v1/query", params={"query": expr})
    body = resp.json()
    if resp.status_code != 200 or body.get("status") != "success":
        return f"{body.get('errorType')}: {body.get('error')}", 0
    result = body["data"]["result"]
    return None, len(result) if isinstance(result, list) else 1


def _has(prom: httpx.Client, expr: str) -> bool:
    error, series = _query(prom, expr)
    assert error is None, f"{expr}: {error}"
    return series > 0


def _variable_failures(prom: httpx.Client) -> list[str]:
    """Each dashboard variable's label_values(metric, label) query must offer a value."""
    failures = []
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
            assert found, f"{path.name}: variable {variable['name']}: {variable['definition']}"
            metric, label = found.groups()
            resp = prom.get(f"/api/v1/label/{label}/values", params={"match[]": metric})
            if not resp.json().get("data"):
                failures.append(f"{path.name}: variable {variable['name']} offers no value")
    return failures


@pytest.mark.integration
@pytest.mark.skipif(
    not Path(PROMETHEUS).exists(), reason="prometheus not installed (Debian package prometheus)"
)
def test_every_panel_and_alert_runs_on_a_real_prometheus(tmp_path: Path) -> None:
    env = _env(tmp_path / "home")
    setlist = [sys.executable, "-m", "setlist"]
    trained = subprocess.run(
        [*setlist, "train", "--models", "als"], env=env, capture_output=True, text=True, timeout=300
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    api_port, loop_port, prom_port = free_port(), free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    procs = Processes(tmp_path)
    try:
        procs.start("api", [*setlist, "serve", "--port", str(api_port)], env)
        loop = ["loop", "--interval", "1", "--metrics-port", str(loop_port), "--max-ticks", "600"]
        procs.start("loop", [*setlist, *loop], env)
        config = _prometheus_config(tmp_path / "prometheus.yml", api_port, loop_port)
        procs.start(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            env,
        )
        _wait("the API was not ready", lambda: httpx.get(f"{api}/ready").is_success, procs, 90)
        prom = httpx.Client(base_url=f"http://127.0.0.1:{prom_port}", timeout=10)
        _wait("targets were not up", lambda: _has(prom, "count(up == 1) == 2"), procs, 60)
        _drive(api)
        # The loop needs two drift windows of the champion's traffic before it checks one.
        checked = "count(setlist_drift_score) > 0"
        _wait("the loop did not report a drift check", lambda: _has(prom, checked), procs, 60)
        time.sleep(3)  # a few scrapes after the last answers
        failures = []
        for q in _dashboard_queries() + _alert_queries():
            error, series = _query(prom, _concrete(q.expr))
            if error is not None:
                failures.append(f"{q.where}: {error}\n    {q.expr}")
            elif q.panel and series == 0:
                failures.append(f"{q.where}: no series\n    {q.expr}")
        failures += _variable_failures(prom)
        assert not failures, "\n".join(failures)
    finally:
        procs.stop()
