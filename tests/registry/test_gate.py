"""The significance gate: the pure rule, and the decision recorded in MLflow and listed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from setlist.config import Settings, get_settings
from setlist.evaluate.stats import compare_paired
from setlist.registry import CHAMPION, ModelVersion, Registry, RegistryConfig
from setlist.registry.gate import decide, gate_summary, promote
from tests.registry.bundles import save_bundle


def version(number: str, ndcg: float = 0.2) -> ModelVersion:
    return ModelVersion(
        "m", number, f"run-{number}", [], "als", {}, {"ndcg@10": ndcg}, {}, datetime.now(UTC)
    )


def paired(shift: float, noise: float = 0.02, n: int = 200, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    base = rng.random(n) * 0.5
    return compare_paired(base + shift + rng.normal(0, noise, n), base)


def test_rule_without_champion_and_for_the_champion_itself() -> None:
    assert decide(version("1"), 0.2, None, None) == (True, "no champion yet; candidate ndcg@10=0.2")
    promoted, reason = decide(version("2"), 0.2, version("2"), paired(0.1))
    assert not promoted and "already the champion" in reason
    promoted, reason = decide(version("3"), float("nan"), None, None)
    assert not promoted and "not a finite number" in reason


def test_rule_needs_significance_and_an_interval_above_zero() -> None:
    champion = version("1")
    promoted, reason = decide(version("2"), 0.3, champion, paired(0.05))
    assert promoted and reason.startswith("significantly better") and "p=" in reason
    promoted, reason = decide(version("2"), 0.3, champion, paired(0.0, noise=0.1))
    assert not promoted and "not significantly better" in reason
    promoted, reason = decide(version("2"), 0.1, champion, paired(-0.05))
    assert not promoted and "not significantly better" in reason
    few = paired(0.2, n=10)
    promoted, reason = decide(version("2"), 0.4, champion, few)
    assert not promoted and "too few paired users (10 < 20)" in reason


def test_rule_without_paired_evidence_says_unpaired() -> None:
    promoted, reason = decide(version("2"), 0.3, version("1", 0.2), None)
    assert promoted and reason.startswith("unpaired")


@pytest.fixture(scope="module")
def settings_and_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("gate")
    settings = Settings(home=root / "home", mlflow_tracking_uri=None, download=False)
    return settings, save_bundle(root / "bundle", "als")


def test_decision_p_value_and_interval_are_logged_and_listed(
    settings_and_bundle: tuple[Settings, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, bundle = settings_and_bundle
    name = f"m-{uuid.uuid4().hex[:8]}"
    base = RegistryConfig.from_settings(settings)
    registry = Registry(
        RegistryConfig(base.tracking_uri, base.artifact_root, base.experiment, name)
    )

    def log(ndcg: float) -> ModelVersion:
        return registry.log_model(
            run_name="gate", bundle_dir=bundle, model_type="als", params={},
            metrics={"ndcg@10": ndcg}, data={}, fit_seconds=0.1,
        )  # fmt: skip

    first = promote(registry, log(0.2))
    assert first.promoted and first.comparison is None
    noisy = promote(registry, log(0.21), paired(0.0, noise=0.1))
    assert not noisy.promoted and noisy.comparison is not None
    better = promote(registry, log(0.25), paired(0.05))
    assert better.promoted and registry.champion() is not None
    assert registry.get(CHAMPION).version == better.candidate.version

    from mlflow.tracking import MlflowClient

    run = MlflowClient(registry.uri).get_run(noisy.candidate.run_id)
    assert run.data.tags["gate.promoted"] == "false" and run.data.tags["gate.test"] == "wilcoxon"
    assert run.data.metrics["gate.p_value"] == pytest.approx(noisy.comparison.p_value)
    assert run.data.metrics["gate.ci_low"] < 0 < run.data.metrics["gate.ci_high"]
    decision, p_value, interval = gate_summary(registry.get(noisy.candidate.version).tags)
    assert decision == "refused" and float(p_value) >= 0.05 and interval.startswith("[")

    monkeypatch.setenv("SETLIST_HOME", str(settings.home))
    monkeypatch.setenv("SETLIST_MODEL_NAME", name)
    get_settings.cache_clear()
    try:
        from setlist.cli import app
        from setlist.cli.common import console

        monkeypatch.setattr(console, "width", 250)
        listed = CliRunner().invoke(app, ["models", "list"], terminal_width=250)
    finally:
        get_settings.cache_clear()
    assert listed.exit_code == 0, listed.output
    assert "refused" in listed.output and "promoted" in listed.output and p_value in listed.output


def test_training_a_worse_model_after_a_better_one_is_refused_on_paired_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`setlist train --models ease,popularity`: popularity is evaluated against the EASE
    champion on the same test users and refused with the p-value, never promoted."""
    monkeypatch.setenv("SETLIST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SETLIST_DOWNLOAD", "false")
    get_settings.cache_clear()
    try:
        from setlist.cli import app
        from setlist.cli.common import console

        monkeypatch.setattr(console, "width", 250)
        args = ["train", "-d", "synthetic:tiny", "--models", "ease,popularity",
                "--param", "ease.l2=20", "--min-item-users", "1"]  # fmt: skip
        result = CliRunner().invoke(app, args, terminal_width=250)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "gate, ease v1: no champion yet" in result.output
    assert "gate, popularity v2: not significantly better" in result.output
    registry = Registry(
        RegistryConfig.from_settings(Settings(home=tmp_path / "home", download=False))
    )
    assert registry.get(CHAMPION).version == "1"
    refused = registry.get("2")
    assert float(refused.tags["gate.p_value"]) < 0.05  # significantly worse, and refused
