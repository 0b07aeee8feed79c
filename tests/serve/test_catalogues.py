"""Two catalogues from one process: artists and a synthetic track catalogue, each its own model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from setlist.cli.serve import with_champions
from setlist.registry import Registry, RegistryConfig
from setlist.serve import create_app
from tests.monitor.promtext import value
from tests.serve.conftest import make_settings
from tests.serve.tracks import TRACKS, save_track_bundle

ARTISTS = {"a", "b", "c", "x", "y", "z", "AC/DC", "Björk"}


@pytest.fixture(scope="module")
def tracks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_track_bundle(tmp_path_factory.mktemp("tracks") / "bundle")


@pytest.fixture(scope="module")
def two(
    bundle_dir: Path, tracks_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("home"))
    app = create_app(settings, {"artists": bundle_dir, "tracks": tracks_dir})
    with TestClient(app) as client:
        yield client


def _ids(body: dict[str, object]) -> set[str]:
    items = body["items"]
    assert isinstance(items, list) and items
    return {str(i["item_id"]) for i in items}


def test_each_catalogue_answers_from_its_own_model(two: TestClient) -> None:
    tracks = two.get("/v1/catalogues/tracks/users/u1/recommendations", params={"k": 3}).json()
    assert tracks["strategy"] == "personalized"
    assert _ids(tracks) <= set(TRACKS) - {"t-a1", "t-b1"}  # u1's own tracks are never offered
    artists = two.get("/v1/catalogues/artists/users/u1/recommendations", params={"k": 3}).json()
    assert _ids(artists) <= ARTISTS
    # The routes without a catalogue stay the artists catalogue's, answering exactly as before.
    assert two.get("/v1/users/u1/recommendations", params={"k": 3}).json() == artists


def test_similar_items_and_onboarding_within_a_catalogue(two: TestClient) -> None:
    similar = two.get("/v1/catalogues/tracks/items/t-x1/similar", params={"k": 2}).json()
    assert similar["item_id"] == "t-x1" and _ids(similar) <= set(TRACKS) - {"t-x1"}
    picks = two.post("/v1/catalogues/tracks/recommendations", json={"seeds": ["t-x1", "a"]})
    body = picks.json()
    assert (body["strategy"], body["seeds"], body["unknown_seeds"]) == (
        "onboarding",
        ["t-x1"],
        ["a"],
    )
    assert _ids(body) <= set(TRACKS)
    assert two.get("/v1/catalogues/tracks/items/a/similar").status_code == 404  # an artist id


def test_items_carry_their_attributes(two: TestClient) -> None:
    found = two.get("/v1/catalogues/tracks/items", params={"item_id": ["t-a2", "nope"]}).json()
    assert found == {
        "catalogue": "tracks",
        "items": [
            {"item_id": "t-a2", "name": "Alpha Two", "url": None, "attributes": {"artist": "a"}}
        ],
    }


def test_an_unknown_catalogue_is_a_404_naming_it(two: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/catalogues/albums/users/u1/recommendations"),
        ("GET", "/v1/catalogues/albums/items/a/similar"),
        ("POST", "/v1/catalogues/albums/recommendations"),
    ]:
        response = two.request(method, path, json={"seeds": ["a"]})
        assert response.status_code == 404, path
        error = response.json()["error"]
        assert (error["code"], error["field"], error["value"]) == (
            "not_found",
            "catalogue",
            "albums",
        )
        assert "'albums'" in error["message"] and "tracks" in error["message"]


def test_model_and_readiness_list_every_catalogue(two: TestClient) -> None:
    listed = two.get("/v1/catalogues").json()["catalogues"]
    assert [(c["name"], c["noun"], c["registered_model"], c["ready"]) for c in listed] == [
        ("artists", "artist", "setlist", True),
        ("tracks", "track", "setlist-tracks", True),
    ]
    assert [c["items"] for c in listed] == [8, len(TRACKS)]
    model = two.get("/v1/model").json()
    assert model["version"] == "local" and model["catalogues"] == listed
    assert two.get("/ready").json()["catalogues"] == listed


def test_answers_are_counted_per_catalogue(two: TestClient) -> None:
    text = two.get("/metrics").text
    before = value(
        text,
        "setlist_recommendations_total",
        arm="local",
        catalogue="tracks",
        strategy="personalized",
    )
    two.get("/v1/catalogues/tracks/users/u2/recommendations")
    two.get("/v1/catalogues/tracks/users/nobody/recommendations")
    text = two.get("/metrics").text

    def tracks(name: str, **labels: str) -> float:
        return value(text, name, arm="local", catalogue="tracks", **labels)

    assert tracks("setlist_recommendations_total", strategy="personalized") == before + 1
    assert tracks("setlist_recommendation_fallbacks_total", reason="unknown_user") >= 1
    assert tracks("setlist_catalogue_items") == len(TRACKS)
    assert tracks("setlist_model_loaded") == 1.0
    assert value(text, "setlist_catalogue_items", arm="local", catalogue="artists") == 8


def test_a_bundle_of_another_catalogue_is_refused(tracks_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path), tracks_dir)) as client:
        response = client.get("/ready")
        assert response.status_code == 503
        assert (
            "trained for catalogue 'tracks', not 'artists'" in response.json()["error"]["message"]
        )


def test_each_catalogue_is_served_from_its_own_registered_model(
    bundle_dir: Path, tracks_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, swap_interval_s=0)  # only artists listed
    assert with_champions(settings).catalogues == settings.catalogues  # no tracks champion yet
    for name, folder in (("setlist", bundle_dir), ("setlist-tracks", tracks_dir)):
        own = settings.model_copy(update={"model_name": name})
        registry = Registry(RegistryConfig.from_settings(own))
        version = registry.log_model(
            run_name=name,
            bundle_dir=folder,
            model_type="als",
            params={},
            metrics={"ndcg@10": 0.1},
            data={"name": name},
            fit_seconds=0.1,
        )
        registry.set_alias("champion", version.version)
    # `setlist serve` serves every catalogue with a champion, listed or not.
    settings = with_champions(settings)
    assert [c.strip() for c in settings.catalogues.split(",")] == ["artists", "tracks"]
    with TestClient(create_app(settings)) as client:
        listed = client.get("/v1/catalogues").json()["catalogues"]
        assert [(c["name"], c["ready"], c["model_version"]) for c in listed] == [
            ("artists", True, "1"),
            ("tracks", True, "1"),
        ]
        tracks = client.get("/v1/catalogues/tracks/users/u4/recommendations").json()
        assert _ids(tracks) <= set(TRACKS) and tracks["arm"] == "champion"
        assert _ids(client.get("/v1/users/u4/recommendations").json()) <= ARTISTS


def test_catalogue_routes_answer_through_the_rules_and_the_policy(
    bundle_dir: Path, tracks_dir: Path, tmp_path: Path
) -> None:
    """The catalogue routes take the one answer path: blocked items and exploration hold there."""
    bundles = {"artists": bundle_dir, "tracks": tracks_dir}
    with TestClient(create_app(make_settings(tmp_path / "free"), bundles)) as client:
        free = client.get("/v1/catalogues/tracks/users/u1/recommendations", params={"k": 3})
        top = free.json()["items"][0]["item_id"]
    settings = make_settings(
        tmp_path / "ruled",
        rank_blocked_items=top,
        explore_mode="epsilon",
        explore_epsilon=1.0,
        explore_pool=5,
    )
    with TestClient(create_app(settings, bundles)) as client:
        body = client.get("/v1/catalogues/tracks/users/u1/recommendations", params={"k": 2}).json()
        assert top not in _ids(body)
        assert all(0 < item["propensity"] < 1 for item in body["items"])
        seeds = {"seeds": ["t-a1"], "k": 5}
        onboarded = client.post("/v1/catalogues/tracks/recommendations", json=seeds).json()
        assert top not in _ids(onboarded)
