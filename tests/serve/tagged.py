"""A tiny bundle with Last.fm-style tags (moods, tag clusters) and a vector index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import IndexConfig
from tests.registry.bundles import fit, items_meta

TAGS: list[tuple[str, str, int]] = [
    ("a", "chill", 5), ("a", "rock", 3),
    ("b", "chill", 2), ("b", "rock", 4),
    ("c", "party", 3), ("c", "rock", 1),
    ("x", "party", 4), ("x", "electronic", 5),
    ("y", "sleep", 3), ("y", "electronic", 2),
    ("Björk", "dreamy", 6), ("Björk", "electronic", 3),
    ("z", "chillout", 2), ("z", "electronic", 1),
    ("AC/DC", "rock", 9), ("AC/DC", "party", 1),
]  # fmt: skip


def item_tags() -> pl.DataFrame:
    items, tags, counts = zip(*TAGS, strict=True)
    return pl.DataFrame({"item": items, "tag": tags, "count": counts})


def make_tagged_bundle(
    index_kind: str = "exact", meta: dict[str, Any] | None = None
) -> ModelBundle:
    model, train = fit("als")
    meta = meta if meta is not None else {"model_type": "als", "data_fingerprint": "fp-tagged"}
    config = IndexConfig(kind=index_kind)  # type: ignore[arg-type]
    return ModelBundle.build(
        model, train, items_meta(), BundleMeta.decode(meta), item_tags(), config
    )


def save_tagged_bundle(path: Path, index_kind: str = "exact") -> Path:
    make_tagged_bundle(index_kind).save(path)
    return path
