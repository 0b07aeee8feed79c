"""Train and judge the organic playlist ranker on HetRec Last.fm listeners x MPD playlists, and
keep it as a versioned folder that the API loads.

Listeners are split in two (train / test listeners), and each listener's artists by the
user-content split of :mod:`setlist.evaluate.organic`. The ranker learns from the train
listeners' candidates labelled by their held-out artists; the test listeners judge it against
the two references. The folder (``<organic_dir>/<version>/``) holds the ranker, the playlists
with their artists by linking key (linked again to the served catalogue's names at load), and
``meta.json`` with the figures and the champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from setlist.data.sources import SourceConfig
from setlist.errors import DataError
from setlist.evaluate.organic import OrganicEvaluation, content_split, evaluate_organic
from setlist.index.buddies import hubness, taste_vectors
from setlist.index.organic import PlaylistTable, link, matched_share
from setlist.index.organic_ranker import OrganicRanker, RankerConfig, training_rows
from setlist.index.organic_store import save_organic


@dataclass(frozen=True)
class OrganicConfig:
    test_listeners: float = 0.3  # share of listeners that only judge
    heldout: float = 0.2  # share of each listener's artists held out
    seed: int = 0
    k: int = 10
    max_train_listeners: int | None = None  # a cap for quick runs
    ranker: RankerConfig = RankerConfig()


@dataclass
class OrganicResult:
    ranker: OrganicRanker
    table: PlaylistTable
    evaluation: OrganicEvaluation
    figures: dict[str, float]  # matched share, linked artists, sizes

    @property
    def champion(self) -> str:
        return self.evaluation.champion

    def metrics(self) -> dict[str, float]:
        return {**self.figures, **self.evaluation.summary()}


def train_organic(
    history: sp.csr_matrix,
    artist_names: list[str],
    table: PlaylistTable,
    config: OrganicConfig = OrganicConfig(),
) -> OrganicResult:
    """Fit the ranker on the train listeners and judge it on the test listeners."""
    if history.shape[1] != len(artist_names):
        raise DataError(
            f"history has {history.shape[1]} artists but {len(artist_names)} names",
            field="artist_names",
        )
    linked = link(table, artist_names)
    split = content_split(history, config.heldout, config.seed)
    vectors = taste_vectors(split.visible)
    hubs = hubness(vectors)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(history.shape[0])
    n_test = max(1, int(round(config.test_listeners * len(order))))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    if config.max_train_listeners is not None:
        train = train[: config.max_train_listeners]
    x, y, groups = training_rows(
        linked, split.visible, split.heldout, vectors, hubs, train, config.ranker
    )
    ranker = OrganicRanker(config.ranker).fit(x, y, groups)
    evaluation = evaluate_organic(ranker, linked, split, vectors, hubs, test, config.k)
    figures = {
        "matched_share": matched_share(history, linked),
        "linked_artists": linked.linked_artists,
        "playlists": float(len(linked)),
        "listeners": float(history.shape[0]),
        "train_listeners": float(len(groups)),
        "test_listeners": float(len(evaluation.users)),
        "training_rows": float(len(y)),
    }
    return OrganicResult(ranker, table, evaluation, figures)


def save_result(result: OrganicResult, organic_dir: Path, config: OrganicConfig) -> Path:
    """Keep ``result`` as a new version folder under ``organic_dir``; returns the folder."""
    meta = {
        "champion": result.champion,
        "metrics": result.metrics(),
        "config": {k: v for k, v in asdict(config).items() if k != "ranker"},
    }
    return save_organic(organic_dir, result.ranker, result.table, meta)


def load_inputs(sources: SourceConfig) -> tuple[sp.csr_matrix, list[str], PlaylistTable]:
    """HetRec listeners (plays over artists, artist names) and the MPD playlists, fetched
    through ``sources`` (the mirror, the cache or the official source)."""
    from setlist.data.loaders import load
    from setlist.data.playlists import MPD_SOURCE, load_playlist_source
    from setlist.matrix import build_matrix

    dataset, _ = load("hetrec-lastfm-2k", sources)
    matrix = build_matrix(dataset.interactions)
    names = dict(dataset.items.select("item", "name").iter_rows())
    artist_names = [str(names.get(i) or "") for i in matrix.items.ids.tolist()]
    playlists, _ = load_playlist_source(MPD_SOURCE, sources)
    table = PlaylistTable.from_mpd(playlists.playlists, playlists.tracks, playlists.playlist_tracks)
    return sp.csr_matrix(matrix.csr, dtype=np.float64), artist_names, table
