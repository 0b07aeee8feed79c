"""BundleMeta: the typed bundle metadata, decoded once from bundle.json and written back as is."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import WeightConfig
from setlist.errors import ArtifactError
from setlist.matrix import build_matrix
from setlist.models.popularity import PopularityRecommender

#: What the pipeline wrote into bundle.json before the metadata was typed (same keys now).
OLD_META: dict[str, Any] = {
    "model_type": "als",
    "params": {"factors": 64, "iterations": 15},
    "weighting": {"scheme": "bm25", "alpha": 2.0},
    "metrics": {"ndcg@10": 0.25, "users": 40},
    "fit": {"fit_seconds": 1.5},
    "dataset": "lastfm",
    "data_fingerprint": "fp-1",
    "split": "temporal",
    "trained_at": "2026-01-02T03:04:05+00:00",
    "index": {"kind": "hnsw", "recall": 0.97},
    "run": 7,
}


def test_old_keys_decode_to_typed_fields_and_encode_back() -> None:
    meta = BundleMeta.decode(OLD_META)
    assert meta.model_type == "als"
    assert meta.params == {"factors": 64, "iterations": 15}
    assert meta.weighting == WeightConfig(scheme="bm25", alpha=2.0)
    assert meta.metrics == {"ndcg@10": 0.25, "users": 40.0}
    assert meta.trained_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert meta.index == {"kind": "hnsw", "recall": 0.97}
    assert meta.extra == {"run": 7}
    again = BundleMeta.decode(json.loads(json.dumps(meta.encode())))
    assert again == meta


def test_fingerprint_nested_under_data_is_read() -> None:
    meta = BundleMeta.decode({"data": {"fingerprint": "fp-old", "rows_read": 10}})
    assert meta.data_fingerprint == "fp-old"
    assert BundleMeta.decode(meta.encode()) == meta


def test_missing_meta_is_all_unset() -> None:
    meta = BundleMeta.decode(None)
    assert meta == BundleMeta()
    assert meta.weighting is None and meta.trained_at is None


@pytest.mark.parametrize(
    ("raw", "field", "value"),
    [
        ({"weighting": "log1p"}, "weighting", "'log1p'"),
        ({"weighting": {"scheme": "sqrt"}}, "weighting.scheme", "'sqrt'"),
        ({"weighting": {"scheme": "bm25", "alpha": "big"}}, "weighting.alpha", "'big'"),
        ({"trained_at": "yesterday"}, "trained_at", "'yesterday'"),
        ({"metrics": {"ndcg@10": "high"}}, "metrics.ndcg@10", "'high'"),
        ({"metrics": [1, 2]}, "metrics", r"\[1, 2\]"),
        ({"model_type": ["als"]}, "model_type", r"\['als'\]"),
        ({"index": 3}, "index", "3"),
    ],
)
def test_malformed_field_is_an_artifact_error_naming_it(
    raw: dict[str, Any], field: str, value: str
) -> None:
    with pytest.raises(ArtifactError, match=rf"{field} must .*got {value}"):
        BundleMeta.decode(raw)


def _bundle() -> ModelBundle:
    frame = pl.DataFrame(
        {"user": ["u1", "u1", "u2"], "item": ["a", "b", "b"], "weight": [1.0, 2.0, 3.0]}
    )
    train = build_matrix(frame)
    model = PopularityRecommender().fit(train.csr)
    items = pl.DataFrame(
        {"item": ["a"], "name": ["A"], "url": [None]}, schema_overrides={"url": pl.String}
    )
    return ModelBundle.build(model, train, items, BundleMeta.decode(OLD_META))


def test_bundle_load_decodes_meta_and_refuses_a_malformed_one(tmp_path: Path) -> None:
    bundle = _bundle()
    bundle.save(tmp_path / "b")
    loaded = ModelBundle.load(tmp_path / "b")
    assert loaded.meta == bundle.meta
    assert loaded.meta.weighting == WeightConfig(scheme="bm25", alpha=2.0)
    doc = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert doc["meta"]["weighting"]["scheme"] == "bm25"  # the JSON keys bundles always had
    doc["meta"]["trained_at"] = 12
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="trained_at .*got 12"):
        ModelBundle.load(tmp_path / "b")
    np.testing.assert_array_equal(loaded.popularity, bundle.popularity)
