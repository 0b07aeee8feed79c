"""Taste buddies on tiny hand-made histories."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.index.buddies import buddies, hubness, nearest, taste_vectors


def _history() -> sp.csr_matrix:
    # artists: 0 is heard by everyone (Radiohead), 1..4 are rarer
    return sp.csr_matrix(
        np.array(
            [
                [10, 5, 0, 0, 3],  # 0
                [10, 4, 0, 0, 0],  # 1: shares rare artist 1 with 0
                [10, 0, 7, 0, 0],  # 2: shares only the common artist with 0
                [0, 0, 0, 9, 0],  # 3: nothing in common with 0
                [10, 6, 0, 0, 8],  # 4: shares 0, 1 and 4 with listener 0
            ],
            dtype=np.float64,
        )
    )


def test_taste_vectors_are_unit_rows_and_down_weight_common_artists() -> None:
    vectors = taste_vectors(_history())
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0)
    row = vectors[0].toarray().ravel()
    # artist 0 has the most plays for listener 0 but is heard by four of five listeners
    assert row[1] > row[0]


def test_negative_plays_are_refused() -> None:
    with pytest.raises(ValueError, match="history"):
        taste_vectors(sp.csr_matrix(np.array([[1.0, -2.0]])))


def test_buddies_never_include_the_listener_and_rank_rare_overlap_first() -> None:
    history = _history()
    vectors = taste_vectors(history)
    found = buddies(history, vectors, 0, k=10)
    users = [b.user for b in found]
    assert 0 not in users
    assert 3 not in users  # shares nothing
    assert users[0] == 4
    assert users.index(1) < users.index(2)
    sims = [b.similarity for b in found]
    assert sims == sorted(sims, reverse=True)


def test_shared_and_discoveries() -> None:
    history = _history()
    vectors = taste_vectors(history)
    by_user = {b.user: b for b in buddies(history, vectors, 2, k=10)}
    # listener 2 heard artists 0 and 2; listener 4 loves 0, 1, 4
    assert by_user[4].shared == [0]
    assert by_user[4].discoveries == [4, 1]  # what 4 loves most first, none that 2 heard


def test_hubness_is_mean_cosine_to_the_others_and_can_reorder() -> None:
    vectors = taste_vectors(_history())
    dense = vectors.toarray()
    full = dense @ dense.T
    np.fill_diagonal(full, 0.0)
    np.testing.assert_allclose(hubness(vectors), full.sum(axis=0) / 4)
    hubs = np.zeros(5)
    hubs[4] = 10.0  # a listener close to everyone is ranked last
    rows, _ = nearest(vectors, vectors[0], 4, exclude=0, hubs=hubs, hub_weight=1.0)
    assert rows.tolist()[-1] == 4


def test_unknown_user_is_refused() -> None:
    history = _history()
    with pytest.raises(IndexError, match="user 5"):
        buddies(history, taste_vectors(history), 5)
