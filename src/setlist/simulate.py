"""Synthetic listeners with hidden tastes: they ask for recommendations and react to them.

A listener's taste is a distribution over genres (in a synthetic world: the genres of the
artists in their history, smoothed). Shown an artist of genre g, a listener with taste t
listens with probability ``floor + span * t[g]``, then likes it with probability ``like``;
otherwise skips it with probability ``skip`` (and rarely dislikes it). The model never sees
the tastes: it only sees the listens, so the simulator measures what the service learns.

Two uses:

- :func:`run_http`: against a running service over HTTP (``setlist simulate``): each request
  fetches a user's recommendations, then posts the slate as impressions (with the propensities
  the service returned) plus the listener's reactions as one batch of events. Loopback only,
  bounded in rate and duration.
- :func:`simulate_logs`: offline, for the counterfactual tests and benchmarks, where the true
  value of any candidate is known exactly (:meth:`ListenerModel.true_value`).
"""

from __future__ import annotations

import ipaddress
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import numpy.typing as npt
import polars as pl

from setlist.data.schema import Dataset
from setlist.errors import ConfigError
from setlist.evaluate.counterfactual import LoggedImpressions
from setlist.serve.answer.explore import ExplorationPolicy

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MAX_RATE = 1000.0
MAX_DURATION_S = 3600.0


@dataclass(frozen=True)
class Behaviour:
    floor: float = 0.02
    span: float = 0.6
    like: float = 0.25
    skip: float = 0.5
    dislike: float = 0.02


class ListenerModel:
    """Hidden tastes of listeners over the genres of a catalogue."""

    def __init__(
        self,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        item_genre: IntArray,
        taste: FloatArray,
        behaviour: Behaviour | None = None,
        popularity: FloatArray | None = None,
    ) -> None:
        self.user_ids = list(user_ids)
        self.item_ids = list(item_ids)
        self.item_genre = item_genre
        self.taste = taste
        self.behaviour = behaviour or Behaviour()
        # What organic plays follow within a genre (listeners per artist); uniform if unknown.
        self.popularity = np.ones(len(self.item_ids)) if popularity is None else popularity
        self.user_row = {u: i for i, u in enumerate(self.user_ids)}
        self.item_row = {a: i for i, a in enumerate(self.item_ids)}
        self._by_genre: tuple[IntArray, IntArray, FloatArray] | None = None

    @classmethod
    def from_world(cls, dataset: Dataset, prior: float = 0.5) -> ListenerModel:
        """Tastes from a synthetic world: the genre shares of each user's artists, smoothed."""
        if dataset.item_tags is None or dataset.item_tags.height == 0:
            raise ConfigError(
                f"dataset {dataset.name!r} has no genre tags; the simulator needs a synthetic "
                "world (synthetic:tiny, synthetic:small, ...)",
                field="dataset",
            )
        primary = dataset.item_tags.group_by("item", maintain_order=True).first()
        genres = primary.get_column("tag").unique().sort().to_list()
        genre_code = {g: i for i, g in enumerate(genres)}
        items = primary.get_column("item").to_list()
        item_genre = np.array([genre_code[t] for t in primary.get_column("tag")], dtype=np.int64)
        frame = dataset.interactions.select("user", "item").join(
            primary.select("item", "tag"), on="item", how="inner"
        )
        users = frame.get_column("user").unique().sort().to_list()
        user_code = {u: i for i, u in enumerate(users)}
        rows = np.fromiter((user_code[u] for u in frame.get_column("user")), dtype=np.int64)
        cols = np.fromiter((genre_code[t] for t in frame.get_column("tag")), dtype=np.int64)
        counts = np.zeros((len(users), len(genres)))
        np.add.at(counts, (rows, cols), 1.0)
        taste = (counts + prior / len(genres)) / (counts.sum(axis=1, keepdims=True) + prior)
        listeners = dict(frame.group_by("item").agg(pl.col("user").n_unique()).iter_rows())
        popularity = np.array([listeners.get(i, 0) + 1.0 for i in items])
        return cls(users, items, item_genre, taste, popularity=popularity)

    def shifted(self, seed: int = 0) -> ListenerModel:
        """The same listeners with their tastes moved to other genres (an injected drift).

        Genres are permuted with no genre left in place, so every listener now prefers what
        they used to ignore; the catalogue and the behaviour stay the same.
        """
        n = self.taste.shape[1]
        rng = np.random.default_rng(seed)
        permutation = rng.permutation(n)
        while n > 1 and bool((permutation == np.arange(n)).any()):
            permutation = rng.permutation(n)
        return ListenerModel(
            self.user_ids, self.item_ids, self.item_genre, self.taste[:, permutation],
            self.behaviour, self.popularity,
        )  # fmt: skip

    def organic(self, user: str, n: int, rng: np.random.Generator) -> list[str]:
        """``n`` artists the listener plays on their own (not from a recommendation): a genre
        drawn from their taste, then an artist of that genre by its popularity."""
        u = self.user_row.get(user)
        if u is None or n <= 0:
            return []
        order, bounds, cumulative = self._genre_tables()
        taste = self.taste[u] * (np.diff(bounds) > 0)
        genres = rng.choice(len(taste), size=n, p=taste / taste.sum())
        picks = [
            bounds[g] + int(np.searchsorted(cumulative[bounds[g] : bounds[g + 1]], draw))
            for g, draw in zip(genres.tolist(), rng.random(n).tolist(), strict=True)
        ]
        return [self.item_ids[i] for i in order[np.minimum(picks, len(order) - 1)].tolist()]

    def _genre_tables(self) -> tuple[IntArray, IntArray, FloatArray]:
        """Items ordered by genre, each genre's bounds, and the within-genre cumulative shares."""
        if self._by_genre is None:
            order = np.argsort(self.item_genre, kind="stable")
            bounds = np.searchsorted(self.item_genre[order], np.arange(self.taste.shape[1] + 1))
            weights = self.popularity[order]
            cumulative = np.zeros(len(order))
            for g in range(len(bounds) - 1):
                part = weights[bounds[g] : bounds[g + 1]]
                if part.size:
                    cumulative[bounds[g] : bounds[g + 1]] = np.cumsum(part) / part.sum()
            self._by_genre = (order, bounds, cumulative)
        return self._by_genre

    def listen_probability(self, users: IntArray, items: IntArray) -> FloatArray:
        """P(listen) for pairs of rows (an item row of -1, unknown here, gets the floor)."""
        b = self.behaviour
        known = items >= 0
        t = np.where(known, self.taste[users, self.item_genre[np.where(known, items, 0)]], 0.0)
        return np.asarray(b.floor + b.span * t, dtype=np.float64)

    def true_value(self, slates: IntArray, users: IntArray) -> float:
        """Expected listen rate per shown item of these (users, slates), -1 padded."""
        valid = slates >= 0
        p = self.listen_probability(np.repeat(users, slates.shape[1]), slates.ravel())
        p = p.reshape(slates.shape)
        per_user = np.where(valid, p, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        return float(per_user[valid.any(axis=1)].mean())

    def react(
        self, user: str, items: Sequence[str], rng: np.random.Generator
    ) -> list[tuple[str, str, int]]:
        """(item, event type, play_ms) for what the listener does with each item shown."""
        b = self.behaviour
        u = self.user_row.get(user)
        rows = np.array([self.item_row.get(i, -1) for i in items], dtype=np.int64)
        if u is None:
            p = np.full(len(items), b.floor)
        else:
            p = self.listen_probability(np.full(len(items), u), rows)
        out: list[tuple[str, str, int]] = []
        for item, p_listen, draw in zip(
            items, p.tolist(), rng.random((len(items), 3)), strict=True
        ):
            if draw[0] < p_listen:
                out.append((item, "listen", int(60_000 + draw[1] * 240_000)))
                if draw[2] < b.like:
                    out.append((item, "like", 0))
            elif draw[1] < b.dislike:
                out.append((item, "dislike", 0))
            elif draw[1] < b.dislike + b.skip:
                out.append((item, "skip", int(2_000 + draw[2] * 20_000)))
        return out


def simulate_logs(
    model: ListenerModel,
    scores: FloatArray,
    policy: ExplorationPolicy,
    n_requests: int,
    k: int,
    rng: np.random.Generator,
) -> tuple[LoggedImpressions, IntArray]:
    """Log ``n_requests`` slates chosen by ``policy`` over ``scores`` (users x items).

    Returns the impressions (rewards drawn from the hidden tastes) and each request's user row.
    """
    users = rng.integers(0, len(model.user_ids), n_requests)
    order = np.argsort(-scores, axis=1, kind="stable")
    request, item, propensity = [], [], []
    for r, u in enumerate(users.tolist()):
        ranked = order[u].tolist()
        slate = policy.choose(ranked, scores[u, ranked].tolist(), k)
        request += [r] * len(slate.items)
        item += slate.items
        propensity += slate.propensities
    items = np.array(item, dtype=np.int64)
    req = np.array(request, dtype=np.int64)
    p = model.listen_probability(users[req], items)
    reward = (rng.random(len(items)) < p).astype(np.float64)
    logged = LoggedImpressions(req, items, np.array(propensity), reward, n_requests)
    return logged, users


@dataclass(frozen=True)
class SimulationConfig:
    base_url: str
    users: int = 100
    rate: float = 10.0  # requests per second
    duration_s: float = 10.0
    k: int = 10
    seed: int = 0
    timeout_s: float = 10.0
    api_key: str | None = field(default=None, repr=False)  # sent as X-API-Key; never printed


@dataclass
class SimulationReport:
    requests: int = 0
    events_sent: int = 0
    events_acknowledged: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    shown: Counter[str] = field(default_factory=Counter)  # by strategy
    listened: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def listen_rate(self) -> float:
        total = sum(self.shown.values())
        return sum(self.listened.values()) / total if total else float("nan")


def check_loopback(base_url: str) -> None:
    """Refuse any target that is not this machine (the simulator is a load generator)."""
    host = urlsplit(base_url).hostname or ""
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        raise ConfigError(f"cannot resolve {host!r} in {base_url!r}", field="url") from None
    if not address.is_loopback:
        raise ConfigError(
            f"the simulator only targets loopback addresses; {host!r} is {address}", field="url"
        )


def check_bounds(config: SimulationConfig) -> None:
    if not 0 < config.rate <= MAX_RATE:
        raise ConfigError(f"rate must be in (0, {MAX_RATE:g}] requests/s", field="rate")
    if not 0 < config.duration_s <= MAX_DURATION_S:
        raise ConfigError(f"duration must be in (0, {MAX_DURATION_S:g}] s", field="duration")
    if config.users < 1 or not 1 <= config.k <= 100:
        raise ConfigError("need users >= 1 and 1 <= k <= 100")


def run_http(
    config: SimulationConfig,
    model: ListenerModel,
    progress: Callable[[SimulationReport], None] | None = None,
) -> SimulationReport:
    """Drive a running service for ``duration_s`` at up to ``rate`` requests per second."""
    check_bounds(config)
    check_loopback(config.base_url)
    rng = np.random.default_rng(config.seed)
    users = rng.choice(model.user_ids, size=min(config.users, len(model.user_ids)), replace=False)
    report = SimulationReport()
    start = time.monotonic()
    headers = {"X-API-Key": config.api_key} if config.api_key else {}
    with httpx.Client(
        base_url=config.base_url, timeout=config.timeout_s, headers=headers
    ) as client:
        while (now := time.monotonic() - start) < config.duration_s:
            wait = report.requests / config.rate - now
            if wait > 0:
                time.sleep(min(wait, config.duration_s - now))
                continue
            _one_request(client, model, str(rng.choice(users)), config.k, rng, report)
            if progress is not None and report.requests % 50 == 0:
                progress(report)
    report.elapsed_s = time.monotonic() - start
    return report


def _one_request(
    client: httpx.Client,
    model: ListenerModel,
    user: str,
    k: int,
    rng: np.random.Generator,
    report: SimulationReport,
) -> None:
    report.requests += 1
    began = time.perf_counter()
    try:
        resp = client.get(f"/v1/users/{user}/recommendations", params={"k": k})
    except httpx.HTTPError as exc:
        report.errors[type(exc).__name__] += 1
        return
    report.latencies_ms.append((time.perf_counter() - began) * 1000)
    if resp.status_code != 200:
        report.errors[f"recommendations {resp.status_code}"] += 1
        return
    body = resp.json()
    events = slate_events(user, body, model.react(user, [i["item_id"] for i in body["items"]], rng))
    strategy = str(body.get("strategy", "?"))
    report.shown[strategy] += len(body["items"])
    report.listened[strategy] += sum(1 for e in events if e["type"] == "listen")
    report.events_sent += len(events)
    try:
        posted = client.post("/v1/events", json={"events": events})
    except httpx.HTTPError as exc:
        report.errors[type(exc).__name__] += 1
        return
    if posted.status_code == 200:
        report.events_acknowledged += int(posted.json()["accepted"])
    else:
        report.errors[f"events {posted.status_code}"] += 1


def slate_events(
    user: str,
    body: dict[str, Any],
    reactions: list[tuple[str, str, int]],
    shown_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """The impressions of one answer (one shared ts: one request) and the reactions after."""
    shown_at = shown_at or datetime.now(UTC)
    version = str(body.get("model_version", ""))[:128] or None
    arm = str(body.get("arm") or body.get("strategy") or "")[:128] or None
    events: list[dict[str, Any]] = []
    for position, item in enumerate(body["items"]):
        events.append(
            {
                "event_id": uuid.uuid4().hex,
                "user_id": user,
                "item_id": item["item_id"],
                "type": "impression",
                "ts": shown_at.isoformat(),
                "position": position,
                "propensity": item.get("propensity") or 1.0,
                "model_version": version,
                "arm": arm,
            }
        )
    for offset, (item_id, kind, play_ms) in enumerate(reactions, start=1):
        event: dict[str, Any] = {
            "event_id": uuid.uuid4().hex,
            "user_id": user,
            "item_id": item_id,
            "type": kind,
            "ts": (shown_at + timedelta(milliseconds=offset)).isoformat(),
            "model_version": version,
        }
        if play_ms:
            event["play_ms"] = play_ms
        events.append(event)
    return events


def latency_summary(report: SimulationReport) -> dict[str, float]:
    if not report.latencies_ms:
        return {}
    values = np.array(report.latencies_ms)
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
    }


Recommend = Callable[[str, int], dict[str, Any]]


def window_traffic(
    recommend: Recommend,
    model: ListenerModel,
    users: Sequence[str],
    requests: int,
    start: datetime,
    span_s: float,
    rng: np.random.Generator,
    k: int = 10,
    organic: int = 0,
) -> list[dict[str, Any]]:
    """Events of ``requests`` answers spread evenly over ``[start, start + span_s)``.

    ``recommend(user, k)`` returns an answer body as the API does (``items``,
    ``model_version``, ``arm``): over HTTP, or from a loaded model in-process. After each
    answer the listener also plays ``organic`` artists of their own choosing (listens with no
    model version: what they would scrobble anyway). Used to replay windows of traffic with
    known timestamps (the drift and retraining-loop tests).
    """
    events: list[dict[str, Any]] = []
    step = span_s / max(requests, 1)
    for r in range(requests):
        user = str(users[int(rng.integers(len(users)))])
        body = recommend(user, k)
        reactions = model.react(user, [i["item_id"] for i in body["items"]], rng)
        shown_at = start + timedelta(seconds=r * step)
        events += slate_events(user, body, reactions, shown_at)
        for n, item in enumerate(model.organic(user, organic, rng), start=len(reactions) + 1):
            events.append(
                {
                    "event_id": uuid.uuid4().hex,
                    "user_id": user,
                    "item_id": item,
                    "type": "listen",
                    "ts": (shown_at + timedelta(milliseconds=n)).isoformat(),
                    "play_ms": int(60_000 + rng.random() * 240_000),
                }
            )
    return events
