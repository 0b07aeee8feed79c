"""ETL to Parquet shards: tiny Last.fm-360K TSVs and MPD slices written here, local and Ray."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from setlist.cli import app
from setlist.config import Settings
from setlist.data.etl import etl, plan
from setlist.data.loaders import LASTFM_360K_COLUMNS, lastfm_interactions, read_table
from setlist.data.playlists import read_playlists
from setlist.data.sources import SourceConfig
from setlist.errors import ValidationError

MBID = "a74b1b7f-71a5-4011-9441-d0b5e4122711"
BAD_LINES = {7: "weight", 19: "user", 31: "row"}  # plays not a number, no user, a 5th field


def write_tsv(path: Path, rows: int = 40) -> Path:
    lines = []
    for line in range(1, rows + 1):
        user, plays = f"{line % 7:040x}", str(10 + line)
        mbid, name = (MBID, "radiohead") if line % 3 else ("", f"band {line % 5}")
        if line == 4:
            name = '"lee ""scratch"" perry"'  # 360K's quoting of names with a quote
        fields = [user, mbid, name, plays]
        if BAD_LINES.get(line) == "weight":
            fields[3] = "many"
        elif BAD_LINES.get(line) == "user":
            fields[0] = ""
        elif BAD_LINES.get(line) == "row":
            fields.append("extra")
        lines.append("\t".join(fields))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def shards(folder: Path) -> dict[str, pl.DataFrame]:
    files = sorted(folder.rglob("*.parquet"))
    return {str(p.relative_to(folder)): pl.read_parquet(p) for p in files}


def quarantined_lines(folder: Path) -> list[int]:
    files = sorted((folder / "quarantine").glob("*.csv"))
    return sorted(line for f in files for line in pl.read_csv(f).get_column("line").to_list())


def test_tsv_parts_equal_the_360k_loader_and_quarantine_names_the_lines(tmp_path: Path) -> None:
    source = write_tsv(tmp_path / "plays.tsv")
    out = tmp_path / "out"
    result = etl(str(source), out, on_bad_rows="quarantine", part_bytes=400)
    assert result.parts == len(plan("tsv", source, 400)) > 3
    expected, report = lastfm_interactions(
        read_table(source, names=LASTFM_360K_COLUMNS),
        str(source),
        on_bad_rows="quarantine",
        quarantine_path=tmp_path / "loader.csv",
        quoted_names=True,
    )
    plays = pl.concat(list(shards(out).values()))
    columns = ["user", "item", "weight", "name", "mbid"]
    assert plays.equals(expected.select(columns))
    assert (result.rows_read, result.rows_written, result.rows_quarantined) == (40, 37, 3)
    assert report.rows_accepted == 37
    assert quarantined_lines(out) == sorted(BAD_LINES)  # lines of the whole file, not the part
    assert 'lee "scratch" perry' in plays.get_column("name").to_list()


def test_the_mirrored_360k_sample_equals_its_loader(mirror: Path, settings: Settings) -> None:
    from setlist.data.loaders import load

    config = SourceConfig.from_settings(settings)
    result = etl("lastfm-360k", settings.home / "shards", config=config, part_bytes=2**18)
    dataset, report = load("lastfm-360k", config)
    assert result.parts > 2 and result.rows_written == report.rows_accepted == 10_000
    plays = pl.concat(list(shards(settings.home / "shards").values()))
    assert plays.select("user", "item", "weight").equals(
        dataset.interactions.select("user", "item", "weight")
    )


def test_tsv_fail_names_file_and_first_bad_line(tmp_path: Path) -> None:
    source = write_tsv(tmp_path / "plays.tsv")
    with pytest.raises(ValidationError, match=r"plays.tsv, line 7, column 'weight'.*'many'"):
        etl(str(source), tmp_path / "out", part_bytes=400)


def test_tsv_on_ray_writes_the_same_shards(tmp_path: Path, ray_session: None) -> None:
    source = write_tsv(tmp_path / "plays.tsv")
    local = etl(str(source), tmp_path / "local", on_bad_rows="quarantine", part_bytes=400)
    ray = etl(
        str(source), tmp_path / "ray", backend="ray", on_bad_rows="quarantine", part_bytes=400
    )
    assert (ray.parts, ray.rows_written, ray.rows_quarantined) == (
        local.parts, local.rows_written, local.rows_quarantined,
    )  # fmt: skip
    a, b = shards(tmp_path / "local"), shards(tmp_path / "ray")
    assert a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)
    assert quarantined_lines(tmp_path / "ray") == sorted(BAD_LINES)
    with pytest.raises(ValidationError, match=r"line 7, column 'weight'"):
        etl(str(source), tmp_path / "ray", backend="ray", part_bytes=400)


def _track(n: int) -> dict[str, Any]:
    return {"track_uri": f"spotify:track:t{n}", "track_name": f"T{n}", "artist_name": f"A{n}"}


def _playlist(pid: Any, tracks: list[int]) -> dict[str, Any]:
    return {"pid": pid, "name": f"p{pid}", "num_followers": 1, "num_tracks": len(tracks),
            "tracks": [_track(n) for n in tracks]}  # fmt: skip


def write_slices(folder: Path) -> Path:
    """Three slices: tracks shared across them, a bad playlist, a pid repeated in a later slice
    (whose only new track must not be listed)."""
    slices = {
        "mpd.slice.0-999.json": [_playlist(0, [1, 2]), _playlist(1, [2, 3, 2])],
        "mpd.slice.1000-1999.json": [_playlist(2, [3, 4]), {**_playlist("x", [5])}],
        "mpd.slice.2000-2999.json": [_playlist(1, [9]), _playlist(3, [4, 6, 1])],
    }
    folder.mkdir(parents=True)
    for name, playlists in slices.items():
        (folder / name).write_text(json.dumps({"info": {}, "playlists": playlists}))
    return folder


def test_slices_equal_the_single_reader_and_ray_equals_local(
    tmp_path: Path, ray_session: None
) -> None:
    source = write_slices(tmp_path / "mpd")
    local = etl(str(source), tmp_path / "local", on_bad_rows="quarantine")
    ds, report = read_playlists(source, on_bad_rows="quarantine", quarantine_path=tmp_path / "q")
    for table in ("playlists", "tracks", "playlist_tracks"):
        parts = sorted((tmp_path / "local" / table).glob("*.parquet"), key=lambda p: p.name)
        order = sorted(parts, key=lambda p: int(p.stem.split(".")[2].split("-")[0]))
        assert pl.concat([pl.read_parquet(p) for p in order]).equals(getattr(ds, table)), table
    assert (local.parts, local.rows_read, local.rows_written, local.rows_quarantined) == (
        3, 6, 4, 2,
    )  # fmt: skip
    assert report.playlists_kept == local.rows_written
    records = [
        json.loads(line)
        for f in sorted((tmp_path / "local" / "quarantine").glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert sorted((r["file"].rsplit("/", 1)[1], r["pid"], r["field"]) for r in records) == [
        ("mpd.slice.1000-1999.json", None, "pid"),
        ("mpd.slice.2000-2999.json", 1, "pid"),
    ]
    ray = etl(str(source), tmp_path / "ray", backend="ray", on_bad_rows="quarantine")
    assert ray.rows_written == local.rows_written
    a, b = shards(tmp_path / "local"), shards(tmp_path / "ray")
    assert a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)


def test_repeated_pid_fails_naming_both_slices(tmp_path: Path) -> None:
    source = tmp_path / "mpd"
    source.mkdir()
    for name, pid in (("mpd.slice.0-999.json", 0), ("mpd.slice.1000-1999.json", 0)):
        (source / name).write_text(json.dumps({"playlists": [_playlist(pid, [1])]}))
    with pytest.raises(ValidationError, match=r"1000-1999.json, pid 0.*first in mpd.slice.0-999"):
        etl(str(source), tmp_path / "out")


def test_cli_etl_prints_rates_and_refuses_an_unknown_backend(tmp_path: Path) -> None:
    source = write_tsv(tmp_path / "plays.tsv")
    args = ["data", "etl", str(source), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--on-bad-rows", "quarantine", "--part-mb", "0.001"])
    assert result.exit_code == 0, result.output
    assert "rows/s" in result.output and "rows quarantined" in result.output
    bad = CliRunner().invoke(app, [*args, "--backend", "spark"])
    assert bad.exit_code != 0 and "--backend must be local or ray" in bad.output
