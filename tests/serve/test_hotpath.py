"""The hot route's short way in answers exactly as FastAPI's path does, and only when it may."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Request, Response

from setlist.serve import create_app
from setlist.serve.api.hotpath import HotPathMiddleware, parse_request
from tests.serve.conftest import TestClient, make_settings
from tests.serve.tagged import save_tagged_bundle

URL = "/v1/users/{}/recommendations"


@pytest.fixture(scope="module")
def hot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, HotPathMiddleware]]:
    bundle = save_tagged_bundle(tmp_path_factory.mktemp("hot") / "bundle", "hnsw")
    app = create_app(make_settings(tmp_path_factory.mktemp("home"), max_k=50), bundle)
    with TestClient(app) as client:
        client.get("/health")  # builds the middleware stack
        layer: Any = app.middleware_stack
        while not isinstance(layer, HotPathMiddleware):
            layer = layer.app
        yield client, layer


def _both(client: TestClient, hot: HotPathMiddleware, query: str) -> tuple[Any, Any]:
    """The answer by the short way, then by FastAPI's path (an ignored parameter forces it)."""
    before = hot.served
    fast = client.get(URL.format("u1") + "?" + query)
    assert hot.served == before + 1
    slow = client.get(URL.format("u1") + "?" + query + "&via=fastapi")
    assert hot.served == before + 1
    return fast, slow


def test_the_short_way_is_on_for_the_real_route(hot: tuple[TestClient, Any]) -> None:
    assert hot[1].active


@pytest.mark.parametrize(
    "query", ["k=3", "k=4&exclude=a&exclude=b", "k=2&mood=party", "exclude=AC%2FDC"]
)
def test_it_answers_as_fastapi_does(hot: tuple[TestClient, Any], query: str) -> None:
    fast, slow = _both(*hot, query)
    assert fast.status_code == slow.status_code == 200
    assert fast.json() == slow.json() and fast.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("query", "field"), [("k=51", "k"), ("mood=gloomy", "mood")])
def test_its_errors_are_fastapi_errors(hot: tuple[TestClient, Any], query: str, field: str) -> None:
    fast, slow = _both(*hot, query)
    assert fast.status_code == slow.status_code == 422
    assert fast.json() == slow.json() and fast.json()["error"]["field"] == field


def _served_count(client: TestClient) -> float:
    series = (
        'setlist_http_requests_total{arm="local",method="GET",'
        'route="/v1/users/{user_id}/recommendations",status="200"} '
    )
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(series):
            return float(line[len(series) :])
    return 0.0


def test_metrics_and_arm_are_recorded_as_for_the_route(hot: tuple[TestClient, Any]) -> None:
    client, layer = hot
    before, served = _served_count(client), layer.served
    client.get(URL.format("u2") + "?k=2")
    assert layer.served == served + 1 and _served_count(client) == before + 1


@pytest.mark.parametrize(
    "query", ["k=abc", "k=0", "k=+3", "k=3&k=4", "mood=", "exclude=", "other=1", "k=" + "9" * 12]
)
def test_anything_unusual_goes_to_fastapi(hot: tuple[TestClient, Any], query: str) -> None:
    client, layer = hot
    before = layer.served
    client.get(URL.format("u1") + "?" + query)
    assert layer.served == before


def test_parse_request_reads_what_the_route_declares() -> None:
    got = parse_request("/v1/users/a/b/recommendations", b"k=7&exclude=x&exclude=y%20z&mood=chill")
    assert got == {"user_id": "a/b", "k": 7, "exclude": ["x", "y z"], "mood": "chill"}
    assert parse_request("/v1/users/u/recommendations", b"") == {
        "user_id": "u", "k": 10, "exclude": None, "mood": None,
    }  # fmt: skip
    assert parse_request("/v1/users//recommendations", b"") is None
    assert parse_request("/v1/users/" + "u" * 257 + "/recommendations", b"") is None
    assert parse_request("/v1/users/u/recommendations", b"mood=" + b"m" * 65) is None


def test_an_endpoint_of_another_shape_turns_it_off() -> None:
    router = APIRouter(prefix="/v1/users")

    @router.get("/{user_id:path}/recommendations")
    async def changed(request: Request, user_id: str, k: int = 10) -> Response:
        return Response(b"{}")

    layer = HotPathMiddleware(lambda s, r, w: None, owner=None, router=router)  # type: ignore[arg-type]
    assert not layer.active


def test_a_router_without_the_route_turns_it_off() -> None:
    layer = HotPathMiddleware(lambda s, r, w: None, owner=None, router=APIRouter())  # type: ignore[arg-type]
    assert not layer.active
