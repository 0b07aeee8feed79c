"""A tiny playlist catalogue (tracks, their artists, the training playlists) for the
playlist route tests: an item-kNN model fitted on a binary playlist x track matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from setlist.bundle import PLAYLIST_COLUMNS, ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA
from setlist.matrix import build_matrix
from setlist.models.knn import ItemKNNRecommender

# Track id -> (name, artist name).
TRACKS = {
    "spotify:track:r1": ("Rock One", "The Rockers"),
    "spotify:track:r2": ("Rock Two", "The Rockers"),
    "spotify:track:r3": ("Stone Song", "Granite"),
    "spotify:track:r4": ("Loud Night", "Granite"),
    "spotify:track:j1": ("Blue Smoke", "Jazz Trio"),
    "spotify:track:j2": ("Late Set", "Jazz Trio"),
    "spotify:track:j3": ("Brushes", "Quiet Quartet"),
    "spotify:track:p1": ("Hit Single", "Popstar"),
}
# pid -> (name, followers, tracks in playlist order).
PLAYLISTS = {
    "100": ("Rock classics", 10, ["spotify:track:r1", "spotify:track:r2", "spotify:track:r3"]),
    "101": ("rock!", 3, ["spotify:track:r2", "spotify:track:r3", "spotify:track:r4"]),
    "102": ("Rock", 1, ["spotify:track:r1", "spotify:track:r4", "spotify:track:p1"]),
    "103": ("jazz night", 7, ["spotify:track:j1", "spotify:track:j2", "spotify:track:j3"]),
    "104": ("Jazz", 2, ["spotify:track:j1", "spotify:track:j2", "spotify:track:p1"]),
    "105": ("party", 50, ["spotify:track:p1", "spotify:track:r1", "spotify:track:j1"]),
}


def playlist_table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "pid": list(PLAYLISTS),
            "name": [n for n, _, _ in PLAYLISTS.values()],
            "num_followers": [f for _, f, _ in PLAYLISTS.values()],
            "tracks": [t for _, _, t in PLAYLISTS.values()],
        },
        schema=PLAYLIST_COLUMNS,
    )


def playlist_bundle(catalogue: str = "tracks") -> ModelBundle:
    pairs = [(pid, track) for pid, (_, _, tracks) in PLAYLISTS.items() for track in tracks]
    frame = pl.DataFrame(
        {
            "user": [p for p, _ in pairs],
            "item": [t for _, t in pairs],
            "weight": [1.0] * len(pairs),
            "timestamp": [None] * len(pairs),
        },
        schema=INTERACTION_SCHEMA,
    )
    train = build_matrix(frame)
    model = ItemKNNRecommender().fit((train.csr > 0).astype(np.float32))
    meta = pl.DataFrame(
        {
            "item": list(TRACKS),
            "name": [name for name, _ in TRACKS.values()],
            "url": [""] * len(TRACKS),
        },
        schema=ITEM_SCHEMA,
    )
    bundle = ModelBundle.build(
        model,
        train,
        meta,
        BundleMeta(model_type="itemknn", catalogue=catalogue, data_fingerprint="p"),
        playlists=playlist_table(),
    )
    artist = {track: a for track, (_, a) in TRACKS.items()}
    bundle.item_attributes["artist"] = np.array(
        [artist[str(t)] for t in bundle.items.ids], dtype=np.str_
    )
    return bundle


def save_playlist_bundle(path: Path, catalogue: str = "tracks") -> Path:
    playlist_bundle(catalogue).save(path)
    return path
