"""The evaluation protocol: who is evaluated, what counts as relevant, what the report holds."""

from __future__ import annotations

import json
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pytest
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.errors import DataError, ModelError
from setlist.evaluate.protocol import evaluate, relevant_items
from setlist.models.base import Recommender
from setlist.models.popularity import PopularityRecommender


class TableRecommender(Recommender):
    """Scores straight from a fixed users x items table (no ``kind``: stays out of the registry)."""

    def __init__(self, table: npt.NDArray[np.float32]) -> None:
        self.table = np.asarray(table, dtype=np.float32)

    def get_params(self) -> dict[str, Any]:
        return {}

    def fit(self, user_items: sp.csr_matrix) -> Self:
        return self

    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        return self.table[np.asarray(user_rows)].copy()

    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        raise NotImplementedError("a lookup table knows only the users it was built with")

    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        return top_k(np.zeros((len(item_rows), self.table.shape[1]), np.float32), k)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {"table": self.table}

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        self.table = arrays["table"]

    @property
    def n_items_(self) -> int:
        return int(self.table.shape[1])


def split(n_users: int = 30, n_items: int = 40, seed: int = 0) -> tuple[sp.csr_matrix, ...]:
    """Random disjoint train/test; the last two users have no test item."""
    rng = np.random.default_rng(seed)
    heard = rng.random((n_users, n_items)) < 0.35
    held = heard & (rng.random(heard.shape) < 0.3)
    held[-2:] = False
    train = sp.csr_matrix(np.where(heard & ~held, rng.integers(1, 50, heard.shape), 0))
    test = sp.csr_matrix(held.astype(np.float32))
    return train.astype(np.float32), test


def test_oracle_scores_one_even_when_it_prefers_training_items() -> None:
    train, test = split()
    # Training items score highest of all, test items next: exclusion must drop the former.
    table = 2.0 * (train.toarray() > 0) + test.toarray()
    report = evaluate(TableRecommender(table.astype(np.float32)), train, test, ks=(5, 10))
    for k in (5, 10):
        assert report.metrics[f"ndcg@{k}"] == pytest.approx(1.0)
        assert report.metrics[f"map@{k}"] == pytest.approx(1.0)
        assert report.metrics[f"hit_rate@{k}"] == pytest.approx(1.0)
    n_rel = np.diff(test.indptr)[report.user_rows]
    np.testing.assert_allclose(report.per_user["recall@10"], np.minimum(n_rel, 10) / n_rel)


def test_training_items_are_never_ranked_or_counted() -> None:
    train, test = split()
    seen = train.toarray() > 0
    model = TableRecommender(seen.astype(np.float32))  # a model that only "remembers" train
    report = evaluate(model, train, test, ks=(5,))
    rows = report.user_rows
    ranked, _ = model.recommend(rows, train[rows], k=5)
    assert not np.take_along_axis(seen[rows], ranked, axis=1).any()
    # The remaining items all tie at 0, so the list is the first unseen rows; hits are counted
    # against the test items only.
    expected = [np.isin(ranked[i], test[u].indices).sum() / 5 for i, u in enumerate(rows)]
    np.testing.assert_allclose(report.per_user["precision@5"], expected)


def test_test_items_already_in_train_are_not_relevant() -> None:
    train = sp.csr_matrix(np.array([[3, 0, 0, 1], [0, 2, 0, 0], [1, 0, 0, 0]], np.float32))
    test = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], np.float32))
    rel = relevant_items(train, test)
    # user 0: item 0 is in train -> only item 2; user 1: only test item is in train -> none.
    np.testing.assert_array_equal(rel.toarray(), [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    model = PopularityRecommender().fit(train)
    report = evaluate(model, train, test, ks=(2,))
    np.testing.assert_array_equal(report.user_rows, [0, 2])
    assert report.n_users == 2
    # A stored weight of 0 (bm25 can produce one) still marks the item as heard.
    zeroed = train.copy()
    zeroed.data[:] = 0.0
    np.testing.assert_array_equal(relevant_items(zeroed, test).toarray(), rel.toarray())


def test_users_without_test_items_are_skipped() -> None:
    train, test = split()
    report = evaluate(PopularityRecommender().fit(train), train, test, ks=(10, 20))
    expected_users = np.flatnonzero(np.diff(test.indptr))
    assert len(expected_users) < train.shape[0]
    np.testing.assert_array_equal(report.user_rows, expected_users)
    assert report.n_users == len(expected_users)
    for values in report.per_user.values():
        assert values.shape == (len(expected_users),)


def test_report_keys_means_and_json() -> None:
    train, test = split()
    report = evaluate(PopularityRecommender().fit(train), train, test, ks=(20, 10))
    assert report.ks == (10, 20)
    names = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage")
    assert set(report.metrics) == {f"{n}@{k}" for n in names for k in (10, 20)}
    assert set(report.per_user) == {f"{n}@{k}" for n in names[:4] for k in (10, 20)}
    for name, values in report.per_user.items():
        assert report.metrics[name] == pytest.approx(values.mean())
    assert report.n_items == 40
    assert 0 < report.metrics["coverage@10"] <= report.metrics["coverage@20"] <= 1
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["metrics"]["ndcg@10"] == pytest.approx(report.metrics["ndcg@10"])
    assert doc["n_users"] == report.n_users and doc["ks"] == [10, 20]


def test_batching_does_not_change_results() -> None:
    train, test = split(seed=4)
    model = PopularityRecommender().fit(train)
    whole = evaluate(model, train, test, ks=(3, 7), batch_size=10_000)
    tiny = evaluate(model, train, test, ks=(3, 7), batch_size=4)
    assert whole.metrics == tiny.metrics
    for name in whole.per_user:
        np.testing.assert_array_equal(whole.per_user[name], tiny.per_user[name])


def test_mismatched_shapes_are_refused() -> None:
    train, test = split()
    model = PopularityRecommender().fit(train)
    with pytest.raises(DataError):
        evaluate(model, train, test[:, :30])
    small = PopularityRecommender().fit(train[:, :30])
    with pytest.raises(ModelError):
        evaluate(small, train, test)
    with pytest.raises(DataError):
        evaluate(model, train, sp.csr_matrix(test.shape, dtype=np.float32))
