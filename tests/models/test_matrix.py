"""Id indexes, CSR building and confidence weighting on hand-made data."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from setlist.config import WeightConfig
from setlist.errors import ConfigError, NotFoundError
from setlist.matrix import IdIndex, build_matrix, weight

# 3 users x 3 items of play counts.
PLAYS = sp.csr_matrix(np.array([[1, 0, 3], [0, 2, 0], [4, 0, 0]], dtype=np.float32))


# --- IdIndex --------------------------------------------------------------------------------


def test_id_index_maps_both_ways() -> None:
    index = IdIndex(["b", "a", "c"])
    assert len(index) == 3
    assert index.row("a") == 1 and index.get("c") == 2 and index.get("zz") is None
    assert "b" in index and "zz" not in index
    np.testing.assert_array_equal(index.rows(["c", "zz", "b"]), [2, -1, 0])
    assert index.rows(["c"]).dtype == np.int64
    assert index.external([2, 0]) == ["c", "b"]


def test_unknown_id_raises_not_found_with_the_id() -> None:
    with pytest.raises(NotFoundError) as info:
        IdIndex(["a"]).row("zz")
    assert info.value.details == {"id": "zz"}
    assert info.value.to_dict()["code"] == "not_found"


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ConfigError):
        IdIndex(["a", "b", "a"])


def test_from_series_is_sorted_and_unique() -> None:
    index = IdIndex.from_series(pl.Series(["u2", "u1", "u2", "u10"]))
    assert index.ids.tolist() == ["u1", "u10", "u2"]


# --- build_matrix ---------------------------------------------------------------------------


def frame(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"user": pl.String, "item": pl.String, "weight": pl.Float64}, orient="row"
    )


def test_build_matrix_sums_duplicates() -> None:
    m = build_matrix(frame([("u2", "x", 2.0), ("u1", "y", 1.0), ("u2", "x", 3.0), ("u1", "x", 1)]))
    assert m.users.ids.tolist() == ["u1", "u2"] and m.items.ids.tolist() == ["x", "y"]
    assert m.shape == (2, 2) and m.nnz == 3
    assert m.csr.dtype == np.float32 and m.csr.has_sorted_indices
    np.testing.assert_array_equal(m.csr.toarray(), [[1, 1], [5, 0]])


def test_build_matrix_over_given_indexes_drops_unknowns() -> None:
    users, items = IdIndex(["u1", "u2"]), IdIndex(["y", "x", "z"])
    m = build_matrix(
        frame([("u1", "x", 1.0), ("u9", "x", 7.0), ("u2", "q", 7.0), ("u2", "z", 2.0)]),
        users=users,
        items=items,
    )
    assert m.users is users and m.items is items
    np.testing.assert_array_equal(m.csr.toarray(), [[0, 1, 0], [0, 0, 2]])


# --- weight ---------------------------------------------------------------------------------


def test_none_is_binary() -> None:
    out = weight(PLAYS, WeightConfig(scheme="none", alpha=9.0))
    np.testing.assert_array_equal(out.toarray(), [[1, 0, 1], [0, 1, 0], [1, 0, 0]])


def test_linear_scales_by_alpha() -> None:
    out = weight(PLAYS, WeightConfig(scheme="linear", alpha=2.5))
    np.testing.assert_allclose(out.toarray(), 2.5 * PLAYS.toarray())


def test_log1p_scales_log_plays() -> None:
    out = weight(PLAYS, WeightConfig(scheme="log1p", alpha=5.0))
    assert out.dtype == np.float32 and isinstance(out, sp.csr_matrix)
    np.testing.assert_allclose(out[0, 2], 5 * math.log(4), rtol=1e-6)
    np.testing.assert_allclose(out.toarray(), 5 * np.log1p(PLAYS.toarray()), rtol=1e-6)


def test_weighting_leaves_its_input_alone() -> None:
    before = PLAYS.copy()
    for scheme in ("none", "linear", "log1p", "bm25"):
        weight(PLAYS, WeightConfig(scheme=scheme, alpha=3.0))  # type: ignore[arg-type]
    np.testing.assert_array_equal(PLAYS.toarray(), before.toarray())


def test_bm25_by_hand() -> None:
    # N = 3 users (rows). Item 2 is heard by 1 user: idf = log 3 - log(1 + 1).
    # User 0 plays 4 in all, the mean is 10/3: length norm = 0.25 + 0.75 * 4 / (10/3) = 1.15.
    # Entry (0, 2) = 3 * (1.2 + 1) / (1.2 * 1.15 + 3) * idf.
    out = weight(PLAYS, WeightConfig(scheme="bm25", alpha=1.0, bm25_k1=1.2, bm25_b=0.75))
    expected = 3 * 2.2 / (1.2 * 1.15 + 3) * (math.log(3) - math.log(2))
    assert out[0, 2] == pytest.approx(expected, rel=1e-6)
    # Item 0 is heard by 2 of 3 users: idf = log 3 - log 3 = 0, so its weights vanish.
    assert out[0, 0] == pytest.approx(0.0, abs=1e-7) and out[2, 0] == pytest.approx(0.0, abs=1e-7)


def test_bm25_matches_implicit_on_the_same_orientation() -> None:
    """implicit's bm25_weight treats rows as documents (length norm) and columns as terms (idf).

    setlist weights the users x items matrix itself: users are the documents, idf is per item.
    (implicit's own last.fm example weights the items x users matrix instead; the two differ.)
    """
    from implicit.nearest_neighbours import bm25_weight

    rng = np.random.default_rng(0)
    plays = sp.random(30, 12, density=0.3, random_state=rng, format="csr", dtype=np.float32)
    plays.data = np.ceil(plays.data * 50)
    for k1, b in ((1.2, 0.75), (100.0, 0.8)):
        ours = weight(plays, WeightConfig(scheme="bm25", alpha=2.0, bm25_k1=k1, bm25_b=b))
        theirs = sp.csr_matrix(bm25_weight(plays, K1=k1, B=b))
        np.testing.assert_allclose(ours.toarray(), 2.0 * theirs.toarray(), rtol=1e-5, atol=1e-6)
    transposed = sp.csr_matrix(bm25_weight(plays.T.tocsr(), K1=1.2, B=0.75)).T.toarray()
    ours = weight(plays, WeightConfig(scheme="bm25", alpha=1.0)).toarray()
    assert not np.allclose(ours, transposed)


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ConfigError):
        weight(PLAYS, WeightConfig(scheme="tfidf"))  # type: ignore[arg-type]
