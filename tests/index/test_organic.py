"""Organic playlists: linking, features and ranker on a tiny catalogue (organic_tiny.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from setlist.errors import ConfigError, DataError
from setlist.index.buddies import hubness, nearest_block, taste_vectors
from setlist.index.organic import (
    FEATURES,
    because,
    candidates,
    features,
    link,
    listener,
    listener_of_row,
    matched_share,
    normalise,
    raw_overlap,
    seed_listener,
)
from setlist.index.organic_ranker import (
    OrganicRanker,
    RankerConfig,
    most_followed,
    recommend_block,
    recommend_playlists,
)
from setlist.index.organic_store import latest_version, load_organic, save_organic
from setlist.index.rows import strongest as strongest_rows
from tests.index.organic_tiny import ARTISTS, history, table


def _who(user: int):  # type: ignore[no-untyped-def]
    h = history()
    vectors = taste_vectors(h)
    return listener_of_row(h, vectors, user, hubness(vectors), n_buddies=3)


def test_names_link_ignoring_accents_case_punctuation_and_a_leading_the() -> None:
    assert normalise("Beyoncé") == normalise("beyonce") == "beyonce"
    assert normalise("The Killers") == normalise("killers")
    assert normalise("Björk!") == "bjork"
    assert normalise("AC/DC") == "ac dc"
    assert normalise("The The") == "the"


def test_playlists_become_track_counts_over_the_catalogue_artists() -> None:
    linked = link(table(), ARTISTS)
    assert linked.ids.tolist() == ["0", "1", "2", "3", "4"]
    rock = linked.tracks[0].toarray().ravel()
    assert rock[ARTISTS.index("The Killers")] == 3 and rock[ARTISTS.index("Muse")] == 2
    indie = linked.tracks[2].toarray().ravel()
    assert indie[ARTISTS.index("Björk")] == 2 and indie.sum() == 4  # "Unknown Band" unlinked
    assert linked.num_artists.tolist() == [3, 3, 3, 4, 1]
    assert linked.tracks[4].nnz == 0
    assert linked.linked_artists == pytest.approx(12 / 14)
    # every play of the history is on an artist some playlist holds
    assert matched_share(history(), linked) == pytest.approx(1.0)


def test_candidates_come_from_overlap_and_buddies() -> None:
    linked = link(table(), ARTISTS)
    who = _who(0)  # Killers, Muse, Radiohead; buddy 1 (Killers, Muse, Coldplay)
    assert 1 in who.buddies[0].tolist()
    assert raw_overlap(linked, who).toarray()[0].tolist() == [2, 0, 1, 2, 0]
    owner, rows = candidates(linked, who, n=10)
    assert set(owner.tolist()) == {0}
    found = rows.tolist()
    assert 0 in found and 3 in found and 2 in found and 4 not in found


def test_the_buddies_source_can_look_through_their_strongest_artists_only() -> None:
    linked = link(table(), ARTISTS)
    who = _who(4)  # Radiohead and Björk: the Indie and Mix playlists by overlap
    taste = who.buddy_taste.toarray()[0]
    strongest = strongest_rows(who.buddy_taste, 1)
    assert strongest.nnz == 1 and strongest.indices[0] == int(np.argmax(taste))
    assert strongest.data[0] == taste.max()
    everything = set(candidates(linked, who, n=10)[1].tolist())
    narrow = set(candidates(linked, who, n=10, taste_artists=1)[1].tolist())
    overlap = set(np.flatnonzero(raw_overlap(linked, who).toarray()[0]).tolist())
    holds = set(np.flatnonzero(linked.binary[:, int(np.argmax(taste))].toarray().ravel()).tolist())
    assert narrow == overlap | holds and narrow <= everything


def test_features_describe_familiarity_novelty_and_popularity() -> None:
    linked = link(table(), ARTISTS)
    x = features(linked, _who(0), np.zeros(3, dtype=np.int64), np.array([0, 1, 3]))
    assert x.shape == (3, len(FEATURES))
    col = {name: x[:, i] for i, name in enumerate(FEATURES)}
    assert col["overlap_artists"].tolist() == [2, 0, 2]
    assert col["novelty_tracks"][0] == pytest.approx(1 / 6)  # only the Coldplay track is new
    assert col["novelty_tracks"][1] == pytest.approx(1.0)
    assert col["familiarity"][0] > col["familiarity"][2] > col["familiarity"][1] == 0
    assert col["log_followers"].tolist() == pytest.approx(np.log1p([5, 50, 10]).tolist())
    assert col["buddy_new"][0] > 0  # Coldplay: new to 0, played by buddy 1


def test_reasons_name_loved_and_new_artists_and_the_buddies() -> None:
    linked = link(table(), ARTISTS)
    (why,) = because(linked, _who(0), np.zeros(1, dtype=np.int64), np.array([0]))
    assert why.familiar == [ARTISTS.index("The Killers"), ARTISTS.index("Muse")]
    assert why.new == [ARTISTS.index("Coldplay")]
    assert why.buddies[0] == 1


def test_no_history_gets_the_most_followed_and_seeds_get_personal_ones() -> None:
    linked = link(table(), ARTISTS)
    ranker = OrganicRanker()  # no booster: raw overlap order
    assert recommend_playlists(ranker, linked, _who(5), k=3).tolist() == [4, 1, 3]
    h = history()
    vectors = taste_vectors(h)
    seeds = seed_listener(h, vectors, [ARTISTS.index("Beyoncé"), 7], hubness(vectors))
    picked = recommend_playlists(ranker, linked, seeds, k=2).tolist()
    assert picked[0] in (1, 3) and 4 not in picked
    assert most_followed(linked, 2).tolist() == [4, 1]


def test_serendipity_trades_familiar_playlists_for_new_ones() -> None:
    linked = link(table(), ARTISTS)
    who = _who(0)
    ranker = OrganicRanker()
    owner, rows = candidates(linked, who, 10)
    x = features(linked, who, owner, rows)
    novelty = dict(zip(rows.tolist(), x[:, 4].tolist(), strict=True))
    safe = recommend_playlists(ranker, linked, who, k=2, serendipity=0.0).tolist()
    bold = recommend_playlists(ranker, linked, who, k=2, serendipity=1.0).tolist()
    assert sum(novelty[r] for r in bold) > sum(novelty[r] for r in safe)
    with pytest.raises(ConfigError, match="serendipity"):
        recommend_playlists(ranker, linked, who, k=1, serendipity=1.5)


def test_a_block_of_listeners_gets_what_each_gets_alone() -> None:
    """top picks asks with blocks, the route with one listener: the answers must agree."""
    linked = link(table(), ARTISTS)
    h = history()
    vectors = taste_vectors(h)
    hubs = hubness(vectors)
    users = np.arange(h.shape[0])
    found, sims = nearest_block(vectors, vectors[users], 3, users.tolist(), hubs)
    block = listener(h, vectors, vectors[users], h[users], found, sims)
    ranker = OrganicRanker()
    slates = recommend_block(ranker, linked, block, k=3, serendipity=0.3)
    owner, rows = candidates(linked, block, 10)
    x = features(linked, block, owner, rows)
    for user in users.tolist():
        alone = _who(user)
        assert alone.buddies.tolist() == block.buddies[[user]].tolist()
        mine = owner == user
        one, theirs = candidates(linked, alone, 10)
        assert theirs.tolist() == rows[mine].tolist()
        assert features(linked, alone, one, theirs).tolist() == x[mine].tolist()
        slate = recommend_playlists(ranker, linked, alone, k=3, serendipity=0.3)
        assert slate.tolist() == slates[user].tolist()
        picked = np.asarray(slate, dtype=np.int64)
        whys = because(linked, block, np.full(len(picked), user), picked)
        assert whys == because(linked, alone, np.zeros(len(picked), dtype=np.int64), picked)


def test_the_ranker_learns_an_order_and_survives_a_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((400, len(FEATURES)))
    y = (x[:, 3] * 4).astype(float)  # the label follows taste_cosine
    config = RankerConfig(n_estimators=20, min_child_samples=5)
    ranker = OrganicRanker(config).fit(x, y, [20] * 20)
    test = rng.random((50, len(FEATURES)))
    scores = ranker.score(test)
    assert np.corrcoef(scores, test[:, 3])[0, 1] > 0.8
    folder = save_organic(tmp_path, ranker, table(), {"champion": "ranker"})
    assert latest_version(tmp_path) == folder
    loaded = load_organic(folder)
    assert np.allclose(loaded.ranker.score(test), scores)
    assert loaded.champion == "ranker" and loaded.version == folder.name
    assert loaded.table.playlists.equals(table().playlists)
    with pytest.raises(DataError, match="groups"):
        OrganicRanker(config).fit(x, y, [10])
    with pytest.raises(DataError, match="meta.json"):
        load_organic(tmp_path / "missing")
