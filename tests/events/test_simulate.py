"""The simulator: hidden tastes drive reactions; it talks to loopback only, within bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from setlist.data.synthetic import generate_world
from setlist.errors import ConfigError
from setlist.events.schema import parse_data
from setlist.serve import create_app
from setlist.serve.api.service import service_of
from setlist.simulate import (
    ListenerModel,
    SimulationConfig,
    SimulationReport,
    _one_request,
    check_bounds,
    check_loopback,
    slate_events,
)
from tests.serve.conftest import TestClient, make_settings


@pytest.fixture(scope="module")
def listeners() -> ListenerModel:
    return ListenerModel.from_world(generate_world(150, 80, n_genres=5, seed=2))


def test_tastes_are_distributions_and_drive_listening(listeners: ListenerModel) -> None:
    assert np.allclose(listeners.taste.sum(axis=1), 1.0)
    user = 0
    favourite = int(np.argmax(listeners.taste[user]))
    liked = np.flatnonzero(listeners.item_genre == favourite)
    other = np.flatnonzero(listeners.item_genre != favourite)
    rng = np.random.default_rng(0)
    name = listeners.user_ids[user]

    def listen_rate(rows: np.ndarray) -> float:
        items = [listeners.item_ids[r] for r in rows]
        listened = sum(
            kind == "listen" for _ in range(200) for _, kind, _ in listeners.react(name, items, rng)
        )
        return listened / (200 * len(items))

    assert listen_rate(liked) > listen_rate(other) + 0.1


def test_slate_events_are_valid_events(listeners: ListenerModel) -> None:
    body = {
        "model_version": "3",
        "strategy": "personalized",
        "items": [{"item_id": "artist_000001", "propensity": 0.5}, {"item_id": "b"}],
    }
    reactions = [("artist_000001", "listen", 90_000), ("b", "skip", 4_000)]
    parsed = parse_data(slate_events("u", body, reactions))
    kinds = [e.type for e in parsed.events]
    assert kinds == ["impression", "impression", "listen", "skip"]
    impressions = parsed.events[:2]
    assert impressions[0].ts == impressions[1].ts  # one request
    assert [e.propensity for e in impressions] == [0.5, 1.0]
    assert all(e.ts > impressions[0].ts for e in parsed.events[2:])


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000", "http://192.168.0.1", "http://8.8.8.8"])
def test_only_loopback_is_a_target(url: str) -> None:
    with pytest.raises(ConfigError):
        check_loopback(url)
    check_loopback("http://127.0.0.1:8000")
    check_loopback("http://localhost:8000")


def test_rate_and_duration_are_bounded() -> None:
    with pytest.raises(ConfigError):
        check_bounds(SimulationConfig("http://127.0.0.1", rate=5000))
    with pytest.raises(ConfigError):
        check_bounds(SimulationConfig("http://127.0.0.1", duration_s=86_400))


def test_one_simulated_request_against_the_service(
    listeners: ListenerModel, bundle_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", explore_mode="epsilon", explore_epsilon=0.5)
    report = SimulationReport()
    with TestClient(create_app(settings, bundle_dir)) as client:
        for _ in range(5):
            _one_request(client, listeners, "u1", 3, np.random.default_rng(1), report)
        assert not report.errors
        assert report.requests == 5
        assert report.events_acknowledged == report.events_sent >= 5
        stored = service_of(client.app).feedback.events.require().count()
    assert stored == report.events_sent
