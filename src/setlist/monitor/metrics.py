"""Prometheus metrics of the retraining loop worker (``setlist loop``), served on its own port.

The loop runs beside the API, not inside it, so it exposes its own ``/metrics``
(``loop_metrics_port``); Prometheus scrapes both jobs (``deploy/prometheus/prometheus.yml``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

OUTCOMES = ("promoted", "refused", "rolled_back", "kept", "failed", "skipped")


class LoopMetrics:
    """Drift scores, drift flags, retraining runs by trigger and outcome, the last tick."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.drift_score = Gauge(
            "setlist_drift_score",
            "Latest drift statistic per check (KS D, PSI, Cramer's V, rates, PCA error ratio, "
            "online listen-through drop).",
            ["check"],
            registry=r,
        )
        self.drift_threshold = Gauge(
            "setlist_drift_threshold", "The configured threshold per check.", ["check"], registry=r
        )
        self.drift_detected = Gauge(
            "setlist_drift_detected",
            "1 when the latest window drifted, by kind (data, performance).",
            ["kind"],
            registry=r,
        )
        self.windows = Counter(
            "setlist_drift_windows",
            "Windows checked, by outcome (drift, no_drift, too_few_events).",
            ["outcome"],
            registry=r,
        )
        self.retrain_runs = Counter(
            "setlist_retrain_runs",
            "Retraining decisions by trigger (schedule, data_drift, performance_drift, manual, "
            "probation, playlist_feedback) and outcome (promoted, refused, rolled_back, kept, "
            "failed, skipped; saved for the organic ranker's playlist_feedback).",
            ["trigger", "outcome"],
            registry=r,
        )
        self.last_tick = Gauge(
            "setlist_loop_last_tick_timestamp_seconds",
            "Unix time of the loop's last completed tick.",
            registry=r,
        )
        self.probation = Gauge(
            "setlist_loop_probation",
            "1 while a newly promoted version is on probation.",
            registry=r,
        )
        for kind in ("data", "performance"):
            self.drift_detected.labels(kind).set(0)
        self.probation.set(0)
        # Zero series from the start: increase() cannot see a counter's first step when its
        # series is born at 1, so the first failed retraining would never alert.
        for trigger in ("schedule", "data_drift", "performance_drift"):
            for outcome in ("promoted", "refused", "failed", "skipped"):
                self.retrain_runs.labels(trigger, outcome)
        for outcome in ("rolled_back", "kept"):
            self.retrain_runs.labels("probation", outcome)
        for outcome in ("saved", "refused", "failed"):
            self.retrain_runs.labels("playlist_feedback", outcome)
        for outcome in ("drift", "no_drift", "too_few_events"):
            self.windows.labels(outcome)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Expose ``/metrics`` on ``host:port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
