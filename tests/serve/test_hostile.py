"""Hostile input never breaks the service: every refusal is a 4xx naming the field.

Each case below answered 500 (or a bare 404) before: NaN and infinities, lone surrogates, NUL
bytes, deep nesting, booleans for integers, repeated single-valued parameters, ids holding a
newline, a batch asking for more answers than one request may cost. The fuzz test at the end
sends the same values to every operation of the OpenAPI schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setlist.serve import create_app
from setlist.serve.api.schemas import MAX_BATCH_ITEMS
from tests.serve.conftest import make_settings
from tests.serve.tagged import save_tagged_bundle

EVENT = '{"event_id":"e1","user_id":"u1","item_id":"a","type":"%s","ts":%s%s}'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("hostile")
    app = create_app(make_settings(home / "home"), save_tagged_bundle(home / "bundle"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _post(client: TestClient, path: str, body: str) -> Any:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def _error(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = json.loads(response.text)["error"]  # strict JSON: parses without NaN or surrogates
    assert error["field"] == field
    return dict(error)


@pytest.mark.parametrize(
    ("body", "field", "echo"),
    [
        (EVENT % ("listen", "NaN", ""), "ts", "nan"),
        (EVENT % ("listen", "Infinity", ""), "ts", "inf"),
        (EVENT % ("listen", "-Infinity", ""), "ts", "-inf"),
        (EVENT % ("impression", "1700000000", ',"propensity":NaN'), "propensity", "nan"),
        (EVENT % ("listen", "1e400", ""), "ts", "inf"),
        (EVENT % ("listen", "1700000000", ',"play_ms":true'), "play_ms", True),
        (EVENT % ("listen", "1700000000", ',"position":1e308'), "position", 1e308),
        (EVENT.replace('"e1"', '"\\ud800"') % ("listen", "1700000000", ""), "event_id", "\\ud800"),
        (EVENT.replace('"u1"', '"x\\udfff"') % ("listen", "1700000000", ""), "user_id", None),
        (EVENT.replace('"e1"', '"e\\u0000"') % ("listen", "1700000000", ""), "event_id", "e\x00"),
        (EVENT.replace('"a"', '"\\u0000"') % ("listen", "1700000000", ""), "item_id", "\x00"),
    ],
)
def test_bad_event_values_are_refused_naming_the_field(
    hostile: TestClient, body: str, field: str, echo: Any
) -> None:
    error = _error(_post(hostile, "/v1/events", body), 422, field)
    if echo is not None:
        assert error["value"] == echo


def test_a_batch_names_the_bad_event_and_stores_none_of_it(hostile: TestClient) -> None:
    good = EVENT % ("listen", "1700000000", "")
    bad = EVENT.replace('"e1"', '"e2"') % ("listen", "NaN", "")
    _error(_post(hostile, "/v1/events", f'{{"events":[{good},{bad}]}}'), 422, "events.1.ts")
    # Nothing of the refused batch was stored: the good event is still new.
    accepted = _post(hostile, "/v1/events", good.replace('"e1"', '"e-after"'))
    assert accepted.status_code == 200
    assert _post(hostile, "/v1/events", good).json()["stored"] == 1


@pytest.mark.parametrize("path", ["/v1/events", "/v1/recommendations", "/v1/recommendations/batch"])
@pytest.mark.parametrize("body", ["[" * 5000, "{" * 5000, '{"seeds": [', "\xff", ""])
def test_a_body_that_is_not_json_is_400_naming_the_body(
    hostile: TestClient, path: str, body: str
) -> None:
    response = hostile.post(
        path, content=body.encode("latin-1"), headers={"content-type": "application/json"}
    )
    if body == "" and path != "/v1/events":
        # No body at all is a missing field, not a malformed one.
        assert response.status_code == 422
        return
    error = _error(response, 400, "body")
    assert error["code"] == "malformed"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/recommendations", '{"seeds":["\\ud800"]}', "seeds.0"),
        ("/v1/recommendations", '{"seeds":["a\\u0000"]}', "seeds.0"),
        ("/v1/recommendations", '{"seeds":["a"],"k":true}', "k"),
        ("/v1/recommendations", '{"seeds":["a"],"k":NaN}', "k"),
        ("/v1/recommendations", '{"seeds":["a"],"k":1e400}', "k"),
        ("/v1/recommendations", '{"seeds":["a"],"mood":"\\udc00"}', "mood"),
        ("/v1/recommendations/batch", '{"user_ids":["\\ud800"]}', "user_ids.0"),
        ("/v1/recommendations/batch", '{"user_ids":["u1"],"k":false}', "k"),
        ("/v1/recommendations/batch", '{"user_ids":["u1"],"exclude":["\\ud800"]}', "exclude.0"),
    ],
)
def test_bad_body_fields_are_422_naming_the_field(
    hostile: TestClient, path: str, body: str, field: str
) -> None:
    error = _error(_post(hostile, path, body), 422, field)
    assert error["code"] == "validation"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/u1/recommendations?k=3&k=5",
        "/v1/users/u1/recommendations?k=3&mood=x&mood=y",
        "/v1/items/a/similar?k=1&k=2",
        "/v1/catalogue/search?q=a&q=b",
    ],
)
def test_a_single_valued_parameter_given_twice_is_refused(hostile: TestClient, path: str) -> None:
    field = path.rsplit("&", 1)[1].split("=")[0]
    error = _error(hostile.get(path), 422, field)
    assert len(error["value"]) == 2


def test_a_list_parameter_may_repeat(hostile: TestClient) -> None:
    response = hostile.get("/v1/users/u1/recommendations?exclude=a&exclude=b&k=3")
    assert response.status_code == 200
    assert {"a", "b"}.isdisjoint(item["item_id"] for item in response.json()["items"])


@pytest.mark.parametrize(
    "path",
    [
        "/v1/users/a%0Ab/history",
        "/v1/users/a%0Ab/recommendations",
        "/v1/items/a%0Ab/similar",
        "/v1/users/%0A/history",
    ],
)
def test_ids_holding_a_newline_are_routed(hostile: TestClient, path: str) -> None:
    response = hostile.get(path)
    # Routed: either an answer or a 404 naming the unknown id, never a bare "Not Found".
    if response.status_code == 404:
        assert response.json()["error"]["field"] in {"user_id", "item_id"}
        assert "\n" in response.json()["error"]["message"] or "\\n" in response.text
    else:
        assert response.status_code == 200


def test_a_known_listener_with_a_newline_in_the_id_gets_their_history(
    hostile: TestClient,
) -> None:
    event = EVENT.replace('"u1"', '"n\\nl"') % ("listen", "1700000000", "")
    assert _post(hostile, "/v1/events", event.replace('"e1"', '"e-nl"')).status_code == 200
    response = hostile.get("/v1/users/n%0Al/recommendations")
    assert response.status_code == 200
    assert response.json()["user_id"] == "n\nl"


def test_a_batch_over_the_work_bound_is_413_and_at_the_bound_answers(
    hostile: TestClient,
) -> None:
    users = [f"u{i}" for i in range(101)]
    k = MAX_BATCH_ITEMS // 100
    body = json.dumps({"user_ids": users, "k": k})
    error = _error(_post(hostile, "/v1/recommendations/batch", body), 413, "k")
    assert error["code"] == "too_large"
    answered = _post(hostile, "/v1/recommendations/batch", json.dumps({"user_ids": users[:2]}))
    assert answered.status_code == 200
    assert len(answered.json()["results"]) == 2


HOSTILE_VALUES: list[Any] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    "\ud800",
    "a\x00b",
    10**400,
    -(10**30),
    1e308,
    True,
    "\n",
    "x" * 5000,
]


def _raw_json(value: Any) -> str:
    """``value`` as a JSON text, written as a hostile client would (NaN, lone surrogates)."""
    if isinstance(value, float):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)  # "\ud800" stays an escape
    return json.dumps(value)


def _operations(client: TestClient) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_fuzz_every_operation_with_hostile_values(hostile: TestClient) -> None:
    """NaN, infinities, lone surrogates, NUL, huge numbers, deep nesting: never a 5xx."""
    sent = 0
    for method, template, operation in _operations(hostile):
        params = operation.get("parameters", [])
        for value in HOSTILE_VALUES:
            text = value if isinstance(value, str) else _raw_json(value)
            safe = text.encode("utf-8", "surrogatepass").decode("latin-1")
            path = template
            for param in params:
                if param["in"] == "path":
                    path = path.replace("{" + param["name"] + "}", "artists")
            query = {p["name"]: safe for p in params if p["in"] == "query"}
            bodies: list[str | None] = [None]
            if "requestBody" in operation:
                fields = ["seeds", "user_ids", "k", "exclude", "mood", "event_id", "ts", "events"]
                bodies = [
                    "{" + ",".join(f'"{f}":{_raw_json(value)}' for f in fields) + "}",
                    '{"k":' + _raw_json(value) + "}",
                    "[" * 3000 + "]" * 3000,
                ]
            for body in bodies:
                response = hostile.request(
                    method,
                    path,
                    params=query,
                    content=body,
                    headers={"content-type": "application/json"},
                )
                sent += 1
                assert response.status_code < 500 or response.status_code == 503, (
                    method,
                    path,
                    value,
                    body and body[:80],
                    response.text[:300],
                )
                if response.status_code >= 400:
                    assert "error" in json.loads(response.text)
    assert sent > 100


def test_the_schema_states_k_maximum_and_400_for_bodies(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, max_k=77), save_tagged_bundle(tmp_path / "b"))
    paths = app.openapi()["paths"]
    k = [
        p["schema"]
        for p in paths["/v1/users/{user_id}/recommendations"]["get"]["parameters"]
        if p["name"] == "k"
    ][0]
    assert k["maximum"] == 77 and k["minimum"] == 1
    with TestClient(app) as client:
        assert client.get("/v1/users/u1/recommendations?k=78").status_code == 422
        assert client.get("/v1/users/u1/recommendations?k=77").status_code == 200
    for item in paths.values():
        for operation in item.values():
            if "requestBody" in operation:
                assert "400" in operation["responses"]


def test_refusals_before_routing_count_under_their_route(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), save_tagged_bundle(tmp_path / "b"))
    with TestClient(app) as client:
        huge = '{"user_ids": ["' + "x" * (2 << 20) + '"]}'
        assert _post(client, "/v1/recommendations/batch", huge).status_code == 413
        # the in-flight limit's refusal, as InFlightLimitMiddleware counts it (before routing)
        scope = {"type": "http", "method": "GET", "path": "/v1/items/a/similar", "app": app}
        app.state.service.metrics.error(scope, "overloaded")
        text = client.get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("setlist_http_errors_total")]
    assert any('code="too_large"' in x and "/v1/recommendations/batch" in x for x in lines)
    assert any('code="overloaded"' in x and "/v1/items/{item_id}/similar" in x for x in lines)
    assert not any("<unmatched>" in x for x in lines)
