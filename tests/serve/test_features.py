"""Reasons, exclusions, moods, onboarding, batches, limits and the degradation chain over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle
from setlist.serve import create_app
from setlist.serve.api.service import service_of
from tests.serve.conftest import make_settings
from tests.serve.tagged import save_tagged_bundle


@pytest.fixture(scope="module")
def tagged_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tagged_bundle(tmp_path_factory.mktemp("tagged") / "bundle", "hnsw")


@pytest.fixture(scope="module")
def tc(tagged_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path_factory.mktemp("home"), max_exclude=3), tagged_dir)
    with TestClient(app) as client:
        yield client


def _error(resp: Any, status: int, field: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = dict(resp.json()["error"])
    assert error["field"] == field, error
    return error


def test_the_bundle_carries_its_index_and_tags(tagged_dir: Path) -> None:
    bundle = ModelBundle.load(tagged_dir)
    assert bundle.index is not None and bundle.index.kind == "hnsw"
    assert bundle.index.recall_at_10 is not None and bundle.index.recall_at_10 >= 0.95
    assert bundle.item_tags is not None and "chill" in bundle.tag_names.tolist()
    assert bundle.meta.index is not None and bundle.meta.index["kind"] == "hnsw"


def test_every_item_carries_reasons_from_the_history(tc: TestClient) -> None:
    body = tc.get("/v1/users/u1/recommendations", params={"k": 4}).json()
    heard = {"a": "Alpha", "b": "Beta", "c": "Gamma"}
    assert body["strategy"] == "personalized" and body["arm"] == "local"
    assert any(item["because"] for item in body["items"])
    for item in body["items"]:
        assert len(item["because"]) <= 3
        for reason in item["because"]:
            assert heard[reason["item_id"]] == reason["name"]
            assert reason["contribution"] > 0
        contributions = [r["contribution"] for r in item["because"]]
        assert contributions == sorted(contributions, reverse=True)


def test_popular_answers_have_no_invented_reasons(tc: TestClient) -> None:
    body = tc.get("/v1/users/stranger/recommendations").json()
    assert body["strategy"] == "popular_fallback"
    assert all(item["because"] == [] for item in body["items"])


def test_exclude_ids_are_never_returned(tc: TestClient) -> None:
    first = [i["item_id"] for i in tc.get("/v1/users/u1/recommendations?k=3").json()["items"]]
    again = tc.get("/v1/users/u1/recommendations", params={"k": 3, "exclude": first[:2]}).json()
    ids = [i["item_id"] for i in again["items"]]
    assert len(ids) == 3 and not set(ids) & set(first[:2])
    popular = tc.get("/v1/users/nobody/recommendations", params={"k": 2, "exclude": ["a"]})
    assert "a" not in [i["item_id"] for i in popular.json()["items"]]


def test_exclude_is_validated(tc: TestClient) -> None:
    url = "/v1/users/u1/recommendations"
    _error(tc.get(url, params={"exclude": ["a", "b", "c", "x"]}), 422, "exclude")
    _error(tc.get(url, params={"exclude": ["y" * 300]}), 422, "exclude.0")


def test_moods_are_derived_from_tags(tc: TestClient) -> None:
    body = tc.get("/v1/moods").json()
    moods = {m["name"]: m for m in body["moods"]}
    assert set(moods) == {"chill", "party"}  # the others have fewer than 3 artists here
    assert moods["chill"]["artists"] == 3
    assert [e["item_id"] for e in moods["chill"]["examples"]][0] == "a"
    assert "chillout" in moods["chill"]["tags"]


def test_mood_blends_taste_for_a_known_listener(tc: TestClient) -> None:
    body = tc.get("/v1/users/u4/recommendations", params={"k": 3, "mood": "party"}).json()
    assert body["mood"] == "party" and body["strategy"] == "personalized"
    ids = [i["item_id"] for i in body["items"]]
    assert ids and set(ids) <= {"c", "AC/DC"}  # party artists u4 has not heard (x is heard)
    because = {i["item_id"]: i["because"] for i in body["items"]}
    # c: nothing u4 heard is like it, the mood chose it, and the reason says so first
    assert because["c"][0] == {"item_id": "", "name": "party", "contribution": 1.0, "kind": "mood"}
    assert all(r.get("kind", "item") == "item" for r in because["c"][1:])
    # AC/DC: 1 of its 10 tags is party; u4's taste chose it, so the mood is not named
    assert because["AC/DC"] and all(r.get("kind", "item") == "item" for r in because["AC/DC"])


def test_mood_without_history_gives_the_best_artists(tc: TestClient) -> None:
    body = tc.get("/v1/users/newbie/recommendations", params={"mood": "chill"}).json()
    assert body["strategy"] == "mood"
    assert [i["item_id"] for i in body["items"]] == ["a", "z", "b"]
    reasons = [i["because"] for i in body["items"]]
    assert reasons == [[{"item_id": "", "name": "chill", "contribution": 1.0, "kind": "mood"}]] * 3


def test_unknown_mood_is_a_422_naming_mood(tc: TestClient) -> None:
    error = _error(tc.get("/v1/users/u1/recommendations?mood=gloomy"), 422, "mood")
    assert "chill" in error["message"]
    _error(tc.get("/v1/users/u1/recommendations", params={"mood": "m" * 65}), 422, "mood")


def test_onboarding_from_seed_names_and_ids(tc: TestClient) -> None:
    resp = tc.post("/v1/recommendations", json={"seeds": ["ex", "Björk", "nobody"], "k": 3})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["strategy"] == "onboarding"
    assert body["seeds"] == ["ex", "Björk"] and body["unknown_seeds"] == ["nobody"]
    ids = [i["item_id"] for i in body["items"]]
    assert "x" not in ids and "Björk" not in ids
    assert ids[0] in {"y", "z"}  # the seeds' taste cluster comes first
    reasons = {r["item_id"] for i in body["items"] for r in i["because"]}
    assert reasons <= {"x", "Björk"}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"seeds": []}, "seeds"),
        ({"seeds": ["a"], "k": 0}, "k"),
        ({"seeds": ["a"], "k": 2000}, "k"),
        ({"seeds": ["a"], "mood": "gloomy"}, "mood"),
        ({"seeds": ["a"], "exclude": ["1", "2", "3", "4"]}, "exclude"),
        ({"seeds": ["a"], "extra": 1}, "extra"),
        ({"seeds": "a"}, "seeds"),
    ],
)
def test_onboarding_input_is_validated(tc: TestClient, payload: dict[str, Any], field: str) -> None:
    _error(tc.post("/v1/recommendations", json=payload), 422, field)


def test_what_the_catalogue_lacks_is_a_404_naming_the_field(tc: TestClient) -> None:
    """No known seed, or a mood of the vocabulary too few of these artists carry: the request
    is valid (the schema allows it) but names nothing here."""
    _error(tc.post("/v1/recommendations", json={"seeds": ["nobody"]}), 404, "seeds")
    error = _error(tc.get("/v1/users/u1/recommendations", params={"mood": "sleep"}), 404, "mood")
    assert "chill" in error["message"] and "party" in error["message"]
    _error(tc.post("/v1/recommendations", json={"seeds": ["a"], "mood": "sleep"}), 404, "mood")


@pytest.mark.parametrize("k", [2.0, 2])
def test_a_whole_number_k_is_taken_as_json_counts_it(tc: TestClient, k: Any) -> None:
    resp = tc.post("/v1/recommendations", json={"seeds": ["a"], "k": k})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["items"]) == 2


@pytest.mark.parametrize("k", [True, 2.5, "2", None])
def test_k_that_is_not_a_whole_number_is_refused(tc: TestClient, k: Any) -> None:
    _error(tc.post("/v1/recommendations", json={"seeds": ["a"], "k": k}), 422, "k")
    _error(tc.post("/v1/recommendations/batch", json={"user_ids": ["u1"], "k": k}), 422, "k")


def test_the_schema_lists_the_mood_vocabulary(tc: TestClient) -> None:
    from setlist.serve.answer.moods import MOOD_NAMES

    spec = tc.get("/openapi.json").json()
    params = spec["paths"]["/v1/users/{user_id}/recommendations"]["get"]["parameters"]
    (mood,) = [p for p in params if p["name"] == "mood"]
    enum = mood["schema"].get("enum") or next(
        a["enum"] for a in mood["schema"]["anyOf"] if "enum" in a
    )
    assert list(enum) == list(MOOD_NAMES) and "sleep" in enum


def test_batch_answers_every_user(tc: TestClient) -> None:
    body = tc.post("/v1/recommendations/batch", json={"user_ids": ["u1", "u4", "new"], "k": 2})
    assert body.status_code == 200, body.text
    results = body.json()["results"]
    assert [r["user_id"] for r in results] == ["u1", "u4", "new"]
    assert [r["strategy"] for r in results] == ["personalized", "personalized", "popular_fallback"]
    single = tc.get("/v1/users/u1/recommendations?k=2").json()
    assert [i["item_id"] for i in results[0]["items"]] == [i["item_id"] for i in single["items"]]


def test_batch_size_and_body_size_are_limited(tc: TestClient) -> None:
    many = {"user_ids": [f"u{n}" for n in range(1001)]}
    _error(tc.post("/v1/recommendations/batch", json=many), 422, "user_ids")
    huge = {"user_ids": ["x" * 200] * 1000, "pad": "p" * (1 << 20)}
    _error(tc.post("/v1/recommendations/batch", json=huge), 413, "body")
    resp = tc.post(
        "/v1/recommendations/batch",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    # Malformed JSON is 400 on every route (one rule: malformed body 400, invalid field 422).
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "malformed"
    assert resp.json()["error"]["field"] == "body"


def test_the_chain_ends_in_a_503_never_a_500(tagged_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, fallback_chain="personalized")
    with TestClient(create_app(settings, tagged_dir)) as client:
        assert client.get("/v1/users/u1/recommendations").status_code == 200
        resp = client.get("/v1/users/stranger/recommendations")
        assert resp.status_code == 503 and resp.headers["retry-after"].isdigit()
        assert "unknown_user" in resp.json()["error"]["message"]
        state = service_of(client.app).artists.model

        def broken(*args: object) -> None:
            raise RuntimeError("index gone")

        state.answerer.retriever.for_user = broken
        resp = client.get("/v1/users/u1/recommendations")
        assert resp.status_code == 503 and "model_error" in resp.text


def test_popular_first_chain_skips_the_model(tagged_dir: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, fallback_chain="popular")
    with TestClient(create_app(settings, tagged_dir)) as client:
        assert client.get("/v1/users/u1/recommendations").json()["strategy"] == "popular_fallback"


def test_mood_reasons_name_the_mood_where_it_gave_half_the_score() -> None:
    import numpy as np

    from setlist.serve.answer.explain import mood_reasons

    mood = np.array([1.0, 0.2, 0.0, 0.5], dtype=np.float32)
    scores = np.array([0.9, 0.6, 0.7, 0.0], dtype=np.float32)  # (1 - w) taste + w mood, w 0.5
    found = mood_reasons("chill", mood, scores, 0.5)
    assert found[0] is not None and found[0]["kind"] == "mood"
    assert found[0]["contribution"] == 0.555556  # 0.5 of 0.9
    assert found[1:] == [None, None, None]  # 0.1 of 0.6; no mood; a zero score
