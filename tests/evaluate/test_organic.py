"""The organic playlists' user-content split, slate metrics and champion rule (tiny data)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.errors import ConfigError
from setlist.evaluate.organic import (
    MOST_FOLLOWED,
    OVERLAP,
    RANKER,
    OrganicEvaluation,
    content_split,
    evaluate_organic,
    slate_metrics,
)
from setlist.evaluate.stats import compare_paired
from setlist.index.buddies import hubness, taste_vectors
from setlist.index.organic import link, listener_of_row
from setlist.index.organic_ranker import OrganicRanker
from tests.index.organic_tiny import ARTISTS, history, table


def test_the_split_holds_out_part_of_each_listeners_artists() -> None:
    rng = np.random.default_rng(1)
    full = sp.random(30, 50, density=0.3, format="csr", random_state=rng) * 10
    split = content_split(full, fraction=0.25, seed=3)
    assert (split.visible + split.heldout != full).nnz == 0
    assert split.visible.multiply(split.heldout).nnz == 0
    for user in range(30):
        n = full[user].nnz
        held = split.heldout[user].nnz
        assert held == (max(1, round(0.25 * n)) if n >= 5 else 0)
    again = content_split(full, fraction=0.25, seed=3)
    assert (again.heldout != split.heldout).nnz == 0
    with pytest.raises(ConfigError, match="fraction"):
        content_split(full, fraction=1.0)


def test_slate_metrics_by_hand() -> None:
    linked = link(table(), ARTISTS)
    h = history()
    vectors = taste_vectors(h)
    who = listener_of_row(h, vectors, 0, hubness(vectors))  # Killers, Muse, Radiohead
    heldout = np.zeros(len(ARTISTS))
    heldout[ARTISTS.index("Coldplay")] = 4.0
    heldout[ARTISTS.index("Drake")] = 1.0
    m = slate_metrics(linked, who, heldout, [0, 4])  # Rock (has Coldplay), Popular (nothing)
    assert m["hit_rate"] == 0.5
    assert m["discovery_recall"] == 0.5  # Coldplay covered, Drake not
    assert m["novelty"] == pytest.approx((1 / 6 + 1.0) / 2)
    assert m["diversity"] == 3.0  # Killers, Muse, Coldplay (the unlinked artist is not counted)


def test_the_ranker_is_champion_only_when_it_beats_both_references() -> None:
    users = list(range(40))
    rng = np.random.default_rng(0)
    base = rng.random(40)

    def evaluation(ranker: np.ndarray, overlap: np.ndarray) -> OrganicEvaluation:
        values = {
            RANKER: {"hit_rate": ranker.tolist()},
            OVERLAP: {"hit_rate": overlap.tolist()},
            MOST_FOLLOWED: {"hit_rate": (base * 0).tolist()},
        }
        out = OrganicEvaluation(users, values)
        out.comparisons = {
            r: compare_paired(ranker, values[r]["hit_rate"]) for r in (OVERLAP, MOST_FOLLOWED)
        }
        return out

    assert evaluation(base + 0.2, base).champion == RANKER
    assert evaluation(base, base + 0.01).champion == OVERLAP  # better than most-followed only


def test_evaluation_runs_the_three_sources_on_the_same_listeners() -> None:
    linked = link(table(), ARTISTS)
    split = content_split(history(), fraction=0.4, seed=0, min_artists=2)
    vectors = taste_vectors(split.visible)
    ev = evaluate_organic(
        OrganicRanker(), linked, split, vectors, hubness(vectors), np.arange(6), 2
    )
    assert ev.users and 5 not in ev.users  # listener 5 has nothing held out
    for source in (RANKER, MOST_FOLLOWED, OVERLAP):
        assert len(ev.values[source]["hit_rate"]) == len(ev.users)
    # without a booster the ranker orders by raw overlap, as the reference does
    assert ev.mean(RANKER, "hit_rate") == pytest.approx(ev.mean(OVERLAP, "hit_rate"))
    assert set(ev.comparisons) == {MOST_FOLLOWED, OVERLAP}
    assert "ranker_vs_overlap.p_value" in ev.summary()
