"""GET /v1/users/{user_id}/playlists and POST /v1/recommendations/playlists on the tiny bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle
from setlist.serve import create_app
from tests.serve.conftest import make_settings
from tests.serve.organic import save_organic_version


@pytest.fixture(scope="module")
def organic_client(
    bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("organic-home")
    save_organic_version(home / "organic")
    with TestClient(create_app(make_settings(home), bundle_dir)) as client:
        yield client


def test_a_listener_gets_playlists_with_reasons(
    organic_client: TestClient, bundle: ModelBundle
) -> None:
    response = organic_client.get("/v1/users/u1/playlists", params={"k": 3, "serendipity": 0})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["champion"] == "ranker" and body["version"].startswith("v")
    items = body["items"]
    assert len(items) == 3
    assert items[0]["playlist_id"] in {"10", "13"}  # u1 plays a, b, c: Alpha, Beta, Gamma
    first = items[0]
    assert {"playlist_id", "name", "num_followers", "num_tracks", "because"} <= set(first)
    row = bundle.users.get("u1")
    assert row is not None
    heard = {str(bundle.items.ids[c]) for c in bundle.seen[row].indices}
    for item in items:
        assert {a["item_id"] for a in item["because"]["familiar"]} <= heard
        assert not {a["item_id"] for a in item["because"]["new"]} & heard
        assert "u1" not in item["because"]["buddies"]
    assert "a" in {a["item_id"] for a in first["because"]["familiar"]}


def test_seeds_by_name_ignore_accents_and_no_seed_gets_the_most_followed(
    organic_client: TestClient,
) -> None:
    seeded = organic_client.post(
        "/v1/recommendations/playlists", json={"seeds": ["EX", "bjork"], "k": 1}
    )
    assert seeded.status_code == 200, seeded.text
    assert seeded.json()["items"][0]["name"] == "Exes"
    cold = organic_client.post(
        "/v1/recommendations/playlists", json={"seeds": ["nobody at all"], "k": 2}
    )
    assert [p["name"] for p in cold.json()["items"]] == ["Big", "Exes"]


def test_bad_input_is_named(organic_client: TestClient) -> None:
    for params, field in (({"serendipity": 1.5}, "serendipity"), ({"k": 0}, "k"), ({"k": 51}, "k")):
        bad = organic_client.get("/v1/users/u1/playlists", params=params)
        assert bad.status_code == 422, params
        assert bad.json()["error"]["field"] == field
    unknown = organic_client.get("/v1/users/nobody-here/playlists")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "user_id"
    body = organic_client.post(
        "/v1/recommendations/playlists", json={"seeds": ["a"], "serendipity": -0.1}
    )
    assert body.status_code == 422
    assert "serendipity" in body.json()["error"]["field"]


def test_without_a_saved_ranker_the_routes_say_how_to_make_one(
    bundle_dir: Path, tmp_path: Path
) -> None:
    with TestClient(create_app(make_settings(tmp_path / "home"), bundle_dir)) as client:
        response = client.get("/v1/users/u1/playlists")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["field"] == "organic_dir" and "setlist organic train" in error["message"]


def test_a_version_saved_while_serving_is_picked_up_and_a_broken_one_refused(
    bundle_dir: Path, tmp_path: Path
) -> None:
    """What the loop saves after retraining on playlist feedback reaches the routes without a
    restart (the watcher looks every swap_interval_s); a version that fails to load does not."""
    import time

    home = tmp_path / "home"
    first = save_organic_version(home / "organic")
    with TestClient(create_app(make_settings(home, swap_interval_s=0.05), bundle_dir)) as client:
        assert client.get("/v1/users/u1/playlists").json()["version"] == first.name
        time.sleep(1.1)  # versions are named by the second
        second = save_organic_version(home / "organic", champion="overlap")
        deadline = time.monotonic() + 30
        body = client.get("/v1/users/u1/playlists").json()
        while body["version"] != second.name and time.monotonic() < deadline:
            time.sleep(0.05)
            body = client.get("/v1/users/u1/playlists").json()
        assert body["version"] == second.name and body["champion"] == "overlap"
        broken = home / "organic" / "v99991231T235959Z"
        broken.mkdir()
        (broken / "meta.json").write_text("{}")  # no ranker, no playlists
        service = client.app.state.service  # type: ignore[attr-defined]
        assert not service.organic.refresh(service.artists.model.bundle)
        after = client.get("/v1/users/u1/playlists")
        assert after.status_code == 200 and after.json()["version"] == second.name
