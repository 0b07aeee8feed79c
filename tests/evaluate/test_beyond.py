"""Beyond-accuracy metrics on hand-computed cases, plus properties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from setlist.errors import ConfigError, DataError
from setlist.evaluate.beyond import (
    activity_groups,
    breakdown,
    intra_list_diversity,
    novelty,
    popularity_curve,
    popularity_deciles,
)


def test_novelty_is_mean_self_information() -> None:
    item_users = np.array([8, 4, 2, 1, 0])  # of 8 users: 0, 1, 2, 3 bits; unheard counts as 1
    ranked = np.array([[0, 1], [2, 3], [4, -1], [-1, -1]])
    out = novelty(ranked, item_users, n_users=8)
    np.testing.assert_allclose(out[:3], [0.5, 2.5, 3.0])
    assert np.isnan(out[3])


def test_intra_list_diversity_by_tags() -> None:
    tags = sp.csr_matrix(np.array([[1, 0], [2, 0], [0, 1], [0, 0]], dtype=np.float64))
    ranked = np.array([[0, 1, -1], [0, 2, -1], [0, 1, 2], [0, 3, -1]])
    out = intra_list_diversity(ranked, tags)
    np.testing.assert_allclose(out[:3], [0.0, 1.0, 2 / 3])
    assert np.isnan(out[3])  # item 3 has no tags: fewer than two tagged items


def test_popularity_deciles_and_curve() -> None:
    counts = np.arange(20, 0, -1)  # item 0 most popular
    groups = popularity_deciles(counts)
    np.testing.assert_array_equal(np.bincount(groups), [2] * 10)
    assert groups[0] == 0 and groups[19] == 9
    curve = popularity_curve(np.array([[0, 1, 19], [0, 2, -1]]), counts)
    assert curve.recommended.sum() == pytest.approx(1.0)
    assert curve.listens.sum() == pytest.approx(1.0)
    assert curve.head_share == pytest.approx(3 / 5)
    assert curve.recommended[9] == pytest.approx(1 / 5)
    with pytest.raises(DataError, match="names item 25"):
        popularity_curve(np.array([[25]]), counts)


def test_activity_groups_and_breakdown() -> None:
    names, bounds = activity_groups([1, 5, 10, 50], thresholds=(5, 20))
    assert names.tolist() == ["cold", "cold", "light", "heavy"] and bounds == (5.0, 20.0)
    names, _ = activity_groups(np.arange(1, 10))
    assert sorted(set(names.tolist())) == ["cold", "heavy", "light"]
    out = breakdown([0.1, 0.3, 0.5, 0.9], ["cold", "cold", "light", "heavy"])
    assert out["cold"] == (2, pytest.approx(0.2)) and out["heavy"] == (1, 0.9)
    with pytest.raises(ConfigError):
        activity_groups([1, 2], thresholds=(5, 1))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 100), min_size=1, max_size=60),
    st.integers(1, 10),
    st.integers(0, 2**31),
)
def test_curve_shares_are_distributions(counts: list[int], k: int, seed: int) -> None:
    n = len(counts)
    rng = np.random.default_rng(seed)
    ranked = np.stack([rng.permutation(n)[: min(k, n)] for _ in range(5)])
    curve = popularity_curve(ranked, counts)
    assert curve.recommended.sum() == pytest.approx(1.0)
    assert (curve.recommended >= 0).all()
    assert curve.listens.sum() == pytest.approx(1.0) or sum(counts) == 0
    assert np.all(novelty(ranked, counts, n_users=101) >= 0)
