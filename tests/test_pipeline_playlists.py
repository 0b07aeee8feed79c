"""The playlist pipeline on tiny MPD slices, its CLI, its gate; one run on the real subset."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from setlist.bundle import playlist_continuer
from setlist.cli import app
from setlist.config import Settings, get_settings
from setlist.data.playlists import load_playlist_source
from setlist.data.sources import SourceConfig
from setlist.errors import DataError
from setlist.models.specs import parse_overrides
from setlist.pipeline_playlists import (
    CATALOGUE,
    PlaylistPrepared,
    playlist_specs,
    prepare_playlists,
    run_playlists,
    tracks_registry_config,
    validation_split,
    write_demo_slices,
)
from setlist.registry import Registry

GENRES = ("rock", "jazz", "disco")


def write_slices(folder: Path, n_playlists: int = 90, seed: int = 0) -> Path:
    """MPD-format slices: three genres of 40 tracks (4 artists each); a playlist draws 25 tracks
    of its genre and is named after it, so co-occurrence, titles and artists all carry signal."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    playlists = []
    for pid in range(n_playlists):
        genre = GENRES[pid % len(GENRES)]
        chosen = rng.choice(40, size=25, replace=False)
        tracks = [
            {
                "pos": pos,
                "track_uri": f"spotify:track:{genre}{t}",
                "track_name": f"{genre} song {t}",
                "artist_name": f"{genre} band {t % 4}",
            }
            for pos, t in enumerate(chosen)
        ]
        playlists.append(
            {
                "pid": pid,
                "name": f"{genre} mix {pid}",
                "num_followers": 1,
                "num_tracks": len(tracks),
                "tracks": tracks,
            }
        )
    for start in range(0, n_playlists, 30):
        part = playlists[start : start + 30]
        doc = {"info": {"slice": f"{start}-{start + 29}"}, "playlists": part}
        (folder / f"mpd.slice.{start}-{start + 29}.json").write_text(json.dumps(doc))
    return folder


def _prepared(settings: Settings, folder: Path, holdout: int = 30) -> PlaylistPrepared:
    config = SourceConfig(mirror=None, cache_dir=settings.home / "cache", download=False)
    dataset, report = load_playlist_source(str(folder), config)
    return prepare_playlists(dataset, report, holdout=holdout, seed=0)


def _specs(kinds: str) -> list:  # type: ignore[type-arg]
    names = kinds.split(",")
    return playlist_specs(names, parse_overrides(["knn.k=50"] if "knn" in names else []))


def test_prepare_holds_out_playlists_and_builds_a_binary_training_matrix(
    settings: Settings, tmp_path: Path
) -> None:
    prepared = _prepared(settings, write_slices(tmp_path / "mpd"))
    test_pids = {c.pid for c in prepared.challenge.cases}
    train_pids = {int(u) for u in prepared.train.users.ids}
    assert len(train_pids) == 60 and not test_pids & train_pids
    assert len(test_pids) + len(prepared.challenge.skipped) == 30
    assert set(np.unique(prepared.train.csr.data)) == {1.0}
    assert prepared.train.csr.sum(axis=1).min() == 25  # every training track, once
    one = replace(prepared.dataset, playlists=prepared.dataset.playlists.head(1))
    with pytest.raises(DataError, match="1 playlists; at least 2"):
        prepare_playlists(one, holdout=1)


def test_run_registers_the_best_as_the_tracks_champion_and_the_gate_refuses_worse(
    settings: Settings, tmp_path: Path
) -> None:
    prepared = _prepared(settings, write_slices(tmp_path / "mpd"))
    registry = Registry(tracks_registry_config(settings))
    assert registry.config.model_name == f"{settings.model_name}-{CATALOGUE}"
    result = run_playlists(prepared, _specs("popularity,knn"), registry, n_resamples=200)
    by_kind = {c.kind: c for c in result.candidates}
    assert by_kind["knn"].r_precision > by_kind["popularity"].r_precision
    best = result.best
    assert best is not None and best.kind == "knn"
    assert best.decision is not None and best.decision.promoted
    champion = registry.champion()
    assert champion is not None and champion.version == best.version.version  # type: ignore[union-attr]
    assert champion.metrics["r_precision"] == pytest.approx(best.r_precision)
    assert "rprec_first_5" in champion.metrics or "rprec_title_first_5" in champion.metrics

    loaded = registry.load_champion(tmp_path / "dl")
    assert loaded is not None
    bundle = loaded[1]
    assert bundle.catalogue == CATALOGUE
    assert bundle.playlists is not None and bundle.playlists.height == 90  # all playlists
    assert set(bundle.item_attributes["artist"]) >= {"rock band 0", "jazz band 3"}
    assert "rock band" in str(bundle.item_names[0]) and " - " in str(bundle.item_names[0])
    # the bundle continues a playlist the way the pipeline evaluated it
    rock = bundle.items.rows(["spotify:track:rock1", "spotify:track:rock2"])
    found = playlist_continuer(bundle).scores(rock, None)
    assert found is not None
    top = np.argsort(-np.where(np.isin(np.arange(len(found[0])), rock), -np.inf, found[0]))[:10]
    assert all(str(bundle.items.ids[i]).startswith("spotify:track:rock") for i in top)
    folder = registry.download(best.version.version, tmp_path / "files")  # type: ignore[union-attr]
    assert (folder / "challenge" / "knn.csv").is_file()

    worse = run_playlists(prepared, _specs("popularity"), registry, n_resamples=200)
    assert worse.best is not None and worse.best.decision is not None
    assert not worse.best.decision.promoted
    assert "not significantly better" in worse.best.decision.reason
    assert registry.champion().version == best.version.version  # type: ignore[union-attr]


def test_cli_train_dispatches_a_slice_folder_to_the_playlist_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_slices(tmp_path / "mpd")
    monkeypatch.setenv("SETLIST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SETLIST_PLAYLIST_HOLDOUT", "30")
    monkeypatch.setenv("SETLIST_DOWNLOAD", "false")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            ["train", "-d", str(folder), "--models", "popularity,knn", "--param", "knn.k=50"],
        )
        evaluated = CliRunner().invoke(app, ["evaluate", "-d", str(folder)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "knn per category" in result.output
    assert "first_5" in result.output and "all" in result.output
    assert "no champion yet" in result.output
    assert evaluated.exit_code == 0, evaluated.output
    assert "tracks version champion" in evaluated.output
    trained_all = [ln for ln in result.output.splitlines() if ln.strip().startswith("│ all")]
    evaluated_all = [ln for ln in evaluated.output.splitlines() if ln.strip().startswith("│ all")]
    assert trained_all and evaluated_all
    # the registered champion, scored again from its bundle, gives the figures training saw
    assert trained_all[-1].split("│")[3].split()[0] == evaluated_all[-1].split("│")[3].split()[0]
    bad = CliRunner().invoke(app, ["train", "-d", str(folder), "--models", "nope"])
    assert bad.exit_code != 0


@pytest.mark.integration
def test_real_subset_knn_beats_the_popular_tracks(mirror: Path, settings: Settings) -> None:
    config = SourceConfig(mirror=mirror, cache_dir=settings.home / "cache", download=False)
    dataset, report = load_playlist_source("spotify-mpd", config)
    prepared = prepare_playlists(dataset, report, holdout=200, seed=0)
    specs = playlist_specs(["popularity", "knn"], parse_overrides(["knn.k=100"]))
    result = run_playlists(prepared, specs, None, n_resamples=200)
    by_kind = {c.kind: c for c in result.candidates}
    assert len(prepared.challenge.cases) >= 150
    assert by_kind["knn"].r_precision > 1.5 * by_kind["popularity"].r_precision


def test_demo_slices_are_a_playlist_source_models_learn_from(
    settings: Settings, tmp_path: Path
) -> None:
    folder = write_demo_slices(tmp_path / "demo", n_playlists=300, n_tracks=600)
    assert len(list(folder.glob("mpd.slice.*.json"))) == 3
    prepared = _prepared(settings, folder, holdout=100)
    result = run_playlists(prepared, _specs("popularity,knn"), None, n_resamples=100)
    by_kind = {c.kind: c for c in result.candidates}
    assert by_kind["knn"].r_precision > by_kind["popularity"].r_precision


def test_cli_report_on_slices_writes_the_per_category_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_slices(tmp_path / "mpd")
    out = tmp_path / "report.html"
    monkeypatch.setenv("SETLIST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SETLIST_PLAYLIST_HOLDOUT", "30")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            ["report", "-d", str(folder), "--models", "popularity,knn", "--param", "knn.k=50",
             "--out", str(out)],
        )  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "R-precision by category" in text and "<h2>knn</h2>" in text
    assert "title_first_5" in text or "first_5" in text


def test_cli_tune_searches_on_validation_playlists_then_trains_the_tuned_blend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_slices(tmp_path / "mpd")
    monkeypatch.setenv("SETLIST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SETLIST_PLAYLIST_HOLDOUT", "30")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["tune", "-d", str(folder), "--trials", "3"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "tuned on validation playlists (3 trials)" in result.output
    assert "blend per category" in result.output and "no champion yet" in result.output


def test_validation_split_never_holds_a_test_playlist(settings: Settings, tmp_path: Path) -> None:
    prepared = _prepared(settings, write_slices(tmp_path / "mpd"))
    val = validation_split(prepared, 15)
    test_pids = {c.pid for c in prepared.challenge.cases} | set(prepared.challenge.skipped)
    val_pids = {c.pid for c in val.challenge.cases} | {int(u) for u in val.train.users.ids}
    assert val_pids == {int(u) for u in prepared.train.users.ids}
    assert not val_pids & test_pids


def test_the_api_answers_the_challenge_as_the_gate_measured_it(
    settings: Settings, tmp_path: Path
) -> None:
    """The tracks champion served over HTTP scores the held-out playlists as the pipeline did:
    every case sent to POST /v1/playlists/continue (its name where the category shows it, its
    seed tracks, 100 tracks back) gives the same per-playlist R-precision as the gate saw."""
    from fastapi.testclient import TestClient

    from setlist.cli.serve import with_champions
    from setlist.evaluate.playlist_challenge import evaluate_challenge
    from setlist.pipeline_playlists import ranked_lists
    from setlist.serve import create_app

    prepared = _prepared(settings, write_slices(tmp_path / "mpd"))
    registry = Registry(tracks_registry_config(settings))
    result = run_playlists(prepared, _specs("popularity,knn"), registry, n_resamples=50)
    assert result.best is not None
    ids = prepared.train.items.ids
    loaded = registry.load_champion(tmp_path / "dl")
    assert loaded is not None
    gate_lists = ranked_lists(
        playlist_continuer(loaded[1]), prepared.challenge, prepared.popularity, k=100
    )
    api_lists: dict[int, np.ndarray] = {}
    served = with_champions(settings.model_copy(update={"swap_interval_s": 0}))
    with TestClient(create_app(served)) as client:
        for case in prepared.challenge.cases:
            body: dict[str, object] = {"tracks": [str(ids[s]) for s in case.seeds], "k": 100}
            if case.name is not None:
                body["name"] = case.name
            answer = client.post("/v1/playlists/continue", json=body)
            assert answer.status_code == 200, answer.text
            got = [item["item_id"] for item in answer.json()["items"]]
            assert not set(got) & set(body["tracks"])  # type: ignore[arg-type]
            api_lists[case.pid] = prepared.train.items.rows(got)
    through_api = evaluate_challenge(
        prepared.challenge, api_lists, prepared.artist_codes, n_resamples=50
    ).per_playlist
    gate = evaluate_challenge(
        prepared.challenge, gate_lists, prepared.artist_codes, n_resamples=50
    ).per_playlist
    np.testing.assert_allclose(
        through_api["r_precision"].to_numpy(), gate["r_precision"].to_numpy(), atol=1e-9
    )
    # R-precision reads only the first |truth| tracks, so 100 back is the gate's own figure.
    assert float(through_api["r_precision"].mean()) == pytest.approx(result.best.r_precision)
