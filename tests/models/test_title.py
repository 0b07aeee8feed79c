"""The title model: names normalised, a new name finds playlists named like it, then tracks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from setlist.errors import ModelError
from setlist.models.title import TitleModel, normalize_title


def test_normalize_drops_punctuation_and_case_and_keeps_emoji_as_words() -> None:
    assert normalize_title("  Summer   VIBES!!! ") == "summer vibes"
    assert normalize_title("Rock'n'Roll") == "rock n roll"
    assert normalize_title("chill🔥🔥") == "chill 🔥 🔥"
    assert normalize_title("Ｃａｆé") == "café"  # NFKC folds full-width letters
    assert normalize_title("...") == ""


def _model() -> TitleModel:
    names = ["Summer Vibes", "summer", "Workout", "workout mix", "summer 2017"]
    # items: 0 summer song, 1 workout song, 2 both, 3 nobody
    rows = [[1, 0, 1, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0]]
    return TitleModel(names, sp.csr_matrix(np.array(rows, dtype=np.float32)), neighbours=3)


def test_a_name_scores_the_tracks_of_playlists_named_like_it() -> None:
    model = _model()
    scores = model.scores("SUMMER!")
    assert scores is not None and scores.shape == (4,)
    assert scores[0] > scores[2] > 0  # every summer playlist has item 0
    assert scores[1] == 0 and scores[3] == 0
    rows, sims = model.matches("summer")
    assert rows[0] == 1  # the exact name first
    assert len(rows) == 3 and (np.diff(sims) <= 0).all()
    workout = model.scores("my workout")
    assert workout is not None and int(np.argmax(workout)) == 1


def test_an_unknown_or_empty_name_has_no_scores() -> None:
    model = _model()
    assert model.scores("jazz") is None
    assert model.scores("") is None
    assert model.scores(None) is None
    assert model.scores("!!!") is None


def test_names_must_match_the_rows() -> None:
    with pytest.raises(ModelError, match="2 names for 5 playlists"):
        TitleModel(["a", "b"], sp.csr_matrix((5, 3), dtype=np.float32))
    with pytest.raises(ModelError, match="neighbours"):
        TitleModel(["a"], sp.csr_matrix((1, 3), dtype=np.float32), neighbours=0)
