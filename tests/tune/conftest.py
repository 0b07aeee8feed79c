"""A generic interactions file with a fixed test file, and the CLI pointed at a private home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from setlist.cli.common import console
from setlist.config import get_settings
from setlist.data.synthetic import generate_preset


@pytest.fixture(scope="session")
def plays(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``plays.csv`` (train) and ``test.csv``: a tiny synthetic world, 20% of rows held out."""
    folder = tmp_path_factory.mktemp("plays")
    frame = generate_preset("tiny", seed=1).interactions.select("user", "item", "weight")
    frame = frame.with_columns(pl.Series("r", range(frame.height)))
    test = frame.filter(pl.col("r") % 5 == 0).drop("r")
    train = frame.filter(pl.col("r") % 5 != 0).drop("r")
    train.write_csv(folder / "plays.csv")
    test.write_csv(folder / "test.csv")
    return folder / "plays.csv", folder / "test.csv"


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("SETLIST_HOME", str(home))
    monkeypatch.setenv("SETLIST_DOWNLOAD", "false")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(console, "width", 250)  # tables are read by the tests, not people
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()
