"""Every route over a tiny ALS bundle: answers, fallbacks, exclusions, errors, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle
from setlist.errors import ModelError
from setlist.serve import create_app
from setlist.serve.api.service import service_of
from tests.serve.conftest import make_settings


def _error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert (ready["status"], ready["model_version"]) == ("ready", "local")
    assert [(c["name"], c["ready"], c["model_version"]) for c in ready["catalogues"]] == [
        ("artists", True, "local")
    ]


def test_model_info(client: TestClient) -> None:
    body = client.get("/v1/model").json()
    assert body["version"] == "local"
    assert body["model_type"] == "als"
    assert body["params"]["factors"] == 4
    assert body["metrics"] == {"ndcg@10": 0.5, "broken": None}  # NaN is not JSON
    assert body["data_fingerprint"] == "fp-tiny"
    assert body["trained_at"].startswith("2024-05-01T12:00:00")


def test_known_user_gets_unheard_items_in_score_order(
    client: TestClient, bundle: ModelBundle
) -> None:
    body = client.get("/v1/users/u1/recommendations", params={"k": 3}).json()
    assert body["user_id"] == "u1"
    assert body["strategy"] == "personalized"
    assert body["model_version"] == "local"
    items = body["items"]
    assert len(items) == 3
    heard = set(bundle.items.external(bundle.seen[bundle.users.row("u1")].indices))
    assert heard == {"a", "b", "c"}
    assert not {it["item_id"] for it in items} & heard
    scores = [it["score"] for it in items]
    assert scores == sorted(scores, reverse=True)
    names = dict(zip(bundle.items.ids.tolist(), bundle.item_names.tolist(), strict=True))
    assert all(it["name"] == names[it["item_id"]] for it in items)


def test_k_beyond_the_unheard_catalogue_returns_no_padding(client: TestClient) -> None:
    items = client.get("/v1/users/u1/recommendations", params={"k": 1000}).json()["items"]
    assert len(items) == 5  # 8 items, 3 heard
    assert all(it["item_id"] and it["score"] is not None for it in items)


def test_unknown_user_gets_the_popular_items(client: TestClient, bundle: ModelBundle) -> None:
    body = client.get("/v1/users/somebody-new/recommendations", params={"k": 3}).json()
    assert body["strategy"] == "popular_fallback"
    assert [it["item_id"] for it in body["items"]] == ["a", "b", "x"]  # heard by 4, 3, 3 users
    assert [it["score"] for it in body["items"]] == [4.0, 3.0, 3.0]
    assert body["items"][0]["name"] == "Alpha"
    metrics = client.get("/metrics").text
    assert (
        'setlist_recommendation_fallbacks_total{arm="local",catalogue="artists",reason="unknown_user"}'
        in metrics
    )


def test_unicode_and_slashed_ids(client: TestClient) -> None:
    body = client.get("/v1/users/ユーザー/recommendations", params={"k": 2}).json()
    assert body["user_id"] == "ユーザー" and body["strategy"] == "personalized"
    similar = client.get("/v1/items/AC%2FDC/similar", params={"k": 2})
    assert similar.status_code == 200, similar.text
    assert similar.json()["item_id"] == "AC/DC"
    assert client.get("/v1/items/Bj%C3%B6rk/similar").status_code == 200
    assert client.get("/v1/users/a%2Fb%2F..%2Fc/recommendations").json()["strategy"] == (
        "popular_fallback"
    )


def test_similar_items(client: TestClient) -> None:
    body = client.get("/v1/items/a/similar", params={"k": 3}).json()
    assert body["item_id"] == "a" and body["model_version"] == "local"
    ids = [it["item_id"] for it in body["items"]]
    assert len(ids) == 3 and "a" not in ids
    everything = client.get("/v1/items/a/similar", params={"k": 50}).json()["items"]
    assert len(everything) == 7  # every other item, no padding


def test_unknown_item_is_a_404_json_error(client: TestClient) -> None:
    error = _error(client.get("/v1/items/no-such-artist/similar"), 404, "not_found")
    assert "no-such-artist" in error["message"]
    assert error["field"] == "item_id"


@pytest.mark.parametrize("k", ["0", "-3", "abc", "2.5", "1001", "1e3", "", str(10**30)])
def test_bad_k_is_a_422_naming_k(client: TestClient, k: str) -> None:
    for url in ("/v1/users/u1/recommendations", "/v1/items/a/similar"):
        error = _error(client.get(url, params={"k": k}), 422, "validation")
        assert error["field"] == "k", error
        assert "k" in error["message"]


def test_max_k_comes_from_settings(bundle_dir: Path, tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, max_k=5), bundle_dir)
    with TestClient(app) as small:
        assert small.get("/v1/users/u1/recommendations", params={"k": 5}).status_code == 200
        error = _error(small.get("/v1/users/u1/recommendations?k=6"), 422, "validation")
        assert error["field"] == "k" and error["value"] == 6


def test_ids_have_a_length_limit(client: TestClient) -> None:
    ok = client.get("/v1/users/" + "x" * 256 + "/recommendations")
    assert ok.status_code == 200
    error = _error(client.get("/v1/users/" + "x" * 257 + "/recommendations"), 422, "validation")
    assert error["field"] == "user_id"
    assert len(error["value"]) < 120  # echoed, but cut short
    error = _error(client.get("/v1/items/" + "y" * 5000 + "/similar"), 422, "validation")
    assert error["field"] == "item_id"


BAD_REQUESTS = [
    "/v1/users//recommendations",
    "/v1/users/%00/recommendations",
    "/v1/users/%FF%FE/recommendations",
    "/v1/users/..%2F..%2Fetc%2Fpasswd/recommendations",
    "/v1/users/%F0%9F%8E%B5/recommendations?k=1&k=2",
    "/v1/users/u1/recommendations?k=%00",
    "/v1/users/u1/recommendations?k=NaN",
    "/v1/items//similar",
    "/v1/items/%20/similar?k=-1",
    "/v1/items/a/similar?k=99999999999999999999999999",
    "/v1/users/u1",
    "/v1/nothing-here",
    "/" + "z" * 10000,
]


@pytest.mark.parametrize("url", BAD_REQUESTS)
def test_bad_input_never_gives_a_500(client: TestClient, url: str) -> None:
    resp = client.get(url)
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert "error" in resp.json()


def test_unknown_paths_and_methods_use_the_error_shape(client: TestClient) -> None:
    _error(client.get("/v2/whatever"), 404, "not_found")
    resp = client.post("/v1/users/u1/recommendations")
    _error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["allow"]


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/v1/users/u2/recommendations")
    client.get("/v1/items/nope/similar")
    text = client.get("/metrics").text
    assert (
        'setlist_http_requests_total{arm="local",method="GET",'
        'route="/v1/users/{user_id}/recommendations",status="200"}' in text
    )
    assert 'route="/v1/items/{item_id}/similar",status="404"' in text
    assert (
        'setlist_http_errors_total{arm="none",code="not_found",'
        'route="/v1/items/{item_id}/similar"}' in text
    )
    assert "setlist_http_request_duration_seconds_bucket" in text
    assert (
        'setlist_model_info{arm="local",catalogue="artists",model_type="als",version="local"} 1.0'
        in text
    )
    assert 'setlist_model_loaded{arm="local",catalogue="artists"} 1.0' in text
    assert "u2" not in text  # raw ids never become labels


def test_model_failure_falls_back_to_popularity(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = service_of(client.app).artists.model

    def broken(*args: object, **kwargs: object) -> None:
        raise ModelError("boom")

    monkeypatch.setattr(state.answerer.retriever, "for_user", broken)
    body = client.get("/v1/users/u1/recommendations").json()
    assert body["strategy"] == "popular_fallback"
    assert 'arm="local",catalogue="artists",reason="model_error"' in client.get("/metrics").text


def test_an_unexpected_error_is_a_json_500(bundle_dir: Path, tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), bundle_dir)
    with TestClient(app, raise_server_exceptions=False) as c:
        state = service_of(c.app).artists.model

        def crash(*args: object, **kwargs: object) -> None:
            raise RuntimeError("secret detail")

        state.similar = crash
        resp = c.get("/v1/items/a/similar")
        error = _error(resp, 500, "internal")
        assert "secret" not in resp.text
        assert error["message"] == "internal server error"
        assert 'status="500"' in c.get("/metrics").text
