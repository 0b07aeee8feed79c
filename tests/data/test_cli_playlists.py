"""`setlist data validate` on MPD slices: a folder of real slices passes and is stored as
Parquet under SETLIST_HOME; the truncated real slice is refused naming the file and byte."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from setlist.cli import app, main
from setlist.cli.common import console
from setlist.config import get_settings

SLICES = ("mpd.slice.0-999.json", "mpd.slice.1000-1999.json", "mpd.slice.10000-10999.json")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("SETLIST_HOME", str(home))
    monkeypatch.setenv("SETLIST_DOWNLOAD", "false")
    monkeypatch.setattr(console, "width", 250)  # tables are read by the test, not people
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def _figures(output: str) -> dict[str, str]:
    """The report table's rows (figure, value)."""
    rows = (line.strip("│┃ ").split("│") for line in output.splitlines())
    return {cells[0].strip(): cells[1].strip() for cells in rows if len(cells) == 2}


@pytest.mark.integration
def test_validate_folder_of_real_slices(mirror: Path, home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "slices"
    folder.mkdir()
    for name in SLICES:
        shutil.copy(mirror / "spotify-mpd-subset" / name, folder / name)
    (folder / "README.md").write_text("not a slice")  # listed as ignored, never read

    result = CliRunner().invoke(app, ["data", "validate", str(folder)])

    assert result.exit_code == 0, result.output
    figures = _figures(result.output)
    assert figures["reused"] == "no"
    assert figures["files_read"] == "3"
    assert figures["files_ignored"] == "README.md"
    assert figures["playlists_quarantined"] == "0"
    kept = int(figures["playlists_kept"].replace(",", ""))
    # the store under SETLIST_HOME holds exactly what the report counted
    stores = list((home / "datasets").rglob("playlists.parquet"))
    assert len(stores) == 1, stores
    assert figures["store"] == str(stores[0].parent)
    stored = pl.read_parquet(stores[0])
    assert stored.height == kept > 0
    assert set(stored["slice"].unique()) == set(SLICES)
    pairs = pl.read_parquet(stores[0].parent / "playlist_tracks.parquet")
    assert pairs.height == int(figures["playlist_tracks"].replace(",", ""))

    again = CliRunner().invoke(app, ["data", "validate", str(folder)])  # the store is reused
    assert again.exit_code == 0, again.output
    assert _figures(again.output)["reused"] == "yes"


@pytest.mark.integration
def test_validate_truncated_slice_refused_with_file_and_byte(
    mirror: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = mirror / "spotify-mpd-sample" / "mpd.slice.0-999.truncated.json"
    monkeypatch.setattr(sys, "argv", ["setlist", "data", "validate", str(sample)])

    with pytest.raises(SystemExit) as stop:
        main()

    assert stop.value.code == 2
    out = " ".join(capsys.readouterr().out.split())
    assert f"{sample}: not valid JSON at byte 1,048,576 of 1,048,576" in out
    assert "fetch it again" in out
    assert not list(home.rglob("playlists.parquet"))  # nothing stored
