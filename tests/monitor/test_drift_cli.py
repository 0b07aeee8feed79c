"""`setlist drift report` on a private home: a real SQLite event store and MLflow registry.

The store holds two hours of simulated traffic (:mod:`tests.monitor.test_drift`'s listeners):
one hour of listeners as the champion learned them, then one hour after their tastes moved to
other genres. The report must see the drift, write the HTML and log it to MLflow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.cli import app
from setlist.cli.common import console
from setlist.config import Settings, WeightConfig, get_settings
from setlist.data.clean import aggregate
from setlist.data.synthetic import generate_preset
from setlist.errors import ConfigError, DataError, NotFoundError
from setlist.events.schema import Event
from setlist.events.store import open_store
from setlist.events.store.base import from_us
from setlist.matrix import build_matrix, weight
from setlist.models.als import ALSRecommender
from setlist.registry import Registry, RegistryConfig
from setlist.simulate import ListenerModel
from tests.monitor.test_drift import START_US, WINDOW_S, Traffic

US = 1_000_000


def _store_events(settings: Settings, listeners: ListenerModel, popularity: np.ndarray) -> None:
    traffic = Traffic(listeners, popularity)
    rng = np.random.default_rng(0)
    shown = traffic.slates_for(listeners.taste)  # the champion keeps showing the old tastes
    taste = np.roll(listeners.taste, 1, axis=1)
    moved = ListenerModel(listeners.user_ids, listeners.item_ids, listeners.item_genre, taste)
    frames = [
        traffic.window(0, listeners, shown, rng, 150),
        traffic.window(1, moved, shown, rng, 150),
    ]
    events = [
        Event(
            event_id=uuid.uuid4().hex,
            user_id=row["user_id"],
            item_id=row["item_id"],
            type=row["type"],
            ts=from_us(row["ts_us"]),
            play_ms=row["play_ms"],
            position=row["position"],
            propensity=row["propensity"],
            model_version="1",
        )
        for frame in frames
        for row in frame.iter_rows(named=True)
    ]
    with open_store(settings.events().store_url) as store:
        for start in range(0, len(events), 1000):
            store.append(events[start : start + 1000])


def _register_champion(settings: Settings, folder: Path) -> None:
    world = generate_preset("tiny")
    train = build_matrix(aggregate(world.interactions))
    model = ALSRecommender(factors=16, iterations=5, seed=0, threads=1)
    model.fit(weight(train.csr, WeightConfig()))
    ModelBundle.build(
        model, train, world.items, BundleMeta(model_type="als"), world.item_tags
    ).save(folder)
    registry = Registry(RegistryConfig.from_settings(settings))
    version = registry.log_model(
        run_name="champion",
        bundle_dir=folder,
        model_type="als",
        params={"factors": 16},
        metrics={"ndcg@10": 0.1},
        data={"name": "synthetic:tiny"},
        fit_seconds=0.1,
    )
    registry.set_alias("champion", version.version)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with the two hours of events and an ALS champion trained on the same world."""
    root = tmp_path_factory.mktemp("drift-cli")
    settings = Settings(home=root / "home", download=False, mlflow_tracking_uri=None)
    world = generate_preset("tiny")
    listeners = ListenerModel.from_world(world)
    counts = world.interactions.group_by("item").len()
    listeners_per_item = dict(counts.iter_rows())
    popularity = np.array([listeners_per_item.get(i, 0) + 1.0 for i in listeners.item_ids])
    _store_events(settings, listeners, popularity)
    _register_champion(settings, root / "bundle")
    yield settings.home


def invoke(home: Path, args: list[str], **env: str) -> Any:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SETLIST_HOME", str(home))
        mp.setenv("SETLIST_DOWNLOAD", "false")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        mp.setattr(console, "width", 250)  # tables are read by the tests, not people
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, ["drift", "report", *args])
        finally:
            get_settings.cache_clear()


def _drift_runs(home: Path) -> list[Any]:
    from mlflow.tracking import MlflowClient

    settings = Settings(home=home, download=False, mlflow_tracking_uri=None)
    client = MlflowClient(settings.tracking_uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`setlist.kind` = 'drift_report'")
    return [(run, [a.path for a in client.list_artifacts(run.info.run_id)]) for run in runs]


def test_the_report_sees_the_shift_writes_html_and_logs_to_mlflow(
    home: Path, tmp_path: Path
) -> None:
    out = tmp_path / "reports" / "drift.html"
    result = invoke(home, ["--window", "1h", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "model v1" in result.output and "drift:" in result.output
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 3 and "listen_through" in text
    runs = [(r, files) for r, files in _drift_runs(home) if r.data.params["window_s"] == "3600.0"]
    assert len(runs) == 1
    run, files = runs[0]
    assert run.data.tags["drift.detected"] == "true"
    assert "listen_through" in run.data.tags["drift.reason"]
    assert run.data.metrics["drift.listen_through"] > 0.02
    assert run.data.metrics["drift.new_users"] == 0.0  # every listener is the champion's
    assert "drift.user_vectors_pca" in run.data.metrics
    assert files == ["drift.html"]


def test_without_a_champion_the_model_checks_say_why(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "drift.html"
    result = invoke(home, ["--out", str(out)], SETLIST_MODEL_NAME="never-registered")
    assert result.exit_code == 0, result.output
    assert "none (no champion registered)" in result.output
    assert "not checked: no served model's users" in result.output
    assert out.is_file()


def test_end_picks_the_current_window(home: Path, tmp_path: Path) -> None:
    first_hour_end = from_us(START_US + int(WINDOW_S * US)).isoformat()
    result = invoke(home, ["--end", first_hour_end, "--out", str(tmp_path / "d.html")])
    assert result.exit_code == 0, result.output
    assert "too_few_events" in result.output  # nothing before the first hour to compare with


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--window", "0s"], ConfigError, "--window '0s' is 0 s; accepted range is 1 s"),
        (["--window", "soon"], ConfigError, "--window 'soon' is not a duration"),
        (["--end", "yesterday"], ConfigError, "--end 'yesterday' is not an ISO 8601 time"),
        (["--version", "99"], NotFoundError, "version '99'"),
    ],
)
def test_bad_options_are_refused_by_name(
    home: Path, tmp_path: Path, args: list[str], error: type, message: str
) -> None:
    result = invoke(home, [*args, "--out", str(tmp_path / "d.html")])
    assert isinstance(result.exception, error), result.output
    assert message in result.exception.message
    assert not (tmp_path / "d.html").exists()


def test_an_empty_event_store_is_an_error(tmp_path: Path) -> None:
    result = invoke(tmp_path / "empty-home", ["--out", str(tmp_path / "d.html")])
    assert isinstance(result.exception, DataError), result.output
    assert "no events in the event store sqlite:" in result.exception.message
