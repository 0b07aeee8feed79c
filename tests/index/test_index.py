"""One suite for every vector index backend: answers, recall against exact search, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from setlist.config import IndexConfig
from setlist.errors import ArtifactError, ConfigError, ModelError
from setlist.index import (
    ExactIndex,
    VectorIndex,
    build_index,
    choose_kind,
    index_class,
    load_index,
    recall_at_k,
    tuned_index,
)
from setlist.index import build as build_module

KINDS = ["exact", "hnsw", "ivf"]


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Vectors in taste clusters with varying norms, like a factor model's items."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, dim))
    return (x * rng.uniform(0.5, 1.5, (n, 1))).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered(3000, 16, 0), clustered(200, 16, 1)


@pytest.fixture(scope="module", params=KINDS)
def index(request: pytest.FixtureRequest, data: tuple[np.ndarray, np.ndarray]) -> VectorIndex:
    items, queries = data
    config = IndexConfig(kind=request.param, recall_queries=100)
    return build_index(items, queries, config)


def _truth(items: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]


def test_kind_and_shape(index: VectorIndex, data: tuple[np.ndarray, np.ndarray]) -> None:
    items, _ = data
    assert index.n == len(items) and index.dim == items.shape[1]
    assert isinstance(index, index_class(index.kind))


def test_recall_against_exact_search(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray]
) -> None:
    items, queries = data
    found, scores = index.search(queries, 10)
    assert found.shape == scores.shape == (len(queries), 10)
    assert recall_at_k(found, _truth(items, queries, 10)) >= 0.95
    assert index.recall_at_10 is not None and index.recall_at_10 >= 0.95
    assert np.all(np.diff(scores, axis=1) <= 1e-5)  # best first
    rows = np.arange(len(queries))[:, None]
    np.testing.assert_allclose(
        scores, np.sum(queries[:, None, :] * items[found], axis=2), rtol=1e-4, atol=1e-4
    )
    del rows


def test_save_and_load_keep_answers_and_recall(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    items, queries = data
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    assert loaded.kind == index.kind and loaded.n == index.n
    assert loaded.get_params() == index.get_params()
    assert loaded.recall_at_10 == index.recall_at_10
    before, _ = index.search(queries, 10)
    after, _ = loaded.search(queries, 10)
    np.testing.assert_array_equal(before, after)
    assert recall_at_k(after, _truth(items, queries, 10)) >= 0.95


def test_k_larger_than_the_catalogue_pads(index: VectorIndex) -> None:
    small = type(index).build(clustered(5, index.dim, 3)) if index.kind != "ivf" else None
    if small is None:
        small = index_class("ivf").build(clustered(5, index.dim, 3), nlist=1)
    ids, scores = small.search(np.ones((2, index.dim), np.float32), 8)
    assert ids.shape == (2, 8)
    assert sorted(ids[0, :5].tolist()) == [0, 1, 2, 3, 4]
    assert np.all(ids[:, 5:] == -1) and np.all(np.isneginf(scores[:, 5:]))


def test_search_excluding_drops_rows_and_keeps_k(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray]
) -> None:
    _, queries = data
    top, _ = index.search(queries[:1], 5)
    banned = top[0, :3]
    ids, scores = index.search_excluding(queries[0], 5, banned)
    assert len(ids) == 5 and not set(ids.tolist()) & set(banned.tolist())
    assert list(ids[:2]) == list(top[0, 3:5])


def test_bad_queries_are_refused(index: VectorIndex) -> None:
    with pytest.raises(ConfigError):
        index.search(np.ones((1, index.dim + 1), np.float32), 3)
    with pytest.raises(ConfigError):
        index.search(np.ones((1, index.dim), np.float32), 0)


def test_a_changed_index_file_is_refused(index: VectorIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "ix")
    npz = tmp_path / "ix" / "index.npz"
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_index(tmp_path / "ix")
    with pytest.raises(ArtifactError):
        load_index(tmp_path / "missing")


def test_exact_is_brute_force(data: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = data
    ids, _ = ExactIndex(items).search(queries, 7)
    np.testing.assert_array_equal(ids, _truth(items, queries, 7))


def test_kind_follows_the_catalogue_size() -> None:
    config = IndexConfig(exact_max_items=100, ann="ivf")
    assert choose_kind(100, config) == "exact"
    assert choose_kind(101, config) == "ivf"
    assert choose_kind(10, IndexConfig(kind="hnsw")) == "hnsw"


def test_build_fails_below_the_recall_floor(
    data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    items, queries = data
    monkeypatch.setattr(build_module, "_MAX_EFFORT", 1)  # no tuning room: nprobe stays 1
    with pytest.raises(ModelError, match="recall@10"):
        build_index(items, queries, IndexConfig(kind="ivf", min_recall=0.999, recall_queries=50))


def test_recall_at_k_counts_shared_items() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, -1, -1]])
    found = np.array([[4, 3, 9, 8], [6, 5, 7, -1]])
    assert recall_at_k(found, truth) == pytest.approx(4 / 6)


def test_search_one_answers_as_search(
    index: VectorIndex, data: tuple[np.ndarray, np.ndarray]
) -> None:
    _, queries = data
    for q in queries[:20]:
        ids, scores = index.search_one(q, 12)
        batch_ids, batch_scores = index.search(q[None, :], 12)
        np.testing.assert_array_equal(ids, batch_ids[0])
        np.testing.assert_allclose(scores, batch_scores[0], rtol=1e-6)


def test_hnsw_entries_are_reordered_and_the_order_survives_saving(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    items, queries = data
    index = build_index(items, queries, IndexConfig(kind="hnsw", recall_queries=100))
    order = index.order  # type: ignore[attr-defined]
    assert order is not None and sorted(order.tolist()) == list(range(len(items)))
    assert not np.array_equal(order, np.arange(len(items)))  # the walk order, not the input
    ids, scores = index.search(queries[:5], 3)
    np.testing.assert_allclose(  # rows are item rows again: their scores are their own
        scores, np.sum(queries[:5, None, :] * items[ids], axis=2), rtol=1e-4, atol=1e-4
    )
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    np.testing.assert_array_equal(loaded.order, order)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(loaded.search(queries[:5], 3)[0], ids)


def test_effort_is_tuned_to_just_reach_the_target(data: tuple[np.ndarray, np.ndarray]) -> None:
    items, queries = data
    config = IndexConfig(kind="ivf", recall_queries=100)
    index = build_index(items, queries, config)
    tune = queries[np.random.default_rng(config.seed).choice(len(queries), 200, replace=False)][
        :100
    ]
    truth = _truth(items, tune, 10)
    target = config.min_recall + config.recall_margin
    effort = index.effort()
    assert effort is not None and recall_at_k(index.search(tune, 10)[0], truth) >= target
    if effort > 1:  # a quarter less effort (past the bisection's resolution) falls short
        index.set_effort(max(1, effort - max(1, effort // 4)))
        assert recall_at_k(index.search(tune, 10)[0], truth) < target


def test_tuned_index_measures_recall_at_the_asked_depth(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    items, queries = data
    config = IndexConfig(kind="ivf", recall_queries=100, min_recall=0.9)
    index, recall = tuned_index(items, queries, config, 50, nlist=32)
    assert index.get_params()["nlist"] == 32 and 0.9 <= recall <= 1.0
    assert index.recall_at_10 is None  # only build_index records recall@10


def test_a_large_ivf_batch_answers_as_small_ones(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Large batches are searched in cell order (for the cache); answers keep the given order."""
    items, _ = data
    index = index_class("ivf").build(items, nlist=16, effort=4)
    queries = clustered(600, items.shape[1], 5)
    whole_ids, whole_scores = index.search(queries, 7)
    parts = [index.search(queries[i : i + 100], 7) for i in range(0, 600, 100)]
    np.testing.assert_array_equal(whole_ids, np.vstack([p[0] for p in parts]))
    np.testing.assert_allclose(whole_scores, np.vstack([p[1] for p in parts]), rtol=1e-6)


@pytest.mark.parametrize("storage", ["flat", "sq8"])
def test_hnsw_storage_answers_exact_scores_and_survives_saving(
    storage: str, data: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    items, queries = data
    index, recall = tuned_index(items, queries, IndexConfig(kind="hnsw"), 10, storage=storage)
    assert index.get_params()["storage"] == storage and recall >= 0.95
    ids, scores = index.search(queries[:20], 10)
    # sq8 walks 8-bit vectors but re-ranks in float32: the scores are the exact products.
    np.testing.assert_allclose(
        scores, np.sum(queries[:20, None, :] * items[ids], axis=2), rtol=1e-5, atol=1e-5
    )
    index.save(tmp_path / storage)
    loaded = load_index(tmp_path / storage)
    assert loaded.get_params() == index.get_params()
    np.testing.assert_array_equal(loaded.search(queries[:20], 10)[0], ids)
    deep, deep_scores = loaded.search_one(queries[0], 40)  # more than the tuned effort holds
    assert len(deep) == 40 and np.all(np.diff(deep_scores) <= 1e-6)
    np.testing.assert_allclose(deep_scores, items[deep] @ queries[0], rtol=1e-5, atol=1e-5)


def test_an_unknown_hnsw_storage_is_refused(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ConfigError, match="storage must be one of flat, sq8"):
        index_class("hnsw").build(data[0], storage="pq")
