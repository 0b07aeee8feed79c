"""MPD slices: tiny slices in tmp_path (valid, optional fields, quarantine, fail, truncated,
duplicate pids, stray files) and the real subset and truncated sample through the mirror."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from setlist.data.playlists import load_playlists, read_playlists
from setlist.errors import ValidationError


def _track(n: int) -> dict[str, Any]:
    return {"track_uri": f"spotify:track:t{n}", "track_name": f"T{n}", "artist_name": f"A{n}"}


def _playlist(pid: Any, tracks: list[int]) -> dict[str, Any]:
    return {"pid": pid, "name": f"p{pid}", "num_followers": 1, "num_tracks": len(tracks),
            "tracks": [_track(n) for n in tracks]}  # fmt: skip


def _slice(folder: Path, name: str, playlists: list[Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"info": {}, "playlists": playlists}), encoding="utf-8")
    return path


def test_valid_folder_tables_and_stray_file_ignored(tmp_path: Path) -> None:
    _slice(tmp_path, "mpd.slice.0-999.json", [_playlist(0, [1, 2]), _playlist(1, [2, 3, 2])])
    (tmp_path / "README.md").write_text("x")
    ds, report = read_playlists(tmp_path)
    assert ds.playlists.get_column("pid").to_list() == [0, 1]
    assert ds.tracks.get_column("track_uri").to_list() == [f"spotify:track:t{n}" for n in (1, 2, 3)]
    assert ds.playlist_tracks.get_column("pos").to_list() == [0, 1, 0, 1, 2]
    assert report.files_ignored == ["README.md"]
    assert ds.playlists.get_column("modified_at").null_count() == 2


def test_bad_playlist_quarantined_others_kept(tmp_path: Path) -> None:
    bad = _playlist(5, [1])
    del bad["tracks"][0]["track_uri"]
    _slice(tmp_path / "in", "mpd.slice.0-999.json", [_playlist(4, [1]), bad, _playlist(4, [2])])
    q = tmp_path / "q.jsonl"
    ds, report = read_playlists(tmp_path / "in", on_bad_rows="quarantine", quarantine_path=q)
    assert ds.playlists.get_column("pid").to_list() == [4]
    assert report.playlists_quarantined == 2
    records = [orjson.loads(line) for line in q.read_bytes().splitlines()]
    assert [(r["pid"], r["field"]) for r in records] == [(5, "tracks[0].track_uri"), (4, "pid")]
    assert "duplicate pid" in records[1]["reason"]


def test_fail_names_file_pid_field(tmp_path: Path) -> None:
    _slice(tmp_path, "mpd.slice.0-999.json", [_playlist(0, [1]), {**_playlist(7, []), "tracks": 3}])
    with pytest.raises(
        ValidationError, match=r"mpd.slice.0-999.json, playlist #1 \(pid 7\), field 'tracks'"
    ):
        read_playlists(tmp_path)


def test_truncated_file_names_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "mpd.slice.0-999.json"
    path.write_bytes(b'{"playlists": [{"pid": 1, "name": "\xc3\xa9')
    with pytest.raises(ValidationError, match=r"0-999.json: not valid JSON at byte 37 of 37"):
        read_playlists(path)


def test_store_reused_by_fingerprint(tmp_path: Path) -> None:
    _slice(tmp_path / "in", "mpd.slice.0-999.json", [_playlist(0, [1])])
    first, r1 = load_playlists(tmp_path / "in", tmp_path / "store")
    again, r2 = load_playlists(tmp_path / "in", tmp_path / "store")
    assert (r1.reused, r2.reused) == (False, True)
    assert first.fingerprint == again.fingerprint and again.playlists.equals(first.playlists)


@pytest.mark.integration
def test_real_subset_and_truncated_sample(mirror: Path) -> None:
    ds, report = read_playlists(mirror / "spotify-mpd-subset")
    assert (ds.playlists.height, ds.tracks.height, ds.playlist_tracks.height) == (
        2_622, 104_254, 254_147,
    )  # fmt: skip
    assert report.playlists_quarantined == 0
    sample = mirror / "spotify-mpd-sample" / "mpd.slice.0-999.truncated.json"
    with pytest.raises(ValidationError, match=r"truncated.json: not valid JSON at byte 1,048,576"):
        read_playlists(sample)
