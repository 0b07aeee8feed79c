"""Live service figures from the API's ``/metrics`` (Prometheus text), for the dashboard.

The dashboard has no Prometheus server to query, so it reads the scrape endpoint itself and
derives what an operator looks at first: requests per route and arm, latency quantiles (from
the histogram buckets, as Prometheus' ``histogram_quantile`` does), the share of answers given
by the popularity fallback (by the answers' strategy: a new listener answered from a mood or
their picks is not a fallback, though the service counts it as an ``unknown_user``), and the
event counters, each under a label a person reads (:data:`COUNTERS`). Rates need two scrapes:
the page keeps the previous :class:`ServiceFigures` and divides the difference by the time
between them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

REQUESTS = "setlist_http_requests"
LATENCY = "setlist_http_request_duration_seconds"
FALLBACKS = "setlist_recommendation_fallbacks"
ANSWERS = "setlist_recommendations"
POPULAR = "popular_fallback"
COUNTERS = {  # the event counters shown, labelled; the rest of /metrics is for Prometheus
    "setlist_events_received": "Events received",
    "setlist_events_stored": "Events stored (not resends)",
    "setlist_events_publish_failures": "Unpublished batches",
    "setlist_online_events_applied": "Events folded into live tastes",
    "setlist_online_updater_failures": "Live-taste updater errors",
}
RECOMMEND_ROUTES = ("/v1/users/{user_id}/recommendations", "/v1/recommendations")


@dataclass
class ServiceFigures:
    """What one scrape says (counters are totals since the service started)."""

    at: float
    requests: dict[tuple[str, str, str], float] = field(default_factory=dict)  # route,status,arm
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    fallbacks: dict[str, float] = field(default_factory=dict)  # reason -> count
    answers: dict[str, float] = field(default_factory=dict)  # strategy -> count
    models: list[dict[str, str]] = field(default_factory=list)
    counters: dict[str, float] = field(default_factory=dict)  # label (COUNTERS) -> count

    @property
    def total(self) -> float:
        return sum(self.requests.values())

    def by(self, position: int) -> dict[str, float]:
        """Requests summed by route (0), status (1) or arm (2)."""
        out: dict[str, float] = defaultdict(float)
        for key, value in self.requests.items():
            out[key[position]] += value
        return dict(out)

    @property
    def recommendations(self) -> float:
        return sum(v for (route, _, _), v in self.requests.items() if route in RECOMMEND_ROUTES)

    @property
    def fallback_rate(self) -> float | None:
        """Share of answers given by the popularity fallback; None before any.

        From the answers by strategy where the service counts them (the fallback counter also
        counts the app's anonymous sessions, answered from a mood or their picks); from the
        fallback counter over the recommendation requests for an older service."""
        answered = sum(self.answers.values())
        if answered:
            return self.answers.get(POPULAR, 0.0) / answered
        asked = self.recommendations
        return sum(self.fallbacks.values()) / asked if asked else None

    def quantile(self, q: float) -> float | None:
        """Latency quantile in seconds over all routes, interpolated within its bucket."""
        return histogram_quantile(q, self.buckets)


def parse(text: str, at: float) -> ServiceFigures:
    """The figures of one scrape taken at ``at`` (seconds, any clock)."""
    figures = ServiceFigures(at=at)
    buckets: dict[float, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == f"{REQUESTS}_total":
                key = (labels.get("route", ""), labels.get("status", ""), labels.get("arm", ""))
                figures.requests[key] = figures.requests.get(key, 0.0) + sample.value
            elif sample.name == f"{LATENCY}_bucket":
                buckets[float(labels["le"])] += sample.value
            elif sample.name == f"{FALLBACKS}_total":
                reason = labels.get("reason", "")
                figures.fallbacks[reason] = figures.fallbacks.get(reason, 0.0) + sample.value
            elif sample.name == f"{ANSWERS}_total":
                strategy = labels.get("strategy", "")
                figures.answers[strategy] = figures.answers.get(strategy, 0.0) + sample.value
            elif sample.name == "setlist_model_info" and sample.value > 0:
                figures.models.append(dict(labels))
            elif sample.name.removesuffix("_total") in COUNTERS and sample.name.endswith("_total"):
                label = COUNTERS[sample.name.removesuffix("_total")]
                figures.counters[label] = figures.counters.get(label, 0.0) + sample.value
    figures.buckets = dict(sorted(buckets.items()))
    return figures


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' estimate: linear interpolation inside the bucket holding the quantile."""
    if not buckets:
        return None
    edges = sorted(buckets)
    total = buckets[edges[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if math.isinf(edge):
                return lower
            width = count - below
            return lower + (edge - lower) * ((rank - below) / width if width else 1.0)
        lower, below = edge, count
    return lower


def rate(now: ServiceFigures, before: ServiceFigures | None) -> float | None:
    """Requests per second between two scrapes; None with one scrape or a restarted service."""
    if before is None or now.at <= before.at or now.total < before.total:
        return None
    return (now.total - before.total) / (now.at - before.at)
