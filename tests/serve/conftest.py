"""Apps over a tiny real bundle: served from a folder, from a registry, and with no model."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # Starlette 1.x deprecates httpx inside its TestClient in favour of httpx2 (not installed).
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle
from setlist.config import Settings
from setlist.serve import create_app
from tests.registry.bundles import save_bundle


def make_settings(home: Path, **overrides: object) -> Settings:
    # The test client is not on loopback: the per-address rate limit only where a test asks.
    overrides.setdefault("rate_limit", "")
    return Settings(home=home, mlflow_tracking_uri=None, download=False, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    meta = {
        "model_type": "als",
        "metrics": {"ndcg@10": 0.5, "broken": float("nan")},
        "data_fingerprint": "fp-tiny",
        "trained_at": "2024-05-01T12:00:00+00:00",
    }
    return save_bundle(tmp_path_factory.mktemp("bundle") / "bundle", "als", meta)


@pytest.fixture(scope="module")
def bundle(bundle_dir: Path) -> ModelBundle:
    return ModelBundle.load(bundle_dir)


@pytest.fixture(scope="module")
def client(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app serving the bundle folder (no MLflow involved)."""
    app = create_app(make_settings(tmp_path_factory.mktemp("home")), bundle_dir)
    with TestClient(app) as test_client:
        yield test_client
