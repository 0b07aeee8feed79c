"""The listener index: SVD-reduced taste vectors in faiss, re-ranked by the exact pairing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.config import IndexConfig, ListenerConfig
from setlist.errors import ArtifactError
from setlist.index.buddies import hubness, nearest, taste_vectors
from setlist.index.listeners import ListenerIndex


def _history(n_users: int = 240, n_items: int = 400, seed: int = 0) -> sp.csr_matrix:
    """Listeners in eight taste groups: each plays a few of their group's artists, a few
    artists anyone plays, and heavy-tailed counts."""
    rng = np.random.default_rng(seed)
    rows, cols, plays = [], [], []
    per_group = n_items // 8
    for user in range(n_users):
        group = user % 8
        mine = rng.choice(per_group, size=12, replace=False) + group * per_group
        common = rng.choice(n_items, size=4, replace=False)
        for col in np.unique(np.concatenate([mine, common])):
            rows.append(user)
            cols.append(int(col))
            plays.append(float(rng.pareto(1.5) * 10 + 1))
    return sp.csr_matrix((plays, (rows, cols)), shape=(n_users, n_items))


CONFIG = IndexConfig(recall_queries=60, listeners=ListenerConfig(dims=16, kind="hnsw"))


@pytest.fixture(scope="module")
def built() -> tuple[sp.csr_matrix, ListenerIndex]:
    history = _history()
    index = ListenerIndex.build(history, CONFIG)
    assert index is not None
    return history, index


def test_build_checks_recall_against_the_exact_pairing(
    built: tuple[sp.csr_matrix, ListenerIndex],
) -> None:
    history, index = built
    assert index.dims == 16 and index.index.kind == "hnsw" and index.n == history.shape[0]
    assert index.recall_at_10 is not None and index.recall_at_10 >= CONFIG.min_recall
    vectors = taste_vectors(history)
    hubs = hubness(vectors)
    hits = 0
    for user in range(history.shape[0]):
        want, want_sims = nearest(vectors, vectors[user], 10, exclude=user, hubs=hubs)
        got, sims = index.search(index.query(history[user]), 10, exclude=user)
        assert user not in got.tolist()
        hits += len(np.intersect1d(got, want))
        # the similarities are the exact cosines of the rows found
        exact = np.asarray((vectors[got] @ vectors[user].T).todense()).ravel()
        np.testing.assert_allclose(sims, exact, rtol=1e-6)
        assert len(want_sims) == len(want)
    assert hits / (10 * history.shape[0]) >= CONFIG.min_recall


def test_too_few_dimensions_need_more_candidates() -> None:
    history = _history(seed=1)
    narrow = ListenerIndex.build(history, replace(CONFIG, listeners=ListenerConfig(dims=2)))
    wide = ListenerIndex.build(history, CONFIG)
    assert narrow is not None and wide is not None
    # two dimensions rank badly, so the build re-ranks a deeper list to reach the recall
    assert narrow.candidates > wide.candidates
    assert narrow.recall_at_10 is not None and narrow.recall_at_10 >= CONFIG.min_recall


def test_save_load_round_trip_and_tampering_is_refused(
    built: tuple[sp.csr_matrix, ListenerIndex], tmp_path: Path
) -> None:
    history, index = built
    index.save(tmp_path / "listeners")
    loaded = ListenerIndex.load(tmp_path / "listeners", history)
    assert loaded.describe() == index.describe()
    query = index.query(history[3])
    np.testing.assert_array_equal(loaded.search(query, 10, 3)[0], index.search(query, 10, 3)[0])
    with pytest.raises(ArtifactError, match="listeners x"):
        ListenerIndex.load(tmp_path / "listeners", history[:-1])
    npz = tmp_path / "listeners" / "listeners.npz"
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="SHA-256"):
        ListenerIndex.load(tmp_path / "listeners", history)


def test_switched_off_or_too_small_builds_nothing() -> None:
    off = replace(CONFIG, listeners=ListenerConfig(dims=0))
    assert ListenerIndex.build(_history(), off) is None
    assert ListenerIndex.build(sp.csr_matrix(np.array([[1.0, 2.0]])), CONFIG) is None
