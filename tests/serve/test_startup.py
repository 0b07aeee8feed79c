"""Start-up: the champion comes from the registry once; without one the app still starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from setlist.config import Settings
from setlist.registry import Registry, RegistryConfig
from setlist.registry.gate import promote
from setlist.serve import create_app
from tests.serve.conftest import make_settings

NO_MODEL_ROUTES = [
    "/v1/model",
    "/v1/users/u1/recommendations",
    "/v1/users/nobody/recommendations",
    "/v1/items/a/similar",
]


@pytest.fixture(scope="module")
def registry_settings(
    bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A SQLite registry whose champion is the tiny bundle (version 1)."""
    settings = make_settings(tmp_path_factory.mktemp("home"))
    registry = Registry(RegistryConfig.from_settings(settings))
    version = registry.log_model(
        run_name="als-tiny",
        bundle_dir=bundle_dir,
        model_type="als",
        params={"factors": 4},
        metrics={"ndcg@10": 0.42},
        data={"name": "tiny", "fingerprint": "fp-registry"},
        fit_seconds=0.1,
        tags={},
    )
    assert promote(registry, version).promoted
    yield settings


def test_serves_the_registry_champion(registry_settings: Settings) -> None:
    with TestClient(create_app(registry_settings)) as client:
        ready = client.get("/ready").json()
        assert (ready["status"], ready["model_version"]) == ("ready", "1")
        assert ready["catalogues"][0]["registered_model"] == registry_settings.model_name
        model = client.get("/v1/model").json()
        assert model["version"] == "1"
        assert model["metrics"] == {"ndcg@10": 0.42}
        assert model["params"] == {"factors": 4}
        assert model["data_fingerprint"] == "fp-registry"
        body = client.get("/v1/users/u4/recommendations", params={"k": 2}).json()
        assert body["model_version"] == "1" and body["strategy"] == "personalized"


def test_the_model_is_loaded_once_not_per_request(
    registry_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = Registry.download

    def counting(self: Registry, version: str, dest: Path) -> Path:
        calls.append(version)
        return original(self, version, dest)

    monkeypatch.setattr(Registry, "download", counting)
    with TestClient(create_app(registry_settings)) as client:
        for _ in range(3):
            assert client.get("/v1/users/u1/recommendations").status_code == 200
    assert len(calls) == 1


def _assert_not_ready(client: TestClient, why: str) -> None:
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.headers["retry-after"].isdigit()
    assert ready.json()["error"]["code"] == "unavailable"
    assert why in ready.json()["error"]["message"]
    for url in NO_MODEL_ROUTES:
        resp = client.get(url)
        assert resp.status_code == 503, url
        assert "retry-after" in resp.headers
    assert "setlist_model_loaded{" in client.get("/metrics").text
    assert '"} 0.0' in client.get("/metrics").text.split("setlist_model_loaded{")[1]


def test_empty_registry_starts_but_is_not_ready(registry_settings: Settings) -> None:
    # Same store, a model name with no versions: no champion.
    settings = registry_settings.model_copy(update={"model_name": "nothing-registered"})
    with TestClient(create_app(settings)) as client:
        _assert_not_ready(client, "no champion")


def test_unreadable_bundle_starts_but_is_not_ready(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path), tmp_path / "missing")) as client:
        _assert_not_ready(client, "loading failed")


def test_corrupted_bundle_starts_but_is_not_ready(bundle_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle_dir, copy)
    (copy / "bundle.npz").write_bytes(b"not a zip")
    with TestClient(create_app(make_settings(tmp_path), copy)) as client:
        _assert_not_ready(client, "SHA-256")
