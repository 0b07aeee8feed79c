"""POST /v1/events over a real app: durable acks, idempotency, bad input, fresh recommendations."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setlist.events.service import EventService
from setlist.events.store import open_store
from setlist.serve import create_app
from setlist.serve.api.service import service_of
from tests.serve.conftest import make_settings

NOW = datetime.now(UTC)


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "user_id": "u1",
        "item_id": "x",
        "type": "listen",
        "ts": NOW.isoformat(),
    }
    body.update(overrides)
    return body


@pytest.fixture
def app_client(bundle_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path / "home"), bundle_dir)
    with TestClient(app) as client:
        yield client


def stored_count(client: TestClient) -> int:
    service = service_of(client.app).feedback.events
    assert isinstance(service, EventService)
    return service.require().count()


def test_one_event_is_stored_and_acknowledged(app_client: TestClient, tmp_path: Path) -> None:
    one = event(type="impression", position=0, propensity=0.5, arm="a", model_version="local")
    resp = app_client.post("/v1/events", json=one)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 1, "stored": 1, "duplicates": 0}
    with open_store(f"sqlite:///{tmp_path / 'home' / 'events.db'}") as store:
        (row,) = store.scan()
    assert row.event_id == one["event_id"] and row.propensity == 0.5 and row.position == 0


def test_a_batch_of_1000_is_accepted_in_all_three_shapes(app_client: TestClient) -> None:
    batch = [event(user_id=f"user{i % 50}") for i in range(1000)]
    assert app_client.post("/v1/events", json={"events": batch}).json()["stored"] == 1000
    assert app_client.post("/v1/events", json=[event(), event()]).json()["stored"] == 2
    assert stored_count(app_client) == 1002


def test_every_event_resent_one_to_three_times_is_stored_once(app_client: TestClient) -> None:
    originals = [event(user_id=f"user{i % 9}", item_id=f"i{i % 13}") for i in range(400)]
    rng = random.Random(5)
    copies = [e for e in originals for _ in range(rng.randint(2, 4))]
    rng.shuffle(copies)
    stored = 0
    for start in range(0, len(copies), 100):
        resp = app_client.post("/v1/events", json={"events": copies[start : start + 100]})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["accepted"] == body["stored"] + body["duplicates"]
        stored += body["stored"]
    assert stored == 400
    assert stored_count(app_client) == 400


BAD_INPUTS: list[tuple[str, Any, int, str]] = [
    ("unknown type", event(type="purchase"), 422, "type"),
    (
        "unknown type in a batch",
        {"events": [event(), event(type="purchase")]},
        422,
        "events.1.type",
    ),
    ("event id too long", event(event_id="e" * 129), 422, "event_id"),
    ("user id too long", event(user_id="u" * 257), 422, "user_id"),
    ("empty item id", event(item_id=""), 422, "item_id"),
    ("far-future ts", event(ts=(NOW + timedelta(days=2)).isoformat()), 422, "ts"),
    ("ancient ts", event(ts="1970-01-02T00:00:00Z"), 422, "ts"),
    ("not a time", event(ts="yesterday"), 422, "ts"),
    ("server-owned seq", event(seq=5), 422, "seq"),
    ("server-owned received_at", event(received_at=NOW.isoformat()), 422, "received_at"),
    ("unknown field", event(colour="red"), 422, "colour"),
    ("missing user", {k: v for k, v in event().items() if k != "user_id"}, 422, "user_id"),
    ("propensity above 1", event(propensity=1.5), 422, "propensity"),
    ("negative play_ms", event(play_ms=-1), 422, "play_ms"),
    ("batch over 1000", {"events": [event() for _ in range(1001)]}, 413, "events"),
    ("empty batch", {"events": []}, 422, "events"),
    ("events not a list", {"events": "many"}, 422, "events"),
    ("batch with extra key", {"events": [event()], "x": 1}, 422, "x"),
    ("a number", 42, 422, "body"),
    ("array of numbers", [1, 2], 422, "events.0"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "field"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_is_a_4xx_naming_the_field(
    client: TestClient, case: str, body: Any, status: int, field: str
) -> None:
    resp = client.post("/v1/events", json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["field"] == field, error
    assert error["message"].startswith(field), error
    if case.startswith("server-owned"):
        assert "set by the server" in error["message"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [(b'{"event_id": "a", ', "body"), (b"\xff\xfe not utf-8", "body"), (b"", "body")],
)
def test_malformed_json_is_a_400(client: TestClient, raw: bytes, field: str) -> None:
    resp = client.post("/v1/events", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["field"] == field
    assert resp.json()["error"]["code"] == "malformed"


def test_a_body_over_one_megabyte_is_a_413(client: TestClient) -> None:
    big = json.dumps({"events": [event(item_id="x" * 200) for _ in range(900)]}).encode()
    big += b" " * (1_048_577 - len(big))
    resp = client.post("/v1/events", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"]["field"] == "body"

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        yield b'{"events": ['
        for _ in range(3000):
            yield json.dumps(event(item_id="y" * 300)).encode() + b","

    streamed = client.post("/v1/events", content=chunks())
    assert streamed.status_code == 413, streamed.text


def test_the_rest_of_the_service_is_unaffected_by_bad_input(client: TestClient) -> None:
    for _, body, _, _ in BAD_INPUTS[:5]:
        client.post("/v1/events", json=body)
    client.post("/v1/events", content=b"{{{", headers={"content-type": "application/json"})
    assert client.get("/health").status_code == 200
    assert client.get("/v1/users/u2/recommendations", params={"k": 2}).status_code == 200
    assert client.post("/v1/events", json=event(user_id="u2")).status_code == 200
    metrics = client.get("/metrics").text
    assert "setlist_events_received_total" in metrics
    assert "setlist_online_updater_running 1.0" in metrics


def recommended(client: TestClient, user: str, k: int = 3) -> dict[str, Any]:
    resp = client.get(f"/v1/users/{user}/recommendations", params={"k": k})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_listen_shows_in_the_next_recommendations(app_client: TestClient) -> None:
    before = recommended(app_client, "u1")
    top = before["items"][0]["item_id"]
    assert app_client.post("/v1/events", json=event(user_id="u1", item_id=top)).status_code == 200
    deadline = time.monotonic() + 10.0  # generous: the figure itself is in benchmarks/events.py
    while time.monotonic() < deadline:
        after = recommended(app_client, "u1")
        if top not in [i["item_id"] for i in after["items"]]:
            break
        time.sleep(0.01)
    assert top not in [i["item_id"] for i in after["items"]]
    assert after["strategy"] == "personalized_online"


def test_a_new_listener_is_personalised_after_a_few_listens(app_client: TestClient) -> None:
    assert recommended(app_client, "newcomer")["strategy"] == "popular_fallback"
    batch = [event(user_id="newcomer", item_id=item) for item in ("x", "y")]
    app_client.post("/v1/events", json={"events": batch})
    deadline = time.monotonic() + 10.0
    while recommended(app_client, "newcomer")["strategy"] != "personalized_online":
        assert time.monotonic() < deadline, "the listens never reached the recommendations"
        time.sleep(0.01)
    ids = [i["item_id"] for i in recommended(app_client, "newcomer")["items"]]
    assert "x" not in ids and "y" not in ids


def test_without_a_store_events_are_refused_and_the_rest_serves(
    bundle_dir: Path, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path / "home", events_store_url="postgresql://nobody@127.0.0.1:1/none"
    )
    with TestClient(create_app(settings, bundle_dir)) as client:
        resp = client.post("/v1/events", json=event())
        assert resp.status_code == 503, resp.text
        assert "event store" in resp.json()["error"]["message"]
        assert client.get("/health").status_code == 200
        assert client.get("/v1/users/u1/recommendations").status_code == 200


def test_recommendations_carry_propensities(bundle_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "a"), bundle_dir)) as plain:
        items = recommended(plain, "u1", k=2)["items"]
        assert [i["propensity"] for i in items] == [1.0, 1.0]
    settings = make_settings(
        tmp_path / "b", explore_mode="epsilon", explore_epsilon=1.0, explore_pool=5
    )
    with TestClient(create_app(settings, bundle_dir)) as exploring:
        for _ in range(5):
            items = recommended(exploring, "u1", k=2)["items"]
            assert [i["propensity"] for i in items] == [pytest.approx(0.4)] * 2  # 2 of u1's 5


@pytest.fixture(scope="module")
def with_playlists(
    bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """Artists and the tiny playlist catalogue (``tracks``, playlists 100..105) served."""
    from tests.serve.playlists import save_playlist_bundle

    tracks = save_playlist_bundle(tmp_path_factory.mktemp("playlists") / "bundle")
    settings = make_settings(tmp_path_factory.mktemp("home"))
    with TestClient(create_app(settings, {"artists": bundle_dir, "tracks": tracks})) as client:
        yield client


def test_playlist_events_are_stored_with_playlist_and_propensity(
    with_playlists: TestClient,
) -> None:
    follow = event(type="playlist_follow", playlist_id="103", propensity=0.5)
    skip = event(type="playlist_skip", playlist_id="105", item_id="spotify:track:p1")
    shown = event(type="playlist_impression", playlist_id="104", item_id="104", position=2)
    response = with_playlists.post("/v1/events", json={"events": [follow, skip, shown]})
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "stored": 3, "duplicates": 0}
    store = service_of(with_playlists.app).feedback.events.require()
    stored = {e.event_id: e for e in store.scan()}
    assert stored[follow["event_id"]].playlist_id == "103"
    assert stored[follow["event_id"]].propensity == 0.5
    assert stored[skip["event_id"]].type == "playlist_skip"
    impression = stored[shown["event_id"]]
    assert (impression.type, impression.playlist_id, impression.position) == (
        "playlist_impression",
        "104",
        2,
    )


def test_an_unknown_playlist_is_named_and_the_rest_of_the_batch_kept(
    with_playlists: TestClient,
) -> None:
    good = [event(type="playlist_play", playlist_id="100"), event()]
    bad = event(type="playlist_follow", playlist_id="no-such-playlist")
    response = with_playlists.post("/v1/events", json={"events": [good[0], bad, good[1]]})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["field"] == "events.1.playlist_id"
    assert error["value"] == "no-such-playlist" and "no-such-playlist" in error["message"]
    assert (error["refused"], error["accepted"], error["stored"]) == (1, 2, 2)
    store = service_of(with_playlists.app).feedback.events.require()
    ids = store.existing([e["event_id"] for e in [*good, bad]])
    assert ids == {good[0]["event_id"], good[1]["event_id"]}
    alone = with_playlists.post("/v1/events", json=event(type="playlist_skip", playlist_id="x"))
    assert alone.status_code == 404
    assert alone.json()["error"]["field"] == "playlist_id"
    assert alone.json()["error"]["stored"] == 0
    unseen = event(type="playlist_impression", playlist_id="nowhere", item_id="nowhere")
    shown = with_playlists.post("/v1/events", json=[unseen])
    assert shown.status_code == 404
    assert shown.json()["error"]["field"] == "events.0.playlist_id"


def test_playlist_ids_are_not_checked_without_a_playlist_catalogue(
    app_client: TestClient,
) -> None:
    response = app_client.post("/v1/events", json=event(type="playlist_play", playlist_id="42"))
    assert response.status_code == 200, response.text
    missing = app_client.post("/v1/events", json=event(type="playlist_play"))
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "playlist_id"
