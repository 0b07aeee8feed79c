"""Pipeline pieces the gate and the tuner rely on: fit cost, and the champion's paired side."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import CleanConfig, SplitConfig, WeightConfig
from setlist.data.schema import Dataset, empty_items
from setlist.data.synthetic import generate_preset
from setlist.data.validate import ValidationReport
from setlist.models.specs import ModelSpec
from setlist.pipeline import Prepared, champion_per_user, measure, prepare, train_one
from setlist.tune.trials import tuning_split

#: What the pipeline records for a model that weighs its raw counts itself.
LINEAR = BundleMeta(weighting=WeightConfig(scheme="linear", alpha=1.0))


@pytest.fixture(scope="module")
def prepared() -> Prepared:
    dataset = generate_preset("tiny", seed=3)
    report = ValidationReport("synthetic:tiny", rows_read=dataset.interactions.height)
    return prepare(dataset, report, CleanConfig(5, 1), SplitConfig(0.2, 0))


def test_measure_reports_time_and_peak_memory() -> None:
    with measure() as usage:
        block = np.ones((64, 1 << 20), dtype=np.float32)  # 256 MiB touched
        block.sum()
    del block
    assert usage.seconds > 0
    assert usage.peak_rss_mb >= usage.start_rss_mb + 200


def test_champion_side_equals_the_candidate_side_for_the_same_model(prepared: Prepared) -> None:
    trained = train_one(ModelSpec("ease", {"l2": 20.0}), prepared)
    bundle = ModelBundle.build(trained.model, prepared.train, empty_items(), LINEAR)
    rows = trained.report.user_rows
    same = champion_per_user(bundle, prepared.train, prepared.test, rows)
    np.testing.assert_allclose(same, trained.report.per_user["ndcg@10"])


def test_champion_on_another_catalogue_is_mapped_by_id_and_folds_in_new_users(
    prepared: Prepared,
) -> None:
    """A champion fitted on other data (fewer users and items) is scored on the candidate's
    users: unknown users are folded in, unknown items count as misses."""
    frame = prepared.split.train.filter(pl.col("user") < prepared.split.train["user"].max())
    other = prepare(
        Dataset("other", frame),
        ValidationReport("x"),
        CleanConfig(5, 1),
        SplitConfig(0.2, 1),
    )
    trained = train_one(ModelSpec("knn", {"k": 20}), other)
    bundle = ModelBundle.build(trained.model, other.train, empty_items(), LINEAR)
    rows = np.arange(prepared.train.shape[0], dtype=np.int64)
    values = champion_per_user(bundle, prepared.train, prepared.test, rows)
    assert values.shape == (len(rows),) and np.isfinite(values).all() and values.mean() > 0


def test_tuning_split_never_touches_the_test_set(prepared: Prepared) -> None:
    data = tuning_split(prepared, 0.2, seed=0)
    assert data.fit_train.nnz + data.validation.nnz <= prepared.train.nnz
    assert data.fit_train.multiply(prepared.test.csr).nnz == 0
    assert data.validation.multiply(prepared.test.csr).nnz == 0
    assert data.fit_train.multiply(data.validation).nnz == 0
