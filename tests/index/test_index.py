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
