"""Canary analysis and the staging load test: figures read from the service's own /metrics.

A canary is judged against the stable version serving at the same time, on what the service
already exports (``setlist.serve.runtime.metrics``), never on numbers of its own:

- **error rate**: 5xx answers over all answers of the arm's routes (``setlist_http_requests``
  with ``arm != "none"``: health, readiness and scrapes answer for no arm and are left out);
- **p99 latency**: the 0.99 quantile of ``setlist_http_request_duration_seconds`` over the same
  routes, interpolated in the histogram's buckets as PromQL's ``histogram_quantile`` does;
- **listen-through**: ``listen`` events over ``impression`` events credited to the arm
  (``setlist_events_ingested``), docs/monitoring.md's per-arm ratio.

Each figure is the increase between two scrapes (``window_s`` apart) when a window is given,
else the counters since each process started. The two arms are either two Deployments (two
URLs, every arm of each) or two A/B arms of one service (``SETLIST_AB_ARMS``: one URL, an arm
name each). The verdict: ``promote`` when every check passes, ``rollback`` when one fails, and
``wait`` when the canary has answered too few requests to judge (the caller decides whether
waiting longer is possible; CI treats it as a rollback).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import httpx
from prometheus_client.parser import text_string_to_metric_families

from setlist.errors import ConfigError, DataError

NO_ARM = "none"  # setlist.serve.runtime.metrics.NO_ARM: requests no arm answered
Verdict = Literal["promote", "rollback", "wait"]


@dataclass(frozen=True)
class ArmFigures:
    """Cumulative counters of one arm (or every arm of one service) at one scrape."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count)
    listens: float = 0.0
    impressions: float = 0.0

    def minus(self, earlier: ArmFigures) -> ArmFigures:
        """The increase since ``earlier`` (a restart in between resets counters: then the
        later figures alone)."""
        if self.requests < earlier.requests:
            return self
        before = dict(earlier.buckets)
        return ArmFigures(
            requests=self.requests - earlier.requests,
            errors=self.errors - earlier.errors,
            buckets=tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets),
            listens=self.listens - earlier.listens,
            impressions=self.impressions - earlier.impressions,
        )

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def listen_through(self) -> float:
        return self.listens / self.impressions if self.impressions else math.nan

    def quantile(self, q: float) -> float:
        return histogram_quantile(q, self.buckets)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """PromQL's ``histogram_quantile``: linear inside the bucket that holds the rank; the
    highest finite bound when the rank falls in ``+Inf``; NaN without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return math.nan
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def parse_figures(text: str, arm: str | None = None) -> ArmFigures:
    """The figures of ``arm`` (every arm that answered, when None) in a /metrics scrape."""

    def wanted(labels: dict[str, str]) -> bool:
        given = labels.get("arm", NO_ARM)
        return given == arm if arm is not None else given != NO_ARM

    requests = errors = listens = impressions = 0.0
    buckets: dict[float, float] = defaultdict(float)
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise DataError(f"not a Prometheus exposition: {exc}") from exc
    for family in families:
        for sample in family.samples:
            if not wanted(sample.labels):
                continue
            if sample.name == "setlist_http_requests_total":
                requests += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    errors += sample.value
            elif sample.name == "setlist_http_request_duration_seconds_bucket":
                buckets[float(sample.labels["le"])] += sample.value
            elif sample.name == "setlist_events_ingested_total":
                if sample.labels.get("type") == "listen":
                    listens += sample.value
                elif sample.labels.get("type") == "impression":
                    impressions += sample.value
    return ArmFigures(requests, errors, tuple(sorted(buckets.items())), listens, impressions)


@dataclass(frozen=True)
class Thresholds:
    """What a canary must show to be promoted (defaults: the README's "Deploying")."""

    min_requests: int = 200  # fewer canary answers than this: ``wait``
    max_error_rate: float = 0.01  # absolute ceiling of the canary's 5xx share
    max_error_rate_increase: float = 0.005  # over the stable arm's
    max_p99_ratio: float = 1.25  # canary p99 over stable p99 ...
    p99_slack_s: float = 0.025  # ... plus this (p99 of a fast service is a few buckets)
    max_listen_through_drop: float = 0.02  # stable - canary, when both have impressions
    min_impressions: int = 100  # per arm, for listen-through to count


@dataclass(frozen=True)
class Check:
    name: str
    canary: float
    stable: float
    limit: float
    passed: bool
    note: str = ""


@dataclass
class Decision:
    verdict: Verdict
    checks: list[Check] = field(default_factory=list)
    canary: ArmFigures = field(default_factory=ArmFigures)
    stable: ArmFigures = field(default_factory=ArmFigures)

    def to_json(self) -> str:
        def finite(value: float) -> float | None:
            return value if math.isfinite(value) else None

        body = {
            "verdict": self.verdict,
            "checks": [
                {**asdict(c), **{k: finite(getattr(c, k)) for k in ("canary", "stable", "limit")}}
                for c in self.checks
            ],
            "requests": {"canary": self.canary.requests, "stable": self.stable.requests},
        }
        return json.dumps(body, indent=2)


def decide(canary: ArmFigures, stable: ArmFigures, thresholds: Thresholds) -> Decision:
    """Promote, roll back, or wait: the canary against the stable arm of the same window."""
    t = thresholds
    if canary.requests < t.min_requests:
        note = f"{canary.requests:.0f} canary requests, {t.min_requests} needed"
        check = Check("requests", canary.requests, stable.requests, t.min_requests, False, note)
        return Decision("wait", [check], canary, stable)
    checks = [
        Check(
            "error_rate",
            canary.error_rate,
            stable.error_rate,
            t.max_error_rate,
            canary.error_rate <= t.max_error_rate,
        ),
        Check(
            "error_rate_increase",
            canary.error_rate,
            stable.error_rate,
            stable.error_rate + t.max_error_rate_increase,
            canary.error_rate <= stable.error_rate + t.max_error_rate_increase,
        ),
    ]
    canary_p99, stable_p99 = canary.quantile(0.99), stable.quantile(0.99)
    if math.isnan(stable_p99):
        checks.append(Check("p99_s", canary_p99, stable_p99, math.nan, True, "no stable traffic"))
    else:
        limit = stable_p99 * t.max_p99_ratio + t.p99_slack_s
        checks.append(Check("p99_s", canary_p99, stable_p99, limit, canary_p99 <= limit))
    if min(canary.impressions, stable.impressions) >= t.min_impressions:
        limit = stable.listen_through - t.max_listen_through_drop
        passed = canary.listen_through >= limit
        checks.append(
            Check("listen_through", canary.listen_through, stable.listen_through, limit, passed)
        )
    else:
        note = f"fewer than {t.min_impressions} impressions on an arm: not judged"
        checks.append(
            Check(
                "listen_through",
                canary.listen_through,
                stable.listen_through,
                math.nan,
                True,
                note,
            )
        )
    verdict: Verdict = "promote" if all(c.passed for c in checks) else "rollback"
    return Decision(verdict, checks, canary, stable)


def metrics_url(url: str) -> str:
    """``http://host:port`` -> ``http://host:port/metrics``; a URL with a path is kept."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"not an http(s) URL: {url!r}")
    rest = url.split("://", 1)[1]
    return url if "/" in rest.rstrip("/") else url.rstrip("/") + "/metrics"


def scrape(client: httpx.Client, url: str, arm: str | None) -> ArmFigures:
    try:
        response = client.get(metrics_url(url))
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise DataError(f"cannot scrape {metrics_url(url)}: {exc}") from exc
    return parse_figures(response.text, arm)


def observe(
    stable_url: str,
    canary_url: str,
    *,
    stable_arm: str | None = None,
    canary_arm: str | None = None,
    window_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[ArmFigures, ArmFigures]:
    """(canary, stable) figures over ``window_s`` (since start-up when 0)."""
    with httpx.Client(timeout=10.0) as client:
        first = (scrape(client, canary_url, canary_arm), scrape(client, stable_url, stable_arm))
        if window_s <= 0:
            return first
        sleep(window_s)
        canary = scrape(client, canary_url, canary_arm).minus(first[0])
        stable = scrape(client, stable_url, stable_arm).minus(first[1])
    return canary, stable


# ---------------------------------------------------------------- the load test


@dataclass
class LoadResult:
    url: str
    requests: int
    errors: int  # 5xx and transport failures
    statuses: dict[str, int]
    p50_s: float
    p99_s: float
    duration_s: float
    max_error_rate: float
    max_p99_s: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 1.0

    @property
    def passed(self) -> bool:
        return (
            self.requests > 0
            and self.error_rate <= self.max_error_rate
            and self.p99_s <= self.max_p99_s
        )

    def to_json(self) -> str:
        body = {**asdict(self), "error_rate": self.error_rate, "passed": self.passed}
        return json.dumps(body, indent=2)


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1)]


def load_test(
    url: str,
    paths: Iterable[str],
    *,
    requests: int,
    concurrency: int,
    max_error_rate: float,
    max_p99_s: float,
    users: int = 1000,
    seed: int = 0,
) -> LoadResult:
    """``requests`` GETs spread over ``paths`` (``{user}`` filled with one of ``users`` ids)
    by ``concurrency`` threads; the thresholds are only recorded here, judged by ``passed``."""
    templates = list(paths)
    if not templates or requests < 1 or concurrency < 1:
        raise ConfigError("a load test needs at least one path, request and thread")
    rng = random.Random(seed)
    plan = [
        rng.choice(templates).replace("{user}", f"load-{rng.randrange(users)}")
        for _ in range(requests)
    ]
    latencies: list[float] = []
    statuses: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    cursor = iter(plan)

    def worker() -> None:
        with httpx.Client(base_url=url.rstrip("/"), timeout=10.0) as client:
            while True:
                with lock:
                    path = next(cursor, None)
                if path is None:
                    return
                start = time.perf_counter()
                try:
                    status = str(client.get(path).status_code)
                except httpx.HTTPError:
                    status = "failed"
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    statuses[status] += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    errors = sum(n for s, n in statuses.items() if s == "failed" or s.startswith("5"))
    return LoadResult(
        url=url,
        requests=len(ordered),
        errors=errors,
        statuses=dict(sorted(statuses.items())),
        p50_s=_quantile(ordered, 0.5),
        p99_s=_quantile(ordered, 0.99),
        duration_s=time.perf_counter() - began,
        max_error_rate=max_error_rate,
        max_p99_s=max_p99_s,
    )
