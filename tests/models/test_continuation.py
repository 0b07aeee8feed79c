"""The continuer: seeds folded in, a name scored by the title model, both blended."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.errors import ModelError
from setlist.models.continuation import (
    SEEDS,
    SEEDS_TITLE,
    TITLE,
    ContinuationConfig,
    Continuer,
)
from setlist.models.knn import ItemKNNRecommender
from setlist.models.title import TitleModel

ROWS = np.array(
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [1, 0, 0, 1]], dtype=np.float32
)
NAMES = ["rock", "rock classics", "jazz", "jazz night", "mixed"]


def _continuer(weight: float = 0.5) -> Continuer:
    csr = sp.csr_matrix(ROWS)
    model = ItemKNNRecommender().fit(csr)
    return Continuer(model, TitleModel(NAMES, csr), ContinuationConfig(title_weight=weight))


def test_seeds_names_and_both_choose_their_strategy() -> None:
    c = _continuer()
    scores, strategy = c.scores(np.array([0]), None) or (None, "")
    assert strategy == SEEDS and scores is not None
    assert int(np.argmax(np.delete(scores, 0))) == 0  # item 1, the co-occurring track
    scores, strategy = c.scores(np.zeros(0, np.int64), "Jazz!") or (None, "")
    assert strategy == TITLE and scores is not None and set(np.argsort(-scores)[:2]) == {2, 3}
    scores, strategy = c.scores(np.array([0]), "jazz") or (None, "")
    assert strategy == SEEDS_TITLE and scores is not None and scores.max() <= 1.0
    assert c.scores(np.zeros(0, np.int64), "unheard of") is None
    assert c.scores(np.zeros(0, np.int64), None) is None


def test_title_weight_moves_the_blend() -> None:
    seeds_only = _continuer(0.0).scores(np.array([0]), "jazz")
    title_only = _continuer(1.0).scores(np.array([0]), "jazz")
    assert seeds_only is not None and title_only is not None
    assert seeds_only[0][2] < title_only[0][2]  # a jazz track rises with the title's weight


def test_config_and_shapes_are_checked() -> None:
    with pytest.raises(ModelError, match="title_weight"):
        ContinuationConfig(title_weight=1.5)
    model = ItemKNNRecommender().fit(sp.csr_matrix(ROWS))
    wrong = TitleModel(["a"], sp.csr_matrix((1, 3), dtype=np.float32))
    with pytest.raises(ModelError, match="covers 3 items"):
        Continuer(model, wrong)


def test_artist_back_off_lifts_tracks_by_the_seeds_artists() -> None:
    csr = sp.csr_matrix(ROWS)
    model = ItemKNNRecommender().fit(csr)
    artists = np.array(["a", "b", "b", "c"])
    off = Continuer(model, None, ContinuationConfig(artist_weight=0.0), item_artists=artists)
    on = Continuer(model, None, ContinuationConfig(artist_weight=1.0), item_artists=artists)
    seeds = np.array([1])  # by artist b, like item 2, which never shares a playlist with it
    plain, _ = off.scores(seeds, None) or (None, "")
    lifted, _ = on.scores(seeds, None) or (None, "")
    assert plain is not None and lifted is not None
    assert plain[2] == 0.0 and lifted[2] > lifted[3]
    config = ContinuationConfig(title_weight=0.3, artist_weight=0.5)
    assert ContinuationConfig.from_params(config.as_params()) == config
    with pytest.raises(ModelError, match="item_artists has 2 entries for 4 items"):
        Continuer(model, None, item_artists=np.array(["a", "b"]))
