"""`setlist tune` and `setlist report` on a generic interactions file with a fixed test file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from setlist.cli import app
from setlist.config import Settings
from setlist.errors import ConfigError
from setlist.registry import Registry, RegistryConfig


def _runs(home: Path) -> list[object]:
    from mlflow.tracking import MlflowClient

    settings = Settings(home=home, download=False, mlflow_tracking_uri=None)
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], max_results=1000))


def test_tiny_tuning_run_registers_the_winner_through_the_gate(
    cli: CliRunner, cli_home: Path, plays: tuple[Path, Path]
) -> None:
    train, test = plays
    args = ["tune", "-d", str(train), "--test", str(test), "--models", "ease,knn,blend",
            "--budget", "30s", "--trials", "3", "--min-item-users", "1"]  # fmt: skip
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "winner:" in result.output and "test: NDCG@10" in result.output
    assert "no champion yet" in result.output
    runs = _runs(cli_home)
    studies = [r for r in runs if r.data.tags.get("setlist.kind") == "study"]  # type: ignore[attr-defined]
    assert len(studies) == 1
    parent = studies[0].info.run_id  # type: ignore[attr-defined]
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]  # type: ignore[attr-defined]
    assert len([r for r in nested if r.data.tags.get("setlist.kind") == "trial"]) == 3  # type: ignore[attr-defined]
    registry = Registry(RegistryConfig.from_settings(Settings(home=cli_home, download=False)))
    champion = registry.champion()
    assert champion is not None and champion.tags["setlist.study_run"] == parent
    assert champion.tags["gate.promoted"] == "true"

    listed = cli.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "promoted" in listed.output


def test_report_writes_html_with_images(
    cli: CliRunner, cli_home: Path, plays: tuple[Path, Path], tmp_path: Path
) -> None:
    train, test = plays
    out = tmp_path / "report.html"
    args = ["report", "-d", str(train), "--test", str(test), "--models", "popularity,ease",
            "--param", "ease.l2=50", "--out", str(out), "--min-item-users", "1"]  # fmt: skip
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 3
    assert "ease" in text and "popularity" in text
    assert any(r.data.tags.get("setlist.kind") == "report" for r in _runs(cli_home))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "als,nope"], "unknown model 'nope'; known models:"),
        (["--budget", "0s"], r"--budget '0s' is 0s; accepted range is 1s to 7 days"),
        (["--param", "als.factors=-4"], "als: factors must be at least 1, got -4"),
        (["--param", "ease.lambda=3"], "ease has no parameter 'lambda'; it accepts l2,"),
        (["--models", "ease,blend"], "blend needs at least two other models"),
        (["--backend", "spark"], "--backend must be optuna or ray"),
    ],
)
def test_bad_parameters_fail_before_any_work(
    cli: CliRunner, cli_home: Path, args: list[str], message: str
) -> None:
    result = cli.invoke(app, ["tune", "-d", "/no/such/file.csv", *args])
    assert isinstance(result.exception, ConfigError), result.output
    assert re.search(message, result.exception.message), result.exception.message
    assert not (cli_home / "mlflow.db").exists()  # nothing was started


def test_a_budget_that_cannot_run_one_trial_is_refused(cli: CliRunner, cli_home: Path) -> None:
    args = ["tune", "-d", "synthetic:small", "--models", "two_tower", "--budget", "2s"]
    result = cli.invoke(app, args)
    assert isinstance(result.exception, ConfigError), result.output
    assert "cannot run one trial" in result.exception.message
    assert "accepted range is >=" in result.exception.message
    assert not (cli_home / "mlflow.db").exists()
