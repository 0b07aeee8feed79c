"""``because`` comes from the model: ALS contributions add up to the fold-in score."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from setlist.config import WeightConfig
from setlist.matrix import weight
from setlist.models.popularity import PopularityRecommender
from setlist.serve.answer.answerer import _row_view
from setlist.serve.answer.explain import explain
from tests.registry.bundles import fit


def _history(long: bool = False) -> tuple[object, sp.csr_matrix]:
    model, train = fit("als")
    conf = weight(train.csr, WeightConfig())
    if long:  # more heard items than factors: the direct (non-Woodbury) path
        conf = sp.csr_matrix(np.maximum(conf.toarray(), 0.5).astype(np.float32))
    return model, conf[0]


def _all_contributions(model: object, conf: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    n = conf.nnz
    heard, values = model.explain(conf, rows, n)  # type: ignore[attr-defined]
    return heard, values


def test_contributions_add_up_to_the_fold_in_score() -> None:
    for long in (False, True):
        model, conf = _history(long)
        rows = np.arange(conf.shape[1])
        folded = model.score_histories(conf)[0]  # type: ignore[attr-defined]
        _, items = model.user_factors_, model.item_factors_  # type: ignore[attr-defined]
        ginv = np.linalg.inv(model._gram())  # type: ignore[attr-defined]
        y = items[conf.indices].astype(np.float64)
        a = model._gram() + (y.T * (conf.data - 1.0)) @ y  # type: ignore[attr-defined]
        exact = (y @ np.linalg.solve(a, items[rows].T.astype(np.float64))) * conf.data[:, None]
        np.testing.assert_allclose(exact.sum(axis=0), folded, rtol=1e-3, atol=1e-4)
        heard, values = _all_contributions(model, conf, rows)
        for i in range(len(rows)):
            positive = exact[:, i][exact[:, i] > 0]
            expected = np.sort(positive)[::-1][: heard.shape[1]]
            got = values[i][heard[i] >= 0]
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)
        del ginv


def test_reasons_are_heard_items_with_names() -> None:
    model, conf = _history()
    ids = np.array([f"id{i}" for i in range(conf.shape[1])])
    names = np.array([f"Name {i}" for i in range(conf.shape[1])])
    reasons = explain(model, conf, np.array([3, 4]), ids, names)  # type: ignore[arg-type]
    heard = {f"id{i}" for i in conf.indices}
    for per_item in reasons:
        assert len(per_item) <= 3
        assert all(
            r["item_id"] in heard and r["name"] == "Name " + r["item_id"][2:] for r in per_item
        )


def test_a_model_without_attribution_gives_no_reasons() -> None:
    _, conf = _history()
    model = PopularityRecommender().fit(sp.csr_matrix(np.ones((2, conf.shape[1]), np.float32)))
    ids = names = np.array([str(i) for i in range(conf.shape[1])])
    assert explain(model, conf, np.array([0, 1]), ids, names) == [[], []]


def test_row_view_matches_slicing() -> None:
    m = sp.random(6, 9, density=0.4, format="csr", dtype=np.float32, random_state=0)
    for row in range(6):
        view = _row_view(m, row)
        assert view.shape == (1, 9)
        np.testing.assert_array_equal(view.toarray(), m[row].toarray())
        np.testing.assert_allclose(view @ np.arange(9.0), m[row] @ np.arange(9.0))


def test_the_per_model_table_gives_the_same_split_as_the_direct_solve() -> None:
    model, conf = _history()
    rows = np.arange(conf.shape[1])
    heard = conf.indices.astype(np.int64)
    c = conf.data.astype(np.float64)
    assert model.prepare_explain() is not None  # type: ignore[attr-defined]
    woodbury = model._contributions(heard, c, rows)  # type: ignore[attr-defined]
    model._explain_basis = None  # type: ignore[attr-defined]
    model.prepare_explain = lambda: None  # type: ignore[attr-defined]
    direct = model._contributions(heard, c, rows)  # type: ignore[attr-defined]
    np.testing.assert_allclose(woodbury, direct, rtol=1e-3, atol=1e-5)


def test_new_factors_drop_what_was_derived_from_the_old() -> None:
    model, conf = _history()
    first = model.prepare_explain()  # type: ignore[attr-defined]
    _, train = fit("als")
    model.fit(weight(train.csr, WeightConfig(alpha=20.0)))  # type: ignore[attr-defined]
    second = model.prepare_explain()  # type: ignore[attr-defined]
    assert second is not first and not np.allclose(second, first)
    items = model.item_factors_  # type: ignore[attr-defined]
    np.testing.assert_allclose(second, items @ np.linalg.inv(model._gram()), rtol=1e-4, atol=1e-6)  # type: ignore[attr-defined]
