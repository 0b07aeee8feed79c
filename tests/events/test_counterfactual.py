"""Off-policy estimators on a simulator where the candidate's true listen rate is known."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest

from setlist.config import ExploreConfig
from setlist.data.synthetic import generate_world
from setlist.evaluate.counterfactual import (
    LoggedImpressions,
    candidate_slates,
    estimate,
    from_event_frame,
    item_reward_model,
)
from setlist.events.store.base import FRAME_SCHEMA
from setlist.serve.answer.explore import ExplorationPolicy
from setlist.simulate import ListenerModel, simulate_logs

K = 5


@dataclass
class World:
    model: ListenerModel
    logging_scores: np.ndarray
    truth: np.ndarray  # P(listen) for every user x item

    def top(self, scores: np.ndarray) -> np.ndarray:
        return np.argsort(-scores, axis=1, kind="stable")[:, :K]

    def value(self, scores: np.ndarray) -> float:
        users = np.arange(len(self.model.user_ids))
        return self.model.true_value(self.top(scores), users)


@pytest.fixture(scope="module")
def world() -> World:
    data = generate_world(200, 60, n_genres=6, mean_items_per_user=12, seed=1)
    model = ListenerModel.from_world(data)
    n_users, n_items = len(model.user_ids), len(model.item_ids)
    items = [model.item_row[i] for i in data.interactions.get_column("item")]
    popularity = np.bincount(items, minlength=n_items).astype(np.float64)
    noise = np.random.default_rng(0).normal(0, 0.1, (n_users, n_items))
    users = np.repeat(np.arange(n_users), n_items)
    truth = model.listen_probability(users, np.tile(np.arange(n_items), n_users))
    return World(model, popularity + noise, truth.reshape(n_users, n_items))


CANDIDATES = {
    "oracle": lambda w: w.truth,  # what a perfect model would show: far better than logging
    "logging greedy": lambda w: w.logging_scores,  # the logging policy without exploration
    "anti": lambda w: -w.truth,  # the worst slates: far below logging
}


# Plackett-Luce rarely shows the "anti" candidate's items: weights of 50-100 make the percentile
# bootstrap under-cover at this log size (about 3 seeds in 20 at 99%), so it is left to epsilon,
# whose exploration floor bounds every weight (here by 1 / (0.3 * 5 / 60) = 40).
CASES = [("epsilon", c, 4000) for c in CANDIDATES] + [
    ("plackett_luce", c, 1500) for c in ("oracle", "logging greedy")
]


@pytest.mark.parametrize(("mode", "candidate", "requests"), CASES)
def test_estimates_cover_the_true_value(
    world: World, mode: str, candidate: str, requests: int
) -> None:
    scores = CANDIDATES[candidate](world)
    truth = world.value(scores)
    policy = ExplorationPolicy(
        ExploreConfig(mode=mode, epsilon=0.3, temperature=1.0, pool=60), seed=3
    )
    logged, users = simulate_logs(
        world.model, world.logging_scores, policy, requests, K, np.random.default_rng(4)
    )
    slates = world.top(scores)[users]
    q = item_reward_model(logged, len(world.model.item_ids))
    result = estimate(logged, slates, q, bootstrap=300, alpha=0.01, seed=5)
    for est in result.estimates.values():
        assert est.low <= truth <= est.high, (est, truth)
        assert est.high - est.low < 0.35, est  # informative, not just wide
    if candidate != "logging greedy":  # the naive logged rate says nothing about the candidate
        assert not result.logged.low <= truth <= result.logged.high


def test_exact_answers_on_a_hand_made_log() -> None:
    # Two requests; the candidate shows items 0 and 1 to both.
    logged = LoggedImpressions(
        request=np.array([0, 0, 1, 1]),
        item=np.array([0, 2, 1, 2]),
        propensity=np.array([0.5, 1.0, 0.25, 1.0]),
        reward=np.array([1.0, 1.0, 0.0, 1.0]),
        n_requests=2,
    )
    candidate = np.array([[0, 1], [0, 1]])
    q = np.array([0.5, 0.5, 0.5])
    result = estimate(logged, candidate, q, bootstrap=50)
    # IPS: request 0: (1/0.5)/2 = 1; request 1: 0/2 = 0 -> 0.5
    assert result.estimates["ips"].value == pytest.approx(0.5)
    # SNIPS: sum w r = 2, sum w = 2 + 4 = 6
    assert result.estimates["snips"].value == pytest.approx(2 / 6)
    # DR: request 0: (1.0 + 2*(1-0.5))/2 = 1; request 1: (1.0 + 4*(0-0.5))/2 = -0.5
    assert result.estimates["dr"].value == pytest.approx(0.25)
    assert result.logged.value == pytest.approx(0.75)
    assert result.matched == 2 and result.max_weight == pytest.approx(4.0)


def test_epsilon_propensities_are_the_real_inclusion_frequencies() -> None:
    policy = ExplorationPolicy(ExploreConfig(mode="epsilon", epsilon=0.4, pool=20), seed=0)
    ranked = list(range(30))
    counts = np.zeros(30)
    logged = {}
    for _ in range(20_000):
        slate = policy.choose(ranked, [float(-i) for i in ranked], 4)
        counts[slate.items] += 1
        logged.update(zip(slate.items, slate.propensities, strict=True))
    frequency = counts / 20_000
    for item, p in logged.items():
        assert frequency[item] == pytest.approx(p, abs=0.01)
    assert frequency[20:].sum() == 0  # nothing outside the pool is ever shown


def test_plackett_luce_propensities_match_frequencies() -> None:
    policy = ExplorationPolicy(ExploreConfig(mode="plackett_luce", temperature=0.7, pool=12), 1)
    scores = [float(s) for s in np.linspace(3, 0, 12)]
    counts = np.zeros(12)
    reported: dict[int, list[float]] = {}
    for _ in range(4000):
        slate = policy.choose(list(range(12)), scores, 3)
        counts[slate.items] += 1
        for item, p in zip(slate.items, slate.propensities, strict=True):
            reported.setdefault(item, []).append(p)
    for item, values in reported.items():
        assert np.mean(values) == pytest.approx(counts[item] / 4000, abs=0.03)


def test_impressions_and_rewards_from_stored_events() -> None:
    us = 1_000_000
    rows = [
        # user, item, type, ts_us, propensity
        ("a", "x", "impression", 100 * us, 0.5),
        ("a", "y", "impression", 100 * us, 0.25),
        ("a", "x", "listen", 101 * us, None),  # within the window: reward
        ("a", "y", "listen", 99 * us, None),  # before the impression: no reward
        ("b", "x", "impression", 100 * us, 1.0),
        ("b", "x", "like", 5000 * us, None),  # after the window: no reward
        ("b", "z", "impression", 200 * us, None),  # no propensity: skipped
        ("a", "q", "playlist_impression", 50 * us, None),  # a playlist shown: not heard
    ]
    frame = pl.DataFrame(
        [
            {"seq": i, "event_id": str(i), "user_id": u, "item_id": it, "type": t, "ts_us": ts,
             "received_us": ts, "play_ms": None, "position": None, "arm": None,
             "model_version": None, "propensity": p,
             "playlist_id": it if t.startswith("playlist_") else None}
            for i, (u, it, t, ts, p) in enumerate(rows)
        ],
        schema=FRAME_SCHEMA,
    )  # fmt: skip
    log = from_event_frame(frame, window_s=3600)
    assert log.logged.n_requests == 2
    assert log.request_users == ["a", "b"]
    assert log.item_ids == ["x", "y"]
    assert log.logged.reward.tolist() == [1.0, 0.0, 0.0]
    assert log.logged.request.tolist() == [0, 0, 1]
    assert log.without_propensity == 1
    assert log.heard == [{"y"}, set()]  # a heard y before that request: the service hid it
    codes, slates = candidate_slates({"a": ["y", "q", "x"], "b": ["x"]}, log, 2)
    assert codes == {"x": 0, "y": 1, "q": 2}
    assert slates.tolist() == [[2, 0], [0, -1]]
