"""A tiny synthetic track catalogue (tracks with their artist) for the catalogue tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import WeightConfig
from setlist.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA
from setlist.matrix import build_matrix, weight
from setlist.models.als import ALSRecommender

# Track id -> (name, artist id of tests/registry/bundles.py's artists).
TRACKS = {
    "t-a1": ("Alpha One", "a"),
    "t-a2": ("Alpha Two", "a"),
    "t-b1": ("Beta One", "b"),
    "t-c1": ("Gamma One", "c"),
    "t-x1": ("Ex One", "x"),
    "t-y1": ("Why One", "y"),
    "t-z1": ("Zed One", "z"),
}
PLAYS = [
    ("u1", "t-a1", 5), ("u1", "t-b1", 3),
    ("u2", "t-a2", 2), ("u2", "t-b1", 4), ("u2", "t-c1", 1),
    ("u3", "t-c1", 2), ("u3", "t-a1", 1),
    ("u4", "t-x1", 6), ("u4", "t-y1", 2),
    ("u5", "t-x1", 1), ("u5", "t-z1", 2),
]  # fmt: skip


def track_bundle(catalogue: str = "tracks") -> ModelBundle:
    users, items, weights = zip(*PLAYS, strict=True)
    frame = pl.DataFrame(
        {"user": users, "item": items, "weight": weights, "timestamp": [None] * len(PLAYS)},
        schema=INTERACTION_SCHEMA,
    )
    train = build_matrix(frame)
    model = ALSRecommender(factors=2, iterations=3, seed=0, threads=1)
    model.fit(weight(train.csr, WeightConfig()))
    meta = pl.DataFrame(
        {
            "item": list(TRACKS),
            "name": [name for name, _ in TRACKS.values()],
            "url": [""] * len(TRACKS),
        },
        schema=ITEM_SCHEMA,
    )
    bundle = ModelBundle.build(
        model, train, meta, BundleMeta(model_type="als", catalogue=catalogue, data_fingerprint="t")
    )
    artist = {track: a for track, (_, a) in TRACKS.items()}
    bundle.item_attributes["artist"] = np.array(
        [artist[str(t)] for t in bundle.items.ids], dtype=np.str_
    )
    return bundle


def save_track_bundle(path: Path, catalogue: str = "tracks") -> Path:
    track_bundle(catalogue).save(path)
    return path
