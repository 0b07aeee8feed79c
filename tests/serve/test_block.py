"""recommend-all's block pass applies the same rules as the service's per-request ranking."""

from __future__ import annotations

import numpy as np
import pytest

from setlist.serve.answer.block import BlockAnswerer
from setlist.serve.answer.ranking import RankingConfig
from tests.serve.tagged import make_tagged_bundle


@pytest.mark.parametrize("cap", [0, 1, 2])
def test_block_pass_matches_the_ranker_row_by_row(cap: int) -> None:
    """Random candidate lists (with padding): each row's answer is ``Ranker.rank_scored``'s."""
    bundle = make_tagged_bundle()
    ranking = RankingConfig(max_per_group=cap, blocked_items=frozenset({"b"}))
    block = BlockAnswerer(bundle, ranking)
    n_items, k, rng = len(bundle.items), 3, np.random.default_rng(7)
    ids = np.array([rng.permutation(n_items) for _ in range(40)], dtype=np.int64)
    ids[rng.random(ids.shape) < 0.2] = -1  # padding anywhere, as a short search leaves it
    scores = np.where(ids >= 0, -np.arange(n_items, dtype=np.float32), -np.inf)
    users = np.zeros(len(ids), dtype=np.int64)
    got, got_scores = block.answer(users, ids, scores.astype(np.float32), k)
    none = np.zeros(0, dtype=np.int64)
    one_by_one = block._one(0, k)[0].tolist()  # the service's own answer for user row 0
    for i in range(len(ids)):
        valid = ids[i] >= 0
        want = block.ranker.rank_scored(ids[i][valid], scores[i][valid], k, none)
        kept = block.ranker.rank_scored(ids[i][valid], scores[i][valid], n_items, none)
        n = len(want.rows)
        if n < k and len(kept.rows) < valid.sum():  # short because a rule dropped some
            assert got[i].tolist() == one_by_one
        else:
            assert got[i][:n].tolist() == want.rows.tolist()
            assert (got[i][n:] == -1).all() and np.isneginf(got_scores[i][n:]).all()
    assert block.one_by_one > 1  # some rows were settled one by one, and not all of them
    assert block.one_by_one < len(ids)
