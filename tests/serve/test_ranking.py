"""Each ranking rule on its own: exclusions, business filters, diversity cap, new-item slot."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from setlist.serve.answer.ranking import META_TAGS, Ranker, RankingConfig, tag_clusters
from setlist.serve.answer.retrieval import DenseTaste

# Ten items, scores 10..1 (item 0 best); tags: rock (items 0-5), pop (6-8), none (9).
SCORES = np.arange(10, 0, -1).astype(np.float32)
IDS = [f"i{n}" for n in range(10)]
TAG_NAMES = np.array(["rock", "pop", "christmas", "seen live"])
POPULARITY = np.array([50, 40, 30, 20, 10, 9, 8, 7, 1, 2], dtype=np.float32)


def _tags() -> sp.csr_matrix:
    m = np.zeros((10, 4), dtype=np.float32)
    m[:6, 0] = 5
    m[6:9, 1] = 5
    m[3, 2] = 1  # item 3 is a christmas record
    m[6, 3] = 50  # a meta tag, however common, is never a cluster
    return sp.csr_matrix(m)


def ranker(**config: object) -> Ranker:
    return Ranker(RankingConfig(**config), IDS, POPULARITY, _tags(), TAG_NAMES)  # type: ignore[arg-type]


def _rank(r: Ranker, k: int, excluded: list[int] | None = None) -> list[int]:
    ranked = r.rank(DenseTaste(SCORES), k, np.asarray(excluded or [], dtype=np.int64))
    assert len(ranked.rows) == len(ranked.scores)
    return [int(x) for x in ranked.rows]


def test_no_rules_is_plain_top_k() -> None:
    assert _rank(ranker(), 4) == [0, 1, 2, 3]


def test_excluded_items_never_appear_and_k_is_kept() -> None:
    assert _rank(ranker(), 4, [0, 2, 5]) == [1, 3, 4, 6]


def test_blocked_ids_and_tags_are_filtered() -> None:
    assert _rank(ranker(blocked_items=frozenset({"i1"})), 3) == [0, 2, 3]
    assert _rank(ranker(blocked_tags=frozenset({"christmas"})), 4) == [0, 1, 2, 4]


def test_at_most_n_per_tag_cluster() -> None:
    assert _rank(ranker(max_per_group=2), 5) == [0, 1, 6, 7, 9]
    assert _rank(ranker(max_per_group=1), 3) == [0, 6, 9]


def test_new_item_slot_places_the_best_new_item() -> None:
    r = ranker(new_item_slot=2, new_item_max_listeners=2)  # items 8 and 9 are new
    ranked = r.rank(DenseTaste(SCORES), 4, np.zeros(0, dtype=np.int64))
    assert ranked.rows.tolist() == [0, 8, 1, 2]  # 8 outscores 9
    assert ranked.new_item_row == 8
    # Not when a new item is already in the answer, nor when the new ones are excluded.
    assert _rank(r, 10)[:3] == [0, 1, 2]
    assert 8 not in _rank(r, 4, [8]) and _rank(r, 4, [8])[1] == 9


def test_short_candidate_lists_are_fetched_again() -> None:
    r = ranker(blocked_items=frozenset(IDS[:8]))
    assert _rank(r, 2) == [8, 9]


def test_tag_clusters_skip_meta_tags_and_untagged_items() -> None:
    groups = tag_clusters(_tags(), TAG_NAMES, 10)
    assert groups.tolist() == [0] * 6 + [1] * 3 + [-1]
    assert "seen live" in META_TAGS
