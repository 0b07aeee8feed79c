"""Organic playlists on the real mirror: HetRec listeners x the MPD subset (skips without it)."""

from __future__ import annotations

from pathlib import Path

from setlist.data.sources import SourceConfig
from setlist.evaluate.organic import MOST_FOLLOWED, OVERLAP, RANKER
from setlist.index.organic_store import latest_version, load_organic
from setlist.offline.organic import OrganicConfig, load_inputs, save_result, train_organic


def test_the_ranker_trains_and_is_judged_on_real_data(mirror: Path, tmp_path: Path) -> None:
    history, names, table = load_inputs(SourceConfig(mirror, tmp_path / "cache", False))
    assert history.shape == (1892, 17632) and table.playlists.height == 2622
    config = OrganicConfig(test_listeners=0.15, max_train_listeners=300)
    result = train_organic(history, names, table, config)
    # about three quarters of the listening falls on artists some playlist holds
    assert 0.7 < result.figures["matched_share"] < 0.85
    ev = result.evaluation
    assert len(ev.users) > 200
    assert ev.mean(RANKER, "hit_rate") > 0.5 > ev.mean(MOST_FOLLOWED, "hit_rate")
    assert ev.mean(OVERLAP, "hit_rate") > ev.mean(MOST_FOLLOWED, "hit_rate")
    assert result.champion in (RANKER, OVERLAP)
    folder = save_result(result, tmp_path / "organic", config)
    assert latest_version(tmp_path / "organic") == folder
    loaded = load_organic(folder)
    assert loaded.champion == result.champion
    assert loaded.meta["metrics"]["matched_share"] == result.figures["matched_share"]
