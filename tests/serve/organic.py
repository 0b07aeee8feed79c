"""A tiny organic playlist ranker version whose artists are the tiny test bundle's names."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from setlist.index.organic import FEATURES, PlaylistTable
from setlist.index.organic_ranker import OrganicRanker, RankerConfig
from setlist.index.organic_store import save_organic
from tests.index.organic_tiny import mpd_tables

# pid, name, followers, [(artist as the playlist spells it, tracks)]
PLAYLISTS = [
    (10, "Alphas", 3, [("ALPHA", 3), ("Beta", 2)]),
    (11, "Exes", 7, [("Ex", 2), ("why", 2), ("Bjork", 1)]),
    (12, "Big", 100, [("Nobody", 4)]),
    (13, "Mixed", 1, [("Alpha", 1), ("Ex", 1), ("Gamma", 1)]),
]


def organic_table() -> PlaylistTable:
    return PlaylistTable.from_mpd(*mpd_tables(PLAYLISTS))


def save_organic_version(organic_dir: Path, champion: str = "ranker") -> Path:
    """A version with a small fitted LightGBM ranker (random rows labelled by familiarity)."""
    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURES)))
    ranker = OrganicRanker(RankerConfig(n_estimators=10, min_child_samples=5, n_buddies=3))
    ranker.fit(x, np.round(x[:, 0] * 3), [20] * 10)
    return save_organic(organic_dir, ranker, organic_table(), {"champion": champion})
