"""Known answers for the model zoo beyond the shared contract: EASE, kNN, BPR, blend, weighting."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.errors import ConfigError, ModelError
from setlist.models.blend import BlendRecommender, blend_scores
from setlist.models.ease import EASERecommender, ease_memory_bytes
from setlist.models.knn import InputWeighting, ItemKNNRecommender
from setlist.models.popularity import PopularityRecommender


def random_counts(n_users: int = 40, n_items: int = 25, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.25) * rng.integers(1, 50, (n_users, n_items))
    return sp.csr_matrix(dense.astype(np.float32))


def test_ease_matches_the_closed_form() -> None:
    x = random_counts()
    model = EASERecommender(l2=7.0).fit(x)
    binary = (x.toarray() > 0).astype(np.float64)
    p = np.linalg.inv(binary.T @ binary + 7.0 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    users = np.arange(5, dtype=np.int64)
    np.testing.assert_allclose(model.score(users, x[users]), binary[:5] @ b, atol=1e-4)


def test_ease_keeps_the_most_popular_items_or_refuses_naming_the_memory() -> None:
    x = random_counts(n_items=30)
    popularity = np.bincount(x.indices, minlength=30)
    model = EASERecommender(l2=5.0, max_items=10).fit(x)
    assert model.kept_ is not None and len(model.kept_) == 10
    assert popularity[model.kept_].min() >= np.sort(popularity)[-10]
    scores = model.score_histories(x[:3])
    left_out = np.setdiff1d(np.arange(30), model.kept_)
    assert scores[:, left_out].max() <= 0 and scores[:, left_out].min() > -1e-5
    with pytest.raises(ModelError, match=r"would need .* GiB") as refused:
        EASERecommender(max_items=10, keep_popular=False).fit(x)
    assert refused.value.details["bytes_needed"] == ease_memory_bytes(30)
    with pytest.raises(ModelError, match=r"needs .* GiB, over max_memory_gb"):
        EASERecommender(max_memory_gb=1e-6).fit(x)


def test_ease_refuses_a_huge_catalogue_before_allocating() -> None:
    huge = sp.csr_matrix(
        (np.ones(300_000, np.float32), (np.zeros(300_000), np.arange(300_000))),
        shape=(1, 300_000),
    )
    with pytest.raises(ModelError, match="300,000 items would need 670.6 GiB"):
        EASERecommender(keep_popular=False).fit(huge)


def test_knn_cosine_matches_brute_force() -> None:
    x = random_counts()
    model = ItemKNNRecommender(k=4).fit(x)
    binary = (x.toarray() > 0).astype(np.float64)
    norms = np.linalg.norm(binary, axis=0)
    cosine = (binary.T @ binary) / np.maximum(np.outer(norms, norms), 1e-12)
    np.fill_diagonal(cosine, 0.0)
    sim = model.similarity_
    assert sim is not None
    for i in range(x.shape[1]):
        row = sim[i]
        assert row.nnz <= 4
        expected = np.sort(cosine[i])[-row.nnz :]
        np.testing.assert_allclose(np.sort(row.data), expected, atol=1e-6)
    scores = model.score_histories(x[:2])
    np.testing.assert_allclose(scores, binary[:2] @ sim.toarray(), atol=1e-5)


def test_knn_bm25_weighs_rare_listeners_up() -> None:
    x = random_counts()
    cosine = ItemKNNRecommender(k=5).fit(x)
    bm25 = ItemKNNRecommender(k=5, similarity="bm25").fit(x)
    assert cosine.similarity_ is not None and bm25.similarity_ is not None
    assert not np.allclose(cosine.similarity_.toarray(), bm25.similarity_.toarray())


def test_bm25_input_weighting_uses_statistics_fitted_on_training_users() -> None:
    x = random_counts()
    weighting = InputWeighting("bm25")
    full = weighting.fit(x)
    part = weighting.transform(x[3:5])  # a batch: same idf and length norm as in training
    np.testing.assert_allclose(part.toarray(), full[3:5].toarray(), rtol=1e-6)
    with pytest.raises(ConfigError, match="weighting must be one of"):
        InputWeighting("sqrt")


def test_blend_is_the_weighted_sum_of_normalised_member_scores() -> None:
    x = random_counts()
    ease = EASERecommender(l2=5.0).fit(x)
    pop = PopularityRecommender().fit(x)
    users = np.arange(6, dtype=np.int64)
    blend = BlendRecommender.from_fitted([ease, pop], [1.0, 0.25], [None, InputWeighting("none")])
    a, b = ease.score(users, x[users]), pop.score(users, x[users])
    expected = (a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True)
    expected += 0.25 * (b - b.mean(1, keepdims=True)) / b.std(1, keepdims=True)
    np.testing.assert_allclose(blend.score(users, x[users]), expected, atol=1e-4)
    only_ease = blend_scores([a, b], [1.0, 0.0])
    assert (np.argsort(-only_ease, axis=1)[:, :3] == np.argsort(-a, axis=1)[:, :3]).all()


def test_blend_params_rebuild_and_refit_the_same_model() -> None:
    x = random_counts()
    blend = BlendRecommender(
        [{"kind": "ease", "params": {"l2": 3.0}}, {"kind": "knn", "params": {"k": 5}}], [0.6, 0.4]
    ).fit(x)
    again = BlendRecommender(**blend.get_params()).fit(x)
    users = np.arange(4, dtype=np.int64)
    np.testing.assert_allclose(blend.score(users, x[users]), again.score(users, x[users]))
