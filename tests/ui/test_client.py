"""The API client's error mapping (httpx MockTransport) and the /metrics parser."""

from __future__ import annotations

import httpx
import pytest

from setlist.ui.api import Api, ApiError, event
from setlist.ui.promtext import histogram_quantile, parse, rate
from tests.ui.fake_api import METRICS


def _api(status: int, body: object, headers: dict[str, str] | None = None) -> Api:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return Api("http://api.test", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (
            404,
            {"error": {"code": "not_found", "message": "Not Found"}},
            "missing",
            "does not offer",
        ),
        (404, {"error": {"code": "not_found", "message": "unknown item 'q'"}}, "not_found", "'q'"),
        (405, {"detail": "Method Not Allowed"}, "missing", "does not offer"),
        (422, {"error": {"code": "validation", "message": "mood: unknown"}}, "refused", "mood"),
        (503, {"error": {"code": "unavailable", "message": "loading"}}, "unavailable", "5 s"),
        (500, {"error": {"code": "internal", "message": "boom"}}, "broken", "boom"),
    ],
)
def test_errors_become_readable_messages(status: int, body: object, kind: str, words: str) -> None:
    with pytest.raises(ApiError) as caught:
        _api(status, body, {"retry-after": "5"}).get("/v1/anything")
    assert caught.value.kind == kind and words in caught.value.message


def test_transport_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(ApiError, match="Cannot reach") as caught:
        Api("http://api.test", transport=httpx.MockTransport(refuse)).ready()
    assert caught.value.kind == "unreachable"
    with pytest.raises(ApiError, match="is slow"):
        Api("http://api.test", transport=httpx.MockTransport(stall)).ready()


def test_not_json_is_broken() -> None:
    api = Api("http://api.test", transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(ApiError) as caught:
        api.get("/x")
    assert caught.value.kind == "broken"


def test_ids_are_quoted_in_paths() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"items": []})

    Api("http://api.test", transport=httpx.MockTransport(answer)).similar("AC/DC", 3)
    assert seen == ["/v1/items/AC%2FDC/similar?k=3"]


def test_event_carries_the_answers_arm_and_version() -> None:
    body = event("u", "i", "like", {"arm": "B", "model_version": "3"}, position=2)
    assert body["arm"] == "B" and body["model_version"] == "3" and body["position"] == 2
    assert body["event_id"].startswith("ui-") and body["ts"].endswith("+00:00")


def test_metrics_figures() -> None:
    figures = parse(METRICS, at=10.0)
    assert figures.total == 45
    assert figures.by(2) == {"A": 30, "B": 10, "none": 5}
    assert figures.fallback_rate == pytest.approx(0.05)  # 3 popular answers of 60
    assert figures.answers == {"personalized": 45, "mood": 12, "popular_fallback": 3}
    assert figures.counters == {"Events received": 12}  # labelled; the _created time left out
    # 45 observations: 10 under 1 ms, 30 more under 10 ms, 5 above
    assert figures.quantile(0.5) == pytest.approx(0.001 + 0.009 * (22.5 - 10) / 30)
    assert figures.quantile(0.99) == pytest.approx(0.01)  # in +Inf: the last finite edge
    later = parse(METRICS.replace("30.0", "60.0"), at=20.0)
    assert rate(later, figures) == pytest.approx(3.0)
    assert rate(figures, None) is None and rate(figures, later) is None


def test_quantile_of_nothing() -> None:
    assert histogram_quantile(0.5, {}) is None
    assert histogram_quantile(0.5, {1.0: 0.0, float("inf"): 0.0}) is None
