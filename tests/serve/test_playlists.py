"""The playlist routes: continue a new playlist, read a training playlist, search tracks.

Served from a tiny playlist catalogue (item-kNN on a binary playlist x track matrix) beside
the artists catalogue; the continuation is compared with the Continuer it must serve through.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle
from setlist.models.continuation import Continuer
from setlist.models.title import TitleModel
from setlist.serve import create_app
from tests.monitor.promtext import total
from tests.serve.conftest import make_settings
from tests.serve.playlists import PLAYLISTS, TRACKS, save_playlist_bundle

CONTINUE = "/v1/playlists/continue"


@pytest.fixture(scope="module")
def playlists_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_playlist_bundle(tmp_path_factory.mktemp("playlists") / "bundle")


@pytest.fixture(scope="module")
def both(
    bundle_dir: Path, playlists_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("home"))
    app = create_app(settings, {"artists": bundle_dir, "tracks": playlists_dir})
    with TestClient(app) as client:
        yield client


def _continue(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post(CONTINUE, json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _ids(body: dict[str, Any]) -> list[str]:
    return [str(i["item_id"]) for i in body["items"]]


def _expected(bundle: ModelBundle, seeds: list[str], name: str | None, k: int) -> list[str]:
    """The Continuer's own top k (seeds removed), straight from the model and title model."""
    names = {pid: n for pid, (n, _, _) in PLAYLISTS.items()}
    title = TitleModel([names[p] for p in bundle.users.ids.tolist()], bundle.seen)
    rows = np.array([bundle.items.get(s) for s in seeds], dtype=np.int64)
    scored = Continuer(bundle.model, title).scores(rows, name)
    assert scored is not None
    scores, _ = scored
    order = [r for r in np.argsort(-scores, kind="stable").tolist() if r not in set(rows.tolist())]
    return [str(bundle.items.ids[r]) for r in order[:k]]


def test_seeds_continue_through_the_continuer(both: TestClient, playlists_dir: Path) -> None:
    body = _continue(both, tracks=["spotify:track:j1", "spotify:track:nope"], k=4)
    assert body["strategy"] == "seeds"
    assert body["unknown_tracks"] == ["spotify:track:nope"]
    assert body["model_version"] == "local"
    ids = _ids(body)
    assert "spotify:track:j1" not in ids and len(ids) == len(set(ids)) == 4
    expected = _expected(ModelBundle.load(playlists_dir), ["spotify:track:j1"], None, 4)
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    # Same items as the Continuer's ranking (ties may come in another order).
    assert set(ids) == set(expected)
    first = body["items"][0]
    assert first["item_id"] == "spotify:track:j2"  # on both jazz playlists with j1
    assert (first["name"], first["artist"]) == TRACKS["spotify:track:j2"]
    # item-kNN attributes nothing itself: the reason is co-occurrence on training playlists.
    assert first["because"] == [
        {"kind": "seed", "item_id": "spotify:track:j1", "name": "Blue Smoke", "contribution": 2.0}
    ]


def test_a_name_alone_continues_by_title(both: TestClient) -> None:
    body = _continue(both, name="ROCK classics!", k=3)
    assert body["strategy"] == "title"
    rock = {t for t, (_, artist) in TRACKS.items() if artist in ("The Rockers", "Granite")}
    assert set(_ids(body)) <= rock
    for item in body["items"]:
        (reason,) = item["because"]
        assert reason["kind"] == "title" and reason["item_id"] is None
        assert reason["name"] == "playlists named like 'ROCK classics!'"
        assert reason["contribution"] > 0


def test_seeds_and_name_blend_and_never_repeat_a_seed(both: TestClient) -> None:
    seeds = ["spotify:track:r1", "spotify:track:r1", "spotify:track:r2"]
    body = _continue(both, name="rock", tracks=seeds, k=500)
    assert body["strategy"] == "seeds_title"
    ids = _ids(body)
    assert not {"spotify:track:r1", "spotify:track:r2"} & set(ids)
    assert len(ids) == len(set(ids)) == len(TRACKS) - 2  # every other track, each once
    kinds = {r["kind"] for i in body["items"] for r in i["because"]}
    assert kinds == {"seed", "title"}


@pytest.mark.parametrize("body", [{}, {"name": "zzz unheard words"}, {"tracks": ["nope"]}])
def test_nothing_to_go_on_gives_the_popular_tracks(both: TestClient, body: Any) -> None:
    found = _continue(both, **body, k=3)
    assert found["strategy"] == "popular"
    assert [i["score"] for i in found["items"]] == [3.0, 3.0, 3.0]  # on three playlists each
    assert set(_ids(found)) == {"spotify:track:j1", "spotify:track:p1", "spotify:track:r1"}
    assert found["unknown_tracks"] == body.get("tracks", [])


def test_exclusions_and_seeds_apply_to_popular_too(both: TestClient) -> None:
    found = _continue(both, tracks=["spotify:track:p1"], exclude=["spotify:track:j1"], k=8)
    assert not {"spotify:track:p1", "spotify:track:j1"} & set(_ids(found))
    found = _continue(both, name="nothing matches", exclude=["spotify:track:j1"], k=2)
    assert found["strategy"] == "popular"
    assert "spotify:track:j1" not in _ids(found)


def test_blocked_items_never_continue_a_playlist(
    bundle_dir: Path, playlists_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, rank_blocked_items="spotify:track:j2")
    app = create_app(settings, {"artists": bundle_dir, "tracks": playlists_dir})
    with TestClient(app) as client:
        body = _continue(client, tracks=["spotify:track:j1"], k=7)
        assert body["items"] and "spotify:track:j2" not in _ids(body)


def test_a_training_playlist_with_its_tracks_named(both: TestClient) -> None:
    body = both.get("/v1/playlists/103").json()
    name, followers, tracks = PLAYLISTS["103"]
    assert body == {
        "pid": "103",
        "name": name,
        "num_followers": followers,
        "tracks": [{"item_id": t, "name": TRACKS[t][0], "artist": TRACKS[t][1]} for t in tracks],
    }
    missing = both.get("/v1/playlists/no-such-pid")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert (error["code"], error["field"]) == ("not_found", "pid")
    assert "no-such-pid" in error["message"]


def test_track_search_by_track_or_artist_name(both: TestClient) -> None:
    by_artist = both.get("/v1/tracks/search", params={"q": "GRANITE"}).json()
    assert [i["item_id"] for i in by_artist["items"]] == ["spotify:track:r3", "spotify:track:r4"]
    assert by_artist["items"][0] == {
        "item_id": "spotify:track:r3",
        "name": "Stone Song",
        "artist": "Granite",
        "playlists": 2,
    }
    # Prefix matches first ("Late Set", "Loud Night" on two playlists each), then those with
    # "l" inside ("Blue Smoke", "Hit Single", on three), each group most popular first.
    found = both.get("/v1/tracks/search", params={"q": "l", "limit": 4}).json()["items"]
    ids = [i["item_id"] for i in found]
    assert set(ids[:2]) == {"spotify:track:j2", "spotify:track:r4"}
    assert set(ids[2:]) == {"spotify:track:j1", "spotify:track:p1"}
    popular = both.get("/v1/tracks/search", params={"limit": 2}).json()["items"]
    assert [i["playlists"] for i in popular] == [3, 3]
    assert both.get("/v1/tracks/search", params={"q": "zzz"}).json()["items"] == []


def test_answers_are_counted_under_the_tracks_catalogue(both: TestClient) -> None:
    def count() -> float:
        text = both.get("/metrics").text
        return total(text, "setlist_recommendations_total", catalogue="tracks", strategy="seeds")

    before = count()
    _continue(both, tracks=["spotify:track:r1"])
    assert count() == before + 1
