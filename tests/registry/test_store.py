"""The MLflow-backed registry on a real SQLite store under tmp_path."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from setlist.bundle import ModelBundle
from setlist.config import Settings
from setlist.errors import ArtifactError, ConfigError, NotFoundError, RegistryError
from setlist.registry import CHAMPION, ModelVersion, Registry, RegistryConfig
from setlist.registry.gate import promote
from tests.registry.bundles import save_bundle


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One SQLite store per module (creating its tables takes seconds) and two bundle folders."""
    root = tmp_path_factory.mktemp("registry")
    home = root / "nested" / "home"  # not created: the registry makes the SQLite folder
    settings = Settings(home=home, mlflow_tracking_uri=None, download=False)
    Registry(RegistryConfig.from_settings(settings))
    yield {
        "settings": settings,
        "als": save_bundle(root / "als-bundle", "als"),
        "pop": save_bundle(root / "pop-bundle", "popularity"),
    }


@pytest.fixture
def registry(store: dict[str, Any]) -> Registry:
    """A registry over the shared store with a model name of its own (tests stay independent)."""
    base = RegistryConfig.from_settings(store["settings"])
    config = RegistryConfig(
        base.tracking_uri, base.artifact_root, base.experiment, f"m-{uuid.uuid4().hex[:8]}"
    )
    return Registry(config)


def _log(registry: Registry, bundle: Path, ndcg: float, **extra: Any) -> ModelVersion:
    return registry.log_model(
        run_name="test-run",
        bundle_dir=bundle,
        model_type=extra.pop("model_type", "als"),
        params=extra.pop("params", {"factors": 4, "iterations": 3}),
        metrics={"ndcg@10": ndcg, "precision@10": ndcg / 2},
        data={"name": "tiny", "fingerprint": "fp-tiny", "train_nnz": 19, "quality.ok": True},
        fit_seconds=0.25,
        tags={"split": "random"},
        **extra,
    )


def _run(registry: Registry, run_id: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=registry.uri).get_run(run_id)


def test_config_from_settings(settings: Settings) -> None:
    config = RegistryConfig.from_settings(settings)
    assert config.tracking_uri.startswith("sqlite:///")
    assert config.tracking_uri.endswith("mlflow.db")
    assert config.artifact_root == settings.home / "mlartifacts"
    assert (config.experiment, config.model_name) == (settings.experiment, settings.model_name)


def test_log_model_registers_a_version_with_everything(
    registry: Registry, store: dict[str, Any]
) -> None:
    mv = _log(registry, store["als"], 0.4)
    assert mv.version == "1"
    assert mv.model_type == "als"
    assert mv.params == {"factors": 4, "iterations": 3}
    assert mv.metrics == {"ndcg@10": 0.4, "precision@10": 0.2}
    assert mv.tags["split"] == "random"
    assert mv.tags["metric.ndcg_at_10"] == "0.4"
    assert mv.data_fingerprint == "fp-tiny"
    assert mv.created_at.tzinfo is not None
    assert mv.aliases == []

    run = _run(registry, mv.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model_type"] == "als"
    assert run.data.params["factors"] == "4"
    assert run.data.params["data.fingerprint"] == "fp-tiny"
    assert run.data.metrics["ndcg_at_10"] == pytest.approx(0.4)
    assert run.data.metrics["fit_seconds"] == pytest.approx(0.25)
    assert run.data.metrics["data.train_nnz"] == 19
    assert run.data.tags["split"] == "random"
    # Artifacts live under the configured artifact root, as plain files (no pickle).
    root = store["settings"].artifact_root.resolve()
    assert run.info.artifact_uri.startswith(root.as_uri())
    assert registry.get("1") == mv


def test_log_model_refuses_a_folder_that_is_not_a_bundle(
    registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match="bundle.json"):
        _log(registry, tmp_path, 0.1)


def test_list_versions_newest_first_with_aliases(registry: Registry, store: dict[str, Any]) -> None:
    assert registry.list_versions() == []
    assert registry.champion() is None
    for ndcg in (0.1, 0.2, 0.3):
        _log(registry, store["pop"], ndcg, model_type="popularity", params={})
    registry.set_alias("staging", "2")
    versions = registry.list_versions()
    assert [v.version for v in versions] == ["3", "2", "1"]
    assert [v.aliases for v in versions] == [[], ["staging"], []]
    assert versions[0].metrics["ndcg@10"] == 0.3
    assert registry.get("staging").version == "2"


def test_unknown_versions_and_aliases_are_not_found(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="'7'"):
        registry.get("7")
    with pytest.raises(NotFoundError, match="'no-such-alias'"):
        registry.get("no-such-alias")
    with pytest.raises(NotFoundError):
        registry.set_alias("staging", "7")
    assert registry.load_champion(Path("unused")) is None


def test_gate_promotes_first_and_better_only(registry: Registry, store: dict[str, Any]) -> None:
    first = _log(registry, store["pop"], 0.20)
    decision = promote(registry, first)
    assert decision.promoted and decision.champion_before is None
    assert decision.candidate.aliases == [CHAMPION]

    worse = _log(registry, store["pop"], 0.10)
    decision = promote(registry, worse)
    assert not decision.promoted
    assert decision.champion_value == pytest.approx(0.20)
    assert decision.candidate_value == pytest.approx(0.10)
    assert decision.champion_before is not None and decision.champion_before.version == "1"
    assert "not higher" in decision.reason

    equal = _log(registry, store["pop"], 0.20)
    assert not promote(registry, equal).promoted

    better = _log(registry, store["als"], 0.30)
    decision = promote(registry, better)
    assert decision.promoted
    champion = registry.champion()
    assert champion is not None and champion.version == better.version
    assert not promote(registry, champion).promoted  # already champion

    # The decision is recorded on the runs (and on the versions, for listing).
    run = _run(registry, worse.run_id)
    assert run.data.tags["gate.promoted"] == "false"
    assert run.data.tags["gate.metric"] == "ndcg@10"
    assert run.data.tags["gate.champion_before"] == "1"
    assert "not higher" in run.data.tags["gate.reason"]
    assert run.data.metrics["gate.candidate_value"] == pytest.approx(0.10)
    assert run.data.metrics["gate.champion_value"] == pytest.approx(0.20)
    run = _run(registry, better.run_id)
    assert run.data.tags["gate.promoted"] == "true"
    assert registry.get(worse.version).tags["gate.promoted"] == "false"


def test_gate_needs_the_metric_and_a_finite_value(
    registry: Registry, store: dict[str, Any]
) -> None:
    mv = _log(registry, store["pop"], 0.2)
    with pytest.raises(ConfigError, match="recall@10"):
        promote(registry, mv, metric="recall@10")
    broken = _log(registry, store["pop"], float("nan"))
    decision = promote(registry, broken)
    assert not decision.promoted and "finite" in decision.reason
    assert registry.champion() is None


def test_download_round_trip(registry: Registry, store: dict[str, Any], tmp_path: Path) -> None:
    mv = _log(registry, store["als"], 0.4)
    promote(registry, mv)
    original = ModelBundle.load(store["als"])
    loaded = registry.load_champion(tmp_path / "dl")
    assert loaded is not None
    version, bundle = loaded
    assert version.version == mv.version and version.aliases == [CHAMPION]
    rows = np.arange(len(bundle.users))
    expected = original.model.recommend(rows, original.seen[rows], k=3)
    got = bundle.model.recommend(rows, bundle.seen[rows], k=3)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1])
    assert bundle.items.ids.tolist() == original.items.ids.tolist()
    # A second download of the same version replaces the first cleanly.
    again = registry.download(CHAMPION, tmp_path / "dl")
    assert ModelBundle.load(again).meta == original.meta


def test_corrupted_artifacts_are_refused(
    registry: Registry, store: dict[str, Any], tmp_path: Path
) -> None:
    mv = _log(registry, store["als"], 0.4)
    promote(registry, mv)
    artifacts = Path(_run(registry, mv.run_id).info.artifact_uri.removeprefix("file://"))
    npz = artifacts / "model" / "bundle.npz"
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="SHA-256"):
        registry.download(mv.version, tmp_path / "a")
    with pytest.raises(ArtifactError):
        registry.load_champion(tmp_path / "b")


def test_unreachable_server_is_a_registry_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(RegistryError, match=uri):
        Registry(RegistryConfig(uri, Path("unused"), "setlist", "setlist"))


def test_importing_the_registry_does_not_import_mlflow() -> None:
    code = "import sys, setlist.registry, setlist.serve; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
