"""The title model: a playlist name points to the playlists named like it, then their tracks.

A name such as "Summer 2017 🔥" says a lot before any track is chosen (the 2018 challenge's
"title only" category). Names are normalised (:func:`normalize_title`: Unicode NFKC, lower case,
punctuation dropped, spaces collapsed; emoji kept, each one a word of its own), each training
playlist's name becomes a TF-IDF vector over those words, and a new name is scored by cosine
against them. The ``neighbours`` most similar playlists (an exact name match counts one more)
vote for their tracks, each vote weighted by the similarity; the result is one score per item.

It is a neighbourhood model written here rather than taken from a library because it is a few
sparse products over scipy matrices: sklearn's ``TfidfVectorizer`` would add a dependency for the
tokenising alone, and its tokenizer drops emoji, which are common playlist names.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.errors import ModelError

DEFAULT_NEIGHBOURS = 50


def _is_symbol(char: str) -> bool:
    return unicodedata.category(char).startswith("S")


def normalize_title(name: str) -> str:
    """Lower case, NFKC, punctuation and control characters out, symbols (emoji) as words."""
    out: list[str] = []
    for char in unicodedata.normalize("NFKC", name).lower():
        cat = unicodedata.category(char)
        if cat.startswith("S"):
            out.append(f" {char} ")
        elif cat.startswith(("L", "N")):
            out.append(char)
        elif cat[0] in "PZC" or char.isspace():
            out.append(" ")
        # marks (M*) are dropped: "é" after NFKC is one letter, a lone combining mark is noise
    return " ".join("".join(out).split())


class TitleModel:
    """Scores items for a playlist name from the training playlists' names and tracks.

    ``names[i]`` is the name of row ``i`` of ``playlist_items`` (playlists x items; any weight
    above zero counts as the track being on the playlist).
    """

    def __init__(
        self,
        names: Sequence[str],
        playlist_items: sp.csr_matrix,
        *,
        neighbours: int = DEFAULT_NEIGHBOURS,
    ) -> None:
        if len(names) != playlist_items.shape[0]:
            raise ModelError(
                f"{len(names)} names for {playlist_items.shape[0]} playlists: one name per row"
            )
        if neighbours < 1:
            raise ModelError(f"neighbours must be at least 1, got {neighbours}")
        self.neighbours = neighbours
        self.normalized = [normalize_title(n) for n in names]
        self.vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for row, title in enumerate(self.normalized):
            for word in set(title.split()):
                rows.append(row)
                cols.append(self.vocabulary.setdefault(word, len(self.vocabulary)))
        n = len(names)
        terms = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),
            shape=(n, max(len(self.vocabulary), 1)),
        )
        df = np.asarray((terms > 0).sum(axis=0), dtype=np.float64).ravel()
        self.idf = np.log((1.0 + n) / (1.0 + df)).astype(np.float32) + 1.0
        weighted = sp.csr_matrix(terms.multiply(self.idf[None, :]), dtype=np.float32)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self.terms_t = sp.csr_matrix(sp.diags(1.0 / norms) @ weighted, dtype=np.float32).T.tocsr()
        self.exact: dict[str, list[int]] = {}
        for row, title in enumerate(self.normalized):
            if title:
                self.exact.setdefault(title, []).append(row)
        self.playlist_items = sp.csr_matrix(playlist_items > 0, dtype=np.float32)

    @property
    def n_items(self) -> int:
        return int(self.playlist_items.shape[1])

    def matches(self, name: str | None) -> tuple[IntArray, FloatArray]:
        """The playlists named most like ``name`` (rows, similarity), best first; may be empty."""
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if not name:
            return empty
        title = normalize_title(name)
        words = [self.vocabulary[w] for w in set(title.split()) if w in self.vocabulary]
        if not words:
            return empty
        weights = self.idf[words]
        query = weights / math.sqrt(float((weights**2).sum()))
        sims = np.asarray(self.terms_t[words].T @ query, dtype=np.float32).ravel()
        for row in self.exact.get(title, ()):
            sims[row] += 1.0
        positive = np.flatnonzero(sims > 0)
        if positive.size == 0:
            return empty
        take = min(self.neighbours, positive.size)
        best = positive[np.argpartition(-sims[positive], take - 1)[:take]]
        best = best[np.lexsort((best, -sims[best]))]
        return best.astype(np.int64), sims[best]

    def scores(self, name: str | None) -> FloatArray | None:
        """One score per item (votes of the matching playlists); None when no name matches."""
        rows, sims = self.matches(name)
        if rows.size == 0:
            return None
        votes = sims @ self.playlist_items[rows]
        return np.asarray(votes, dtype=np.float32).ravel() / float(sims.sum())
