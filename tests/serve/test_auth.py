"""API keys with scopes, SETLIST_AUTH, per-key and per-address rate limits, the audit trail.

Apps serve the tiny tagged bundle; keys are created in each app's own SQLite event store (the
store the service reads them from), as `setlist keys create` does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from setlist.config import Settings
from setlist.events.keys import KeyStore
from setlist.serve import create_app
from setlist.serve.api.auth import auth_required, required_scope
from tests.serve.conftest import make_settings
from tests.serve.tagged import save_tagged_bundle

RECS = "/v1/users/u1/recommendations"
EVENT = {"event_id": "e1", "user_id": "u1", "item_id": "a", "type": "listen", "ts": 1700000000}


def _settings(home: Path, **overrides: Any) -> Settings:
    store = f"sqlite:///{home / 'events.db'}"
    return make_settings(home, auth="on", events_store_url=store, **overrides)


def _keys(settings: Settings) -> KeyStore:
    assert settings.events_store_url is not None
    return KeyStore(settings.events_store_url)


class Keyed:
    """An auth-on app and a key per scope set (the keys themselves, as a client holds them)."""

    def __init__(self, client: TestClient, settings: Settings, keys: dict[str, str]) -> None:
        self.client, self.settings, self.keys = client, settings, keys


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keyed]:
    home = tmp_path_factory.mktemp("auth")
    settings = _settings(home, auth_cache_s=0.0)
    store = _keys(settings)
    keys = {
        name: store.create(name, scopes, rate, "test", "test")[1]
        for name, scopes, rate in [
            ("reader", "read", None),
            ("writer", "events", "5/minute"),
            ("admin", "admin", None),
            ("both", "read,events", None),
            ("slow", "read", "3/minute"),
            ("gone", "read", None),
        ]
    }
    store.close()
    app = create_app(settings, save_tagged_bundle(home / "bundle"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Keyed(client, settings, keys)


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()["error"])


def test_no_key_is_401_with_a_challenge_in_the_error_shape(keyed: Keyed) -> None:
    for method, path in [("GET", RECS), ("POST", "/v1/events"), ("GET", "/v1/stats")]:
        response = keyed.client.request(method, path)
        error = _error(response, 401)
        assert error["code"] == "unauthorized" and error["field"] == "X-API-Key"
        assert "Bearer" in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "key", ["nope", "sl_" + "A" * 43, "Bearer", "sl_" + "A" * 42 + "\u00e9", "sl_" + "x" * 500]
)
def test_an_unknown_or_malformed_key_is_401(keyed: Keyed, key: str) -> None:
    response = keyed.client.get(RECS, headers={"X-API-Key": key.encode()})
    assert _error(response, 401)["code"] == "unauthorized"


def test_a_key_with_the_scope_is_served_by_header_or_bearer(keyed: Keyed) -> None:
    key = keyed.keys["reader"]
    assert keyed.client.get(RECS, headers={"X-API-Key": key}).status_code == 200
    assert keyed.client.get(RECS, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # the hot path and the normal path alike (an unknown parameter takes the normal path)
    assert keyed.client.get(RECS + "?k=2&exclude=a", headers={"X-API-Key": key}).status_code == 200


def test_a_key_without_the_scope_is_403(keyed: Keyed) -> None:
    reader, writer = keyed.keys["reader"], keyed.keys["writer"]
    error = _error(keyed.client.post("/v1/events", json=EVENT, headers={"X-API-Key": reader}), 403)
    assert error["code"] == "forbidden" and error["scope"] == "events"
    assert _error(keyed.client.get(RECS, headers={"X-API-Key": writer}), 403)["scope"] == "read"
    admin = keyed.keys["admin"]
    assert _error(keyed.client.get(RECS, headers={"X-API-Key": admin}), 403)["scope"] == "read"
    posted = keyed.client.post("/v1/events", json=EVENT, headers={"X-API-Key": writer})
    assert posted.status_code == 200


def test_health_and_ready_stay_open_and_metrics_by_setting(keyed: Keyed, tmp_path: Path) -> None:
    for path in ("/health", "/ready", "/metrics", "/openapi.json"):
        assert keyed.client.get(path).status_code == 200, path
    settings = _settings(tmp_path, auth_metrics=True)
    key = _keys(settings).create("scraper", "read", None, "test", "test")[1]
    with TestClient(create_app(settings, save_tagged_bundle(tmp_path / "b"))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/health").status_code == 200


def test_a_revoked_key_is_refused(keyed: Keyed) -> None:
    key = keyed.keys["gone"]
    assert keyed.client.get(RECS, headers={"X-API-Key": key}).status_code == 200
    store = _keys(keyed.settings)
    store.revoke("gone", "test", "test")
    listed = {k.name: k for k in store.all()}
    store.close()
    assert listed["gone"].revoked_at is not None and listed["gone"].last_used_at is not None
    assert _error(keyed.client.get(RECS, headers={"X-API-Key": key}), 401)["code"] == (
        "unauthorized"
    )


def test_over_the_key_quota_is_429_with_headers_and_other_keys_unaffected(keyed: Keyed) -> None:
    slow, reader = keyed.keys["slow"], keyed.keys["reader"]
    statuses = [keyed.client.get(RECS, headers={"X-API-Key": slow}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = keyed.client.get(RECS, headers={"X-API-Key": slow})
    error = _error(response, 429)
    assert error["code"] == "rate_limited" and "slow" in error["message"]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["RateLimit-Limit"] == "3"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) >= 1
    assert keyed.client.get(RECS, headers={"X-API-Key": reader}).status_code == 200
    # refusals are counted under the route they aimed at
    metrics = keyed.client.get("/metrics").text
    refused = _lines(metrics, 'code="rate_limited"')
    assert 'route="/v1/users/{user_id}/recommendations"' in refused
    assert "<unmatched>" not in refused


def _lines(text: str, needle: str) -> str:
    return "\n".join(line for line in text.splitlines() if needle in line)


def test_the_events_quota_counts_events_not_requests(keyed: Keyed, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    key = _keys(settings).create("batcher", "events", "10/minute", "test", "test")[1]
    batch = {"events": [{**EVENT, "event_id": f"b{i}"} for i in range(8)]}
    with TestClient(create_app(settings, save_tagged_bundle(tmp_path / "b"))) as client:
        headers = {"X-API-Key": key}
        assert client.post("/v1/events", json=batch, headers=headers).json()["stored"] == 8
        second = {"events": [{**EVENT, "event_id": f"c{i}"} for i in range(8)]}
        response = client.post("/v1/events", json=second, headers=headers)
        error = _error(response, 429)
        assert error["field"] == "events" and "Retry-After" in response.headers
    store_url = settings.events().store_url
    from setlist.events.store import open_store

    with open_store(store_url) as store:
        ids = set(store.frame()["event_id"].to_list())
    assert {f"b{i}" for i in range(8)} <= ids and not any(i.startswith("c") for i in ids)


def test_the_address_limit_applies_without_a_key_and_not_on_loopback(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth="off", rate_limit="2/minute")
    app = create_app(settings, save_tagged_bundle(tmp_path / "b"))
    with TestClient(app) as client:
        assert [client.get(RECS).status_code for _ in range(3)] == [200, 200, 429]
        assert client.get("/health").status_code == 429  # health is limited by address too
    with TestClient(app, client=("127.0.0.1", 5000)) as local:
        assert [local.get(RECS).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize(
    ("mode", "host", "required"),
    [
        ("auto", "127.0.0.1", False),
        ("auto", "::1", False),
        ("auto", "[::1]", False),
        ("auto", "localhost", False),
        ("auto", "0.0.0.0", True),
        ("auto", "10.1.2.3", True),
        ("auto", "example.org", True),
        ("on", "127.0.0.1", True),
        ("off", "0.0.0.0", False),
    ],
)
def test_auto_requires_keys_beyond_loopback(
    tmp_path: Path, mode: str, host: str, required: bool
) -> None:
    assert auth_required(make_settings(tmp_path, auth=mode, host=host)) is required


def test_scopes_of_paths() -> None:
    assert required_scope("GET", "/health") is None
    assert required_scope("GET", "/metrics") is None
    assert required_scope("GET", "/metrics", metrics_need_key=True) == "read"
    assert required_scope("POST", "/v1/events") == "events"
    assert required_scope("POST", "/v1/admin/reload") == "admin"
    assert required_scope("GET", "/v1/playlists/x") == "read"
    assert required_scope("GET", "/nowhere") == "read"


def test_the_schema_declares_the_security_schemes(keyed: Keyed, tmp_path: Path) -> None:
    schema = keyed.client.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}
    recs = schema["paths"]["/v1/users/{user_id}/recommendations"]["get"]
    assert recs["security"] and {"401", "403"} <= set(recs["responses"])
    assert "security" not in schema["paths"]["/health"]["get"]
    off = create_app(make_settings(tmp_path, auth="off"), save_tagged_bundle(tmp_path / "b"))
    assert "securitySchemes" not in off.openapi().get("components", {})


def test_admin_actions_and_refusals_are_audited(keyed: Keyed) -> None:
    client, admin, reader = keyed.client, keyed.keys["admin"], keyed.keys["reader"]
    assert _error(client.post("/v1/admin/reload", headers={"X-API-Key": reader}), 403)
    assert _error(client.post("/v1/admin/reload"), 401)
    assert client.post("/v1/admin/reload", headers={"X-API-Key": admin}).status_code == 200
    refused = client.post(
        "/v1/admin/catalogues/artists/promote", json={"version": "1"}, headers={"X-API-Key": admin}
    )
    assert _error(refused, 422)["field"] == "catalogue"  # a bundle folder has no registry
    store = _keys(keyed.settings)
    log = store.audit_log(20)
    store.close()
    seen = [(e.actor, e.action, e.outcome.split(":")[0]) for e in log]
    assert ("reader", "admin.refused", "refused") in seen
    assert ("anonymous", "admin.refused", "refused") in seen
    assert ("admin", "admin.reload", "ok") in seen
    assert ("admin", "admin.promote", "failed") in seen
    assert ("test", "key.create", "ok") in seen
    assert all(e.source for e in log)
    shown = client.get("/v1/admin/audit?limit=5", headers={"X-API-Key": admin})
    assert shown.status_code == 200 and len(shown.json()["entries"]) == 5
    assert shown.json()["entries"][0]["action"] == log[0].action  # newest first
    assert _error(client.get("/v1/admin/audit", headers={"X-API-Key": reader}), 403)


def test_a_key_never_appears_in_any_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = _settings(tmp_path, auth_cache_s=0.0)
    store = _keys(settings)
    secrets = [store.create(n, "read,events,admin", "1000/minute", "t", "t")[1] for n in "ab"]
    outputs: list[str] = []
    with TestClient(create_app(settings, save_tagged_bundle(tmp_path / "b"))) as client:
        for key in secrets:
            for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
                for method, path, body in [
                    ("GET", RECS, None),
                    ("GET", "/v1/users/u1/recommendations?k=0", None),
                    ("POST", "/v1/events", {"bad": 1}),
                    ("POST", "/v1/admin/catalogues/artists/promote", {"version": "1"}),
                    ("GET", "/nowhere", None),
                ]:
                    r = client.request(method, path, json=body, headers=headers)
                    outputs += [r.text, json.dumps(dict(r.headers))]
        store.revoke("a", "t", "t")
        r = client.get(RECS, headers={"X-API-Key": secrets[0]})
        outputs += [r.text, json.dumps(dict(r.headers)), client.get("/metrics").text]
    outputs += [record.getMessage() for record in caplog.records]
    outputs += [json.dumps([e.public() for e in store.audit_log(1000)])]
    outputs += [json.dumps([k.public() for k in store.all()])]
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]
    store.close()
    text = "\n".join(outputs)
    assert "/v1/users/u1/recommendations" in text or "unauthorized" in text  # outputs were read
    for key in secrets:
        assert key not in text and key[12:] not in text


def test_keyless_refusals_count_against_the_address(tmp_path: Path) -> None:
    settings = _settings(tmp_path, rate_limit="3/minute")
    with TestClient(create_app(settings, save_tagged_bundle(tmp_path / "b"))) as client:
        statuses = [client.post("/v1/admin/reload").status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        assert client.get(RECS, headers={"X-API-Key": "sl_" + "B" * 43}).status_code == 429
    store = _keys(settings)
    refused = [e for e in store.audit_log(100) if e.action == "admin.refused"]
    store.close()
    assert len(refused) == 3  # past the limit, refusals cost no audit write
