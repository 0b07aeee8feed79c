"""Tiny real model bundles for the registry and serve tests (shared helper, not a test module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import WeightConfig
from setlist.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA
from setlist.matrix import InteractionMatrix, build_matrix, weight
from setlist.models.als import ALSRecommender
from setlist.models.base import Recommender
from setlist.models.popularity import PopularityRecommender

# Two taste clusters, plus ids with unicode and a slash (real artist names look like that).
PLAYS: list[tuple[str, str, float]] = [
    ("u1", "a", 5), ("u1", "b", 3), ("u1", "c", 1),
    ("u2", "a", 2), ("u2", "b", 4), ("u2", "AC/DC", 1),
    ("u3", "b", 1), ("u3", "c", 2), ("u3", "a", 1),
    ("u4", "x", 6), ("u4", "y", 2), ("u4", "Björk", 3),
    ("u5", "x", 1), ("u5", "Björk", 2), ("u5", "z", 1),
    ("ユーザー", "y", 3), ("ユーザー", "z", 2), ("ユーザー", "x", 1), ("ユーザー", "a", 1),
]  # fmt: skip
NAMES = {"a": "Alpha", "b": "Beta", "c": "Gamma", "x": "Ex", "y": "Why", "AC/DC": "AC/DC"}


def interactions() -> pl.DataFrame:
    users, items, weights = zip(*PLAYS, strict=True)
    return pl.DataFrame(
        {"user": users, "item": items, "weight": weights, "timestamp": [None] * len(PLAYS)},
        schema=INTERACTION_SCHEMA,
    )


def items_meta() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item": list(NAMES),
            "name": list(NAMES.values()),
            "url": [f"https://example.org/{k}" for k in NAMES],
        },
        schema=ITEM_SCHEMA,
    )


def train_matrix() -> InteractionMatrix:
    return build_matrix(interactions())


def fit(kind: str = "als") -> tuple[Recommender, InteractionMatrix]:
    train = train_matrix()
    model: Recommender
    if kind == "als":
        model = ALSRecommender(factors=4, iterations=3, seed=0, threads=1)
    else:
        model = PopularityRecommender()
    model.fit(weight(train.csr, WeightConfig()))
    return model, train


def make_bundle(kind: str = "als", meta: dict[str, Any] | None = None) -> ModelBundle:
    model, train = fit(kind)
    meta = meta if meta is not None else {"model_type": kind, "data_fingerprint": "fp-tiny"}
    return ModelBundle.build(model, train, items_meta(), BundleMeta.decode(meta))


def save_bundle(path: Path, kind: str = "als", meta: dict[str, Any] | None = None) -> Path:
    make_bundle(kind, meta).save(path)
    return path
