"""The read-only routes the app needs (search, artists, history, stats, versions, event figures)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from setlist.serve import create_app
from setlist.serve.api.routes.catalogue import _shown_playlists, fold
from tests.serve.conftest import make_settings
from tests.serve.organic import save_organic_version
from tests.serve.tagged import save_tagged_bundle


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root: Path = tmp_path_factory.mktemp("catalogue")
    save_organic_version(root / "home" / "organic")  # names the shown playlists
    app = create_app(make_settings(root / "home"), save_tagged_bundle(root / "bundle"))
    with TestClient(app) as c:
        yield c


def test_search_prefix_first_then_most_heard(client: TestClient) -> None:
    found = client.get("/v1/catalogue/search", params={"q": "A"}).json()["items"]
    names = [a["name"] for a in found]
    assert names[:2] == ["Alpha", "AC/DC"]  # prefix matches, most heard first
    assert set(names[2:]) == {"Beta", "Gamma"}  # then the rest containing "a"
    assert found[0]["url"] == "https://example.org/a" and found[0]["listeners"] == 4
    assert (
        client.get("/v1/catalogue/search", params={"q": "björ"}).json()["items"][0]["item_id"]
        == "Björk"
    )
    assert client.get("/v1/catalogue/search", params={"q": "zzz"}).json()["items"] == []
    assert client.get("/v1/catalogue/search", params={"q": "a", "limit": 1}).json()["items"]
    top = client.get("/v1/catalogue/search", params={"limit": 3}).json()["items"]
    assert [a["name"] for a in top] == ["Alpha", "Beta", "Ex"]  # no q: the most heard
    assert client.get("/v1/catalogue/search", params={"limit": 20_001}).status_code == 422


@pytest.mark.parametrize("q", ["bjork", "BJÖRK", "Bjo\u0308rk", "jörk"])
def test_search_ignores_accents_and_case(client: TestClient, q: str) -> None:
    # "Bjo\u0308rk": o + a combining diaeresis, how macOS keyboards may send it
    found = client.get("/v1/catalogue/search", params={"q": q}).json()["items"]
    assert [a["item_id"] for a in found] == ["Björk"], q


def test_fold() -> None:
    assert fold("Motörhead") == fold("MOTORHEAD") == "motorhead"
    assert fold("Beyoncé") == "beyonce" and fold("Straße") == "strasse"
    assert fold("AC/DC") == "ac/dc" and fold("ユーザー") == "ユーザー"


def test_artists_by_id_skip_unknown(client: TestClient) -> None:
    found = client.get("/v1/catalogue/artists", params={"item_id": ["AC/DC", "nope", "x"]})
    assert [a["item_id"] for a in found.json()["items"]] == ["AC/DC", "x"]
    too_many = client.get("/v1/catalogue/artists", params={"item_id": [str(i) for i in range(101)]})
    assert too_many.status_code == 422


def test_history_of_a_listener(client: TestClient) -> None:
    body = client.get("/v1/users/u1/history").json()
    assert body["artists"] == 3 and body["plays"] == 9
    assert [a["item_id"] for a in body["top_artists"]] == ["a", "b", "c"]
    assert body["top_tags"][0]["name"] in ("chill", "rock")
    assert client.get("/v1/users/%E3%83%A6%E3%83%BC%E3%82%B6%E3%83%BC/history").status_code == 200
    missing = client.get("/v1/users/nobody/history")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "user_id"


def test_dataset_stats(client: TestClient) -> None:
    body = client.get("/v1/stats").json()
    assert (body["listeners"], body["artists"], body["interactions"]) == (6, 8, 19)
    assert body["plays"] == 42 and body["density"] == pytest.approx(19 / 48)
    assert sum(b["count"] for b in body["plays_per_interaction"]) == 19
    assert sum(b["count"] for b in body["artists_per_listener"]) == 6
    assert all(b["low"] <= b["high"] for b in body["listeners_per_artist"])
    assert body["top_artists"][0]["name"] == "Alpha"
    assert body["top_tags"][0] == {"name": "rock", "count": 17.0, "item_id": None}


def test_versions_of_a_bundle_folder_are_the_served_one(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["served"] == "local" and [v["version"] for v in body["versions"]] == ["local"]


def test_event_figures(client: TestClient) -> None:
    day1 = datetime.now(UTC) - timedelta(days=1)
    day2 = datetime.now(UTC)

    def ev(n: int, user: str, item: str, kind: str, ts: datetime, **extra: object) -> dict:
        return {"event_id": f"t-{n}", "user_id": user, "item_id": item, "type": kind,
                "ts": ts.isoformat(), **extra}  # fmt: skip

    events = [
        ev(1, "newbie", "x", "impression", day1, position=0),
        ev(2, "newbie", "y", "impression", day1, position=1),
        ev(3, "newbie", "x", "listen", day1),  # shown before: recommended
        ev(4, "u1", "z", "listen", day1),  # organic
        ev(5, "u1", "a", "like", day2, arm="local", position=0),  # from a slate
        ev(6, "u2", "x", "impression", day2),  # a known listener: not a newcomer
        ev(7, "u2", "c", "skip", day2),
        ev(8, "u2", "c", "playlist_play", day2, playlist_id="pl1"),  # an organic playlist
        # organic playlists shown (the ranker's tiny table: 10 Alphas, 11 Exes, 12 Big)
        ev(9, "newbie", "11", "playlist_impression", day1, playlist_id="11", position=0),
        ev(10, "newbie", "10", "playlist_impression", day1, playlist_id="10", position=1),
        ev(11, "newbie2", "11", "playlist_impression", day2, playlist_id="11", position=0),
        ev(12, "newbie2", "gone", "playlist_impression", day2, playlist_id="gone"),  # not in it
        ev(13, "u1", "12", "playlist_impression", day2, playlist_id="12"),  # known: not new
    ]
    assert client.post("/v1/events", json={"events": events}).status_code == 200
    body = client.get("/v1/stats/events").json()
    assert body["events"] == 13
    assert {r["name"]: r["count"] for r in body["by_type"]} == {
        "impression": 3, "listen": 2, "like": 1, "skip": 1, "playlist_play": 1,
        "playlist_impression": 5,
    }  # fmt: skip
    assert [(r["name"], r["count"]) for r in body["new_listener_playlists"]] == [
        ("Exes", 2.0), ("Alphas", 1.0), ("gone", 1.0)
    ]  # fmt: skip
    assert {(r["day"], r["name"], r["count"]) for r in body["playlist_listening"]} == {
        (day1.strftime("%Y-%m-%d"), "the rest", 2),
        (day2.strftime("%Y-%m-%d"), "organic playlists", 1),
    }
    by_source: dict[str, int] = {}
    for row in body["listening"]:
        by_source[row["name"]] = by_source.get(row["name"], 0) + row["count"]
    assert by_source == {"recommended": 2, "organic": 1}
    assert {r["name"]: r["count"] for r in body["new_listener_recommendations"]} == {
        "Ex": 1, "Why": 1
    }  # fmt: skip
    moods = {(r["name"], r["count"]) for r in body["moods"]}
    assert ("party", 1) in moods  # x is tagged party; z chillout; a chill
    assert any(name == "chill" for name, _ in moods)


def test_shown_playlists_without_a_ranker_and_with_shared_names() -> None:
    shown = pl.DataFrame({"playlist_id": ["7", "8", "8", "9", "7", "8"]})
    assert [(c.name, c.count) for c in _shown_playlists(shown, None)] == [
        ("8", 3.0), ("7", 2.0), ("9", 1.0)
    ]  # fmt: skip
    table = pl.DataFrame({"pid": ["7", "8", "9"], "name": ["chill", "chill", ""]})
    assert [c.name for c in _shown_playlists(shown, table)] == ["chill (8)", "chill (7)", "9"]
    assert _shown_playlists(shown.clear(), table) == []


def test_no_events_no_figures(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "home"), save_tagged_bundle(tmp_path / "bundle"))
    with TestClient(app) as empty:
        body = empty.get("/v1/stats/events").json()
    assert body["events"] == 0
    assert body["new_listener_recommendations"] == body["new_listener_playlists"] == []


def test_buddies_of_a_new_listener_from_picked_artists(client: TestClient) -> None:
    body = client.post("/v1/buddies", json={"seeds": ["x", "Björk", "nope"], "k": 3}).json()
    assert body["seeds"] == ["x", "Björk"] and body["unknown_seeds"] == ["nope"]
    buddies = {b["user_id"]: b for b in body["items"]}
    assert {"u4", "u5"} <= set(buddies)  # the two who heard both; u1..u3 share nothing
    assert not {"u1", "u2", "u3"} & set(buddies)
    sims = [b["similarity"] for b in body["items"]]
    assert all(0 < s <= 1 for s in sims)
    none = client.post("/v1/buddies", json={"seeds": ["nope"]})
    assert none.status_code == 404 and none.json()["error"]["field"] == "seeds"
    assert client.post("/v1/buddies", json={}).status_code == 422
    too_many = client.post("/v1/buddies", json={"seeds": [str(i) for i in range(1001)]})
    assert too_many.status_code == 422
