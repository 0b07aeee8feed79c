"""Organic playlists' catalogue side: playlists linked to the artist catalogue, their candidates
for a listener and the twelve features the ranker orders them by.

Playlists (the MPD subset) name their artists as text; the listeners' catalogue (HetRec Last.fm)
has its own artist names. They are linked by :func:`normalise`: accents dropped (NFKD), case
folded, punctuation squeezed to spaces and a leading "the " removed, so "Beyoncé" and "beyonce",
"The Killers" and "Killers" meet. A playlist becomes a row of track counts over the catalogue's
artists (:class:`LinkedPlaylists`); its unlinked artists still count in its size and diversity.

A listener (or an onboarding listener's seed artists) is a :class:`Listener`: their plays, their
taste vector and their buddies' (:mod:`setlist.index.buddies`). Candidates are the playlists that
share most artists with them and those their buddies' taste points to; :func:`features` describes
each (listener, playlist) pair for :mod:`setlist.index.organic_ranker`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.errors import DataError
from setlist.index.buddies import nearest

FEATURES = (
    "familiarity",  # share of the playlist's tracks by artists the listener plays, play-weighted
    "overlap_artists",  # the listener's artists in the playlist
    "overlap_share",  # those over the playlist's distinct artists
    "taste_cosine",  # cosine of the listener's log1p x IDF taste and the playlist's artists
    "novelty_tracks",  # share of the playlist's tracks by artists the listener has not heard
    "diversity",  # log1p of the playlist's distinct artists
    "log_followers",  # popularity
    "log_tracks",
    "buddy_affinity",  # cosine of the buddies' similarity-weighted taste and the playlist
    "buddy_new",  # the same over the artists new to the listener
    "buddy_share",  # share of the playlist's artists some buddy has heard
    "linked_share",  # share of the playlist's artists found in the catalogue
)
_SPACES = re.compile(r"[\W_]+")


def normalise(name: str) -> str:
    """An artist name as a linking key: no accents, case folded, punctuation as single spaces,
    no leading "the " ("The Beyoncé!" -> "beyonce")."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _SPACES.sub(" ", text).strip()
    return text[4:] if text.startswith("the ") and len(text) > 4 else text


@dataclass(frozen=True)
class PlaylistTable:
    """Playlists and their artists, as stored with a ranker: ``playlists`` (pid, name,
    num_followers, num_tracks, num_artists) and ``artists`` (pid, key, tracks)."""

    playlists: pl.DataFrame
    artists: pl.DataFrame

    @classmethod
    def from_mpd(
        cls, playlists: pl.DataFrame, tracks: pl.DataFrame, pairs: pl.DataFrame
    ) -> PlaylistTable:
        """From the MPD reader's three tables (:class:`setlist.data.schema.PlaylistDataset`)."""
        keyed = tracks.select(
            "track_uri", pl.col("artist_name").map_elements(normalise, return_dtype=pl.String)
        ).rename({"artist_name": "key"})
        artists = (
            pairs.join(keyed, on="track_uri", how="inner")
            .filter(pl.col("key") != "")
            .group_by("pid", "key")
            .agg(pl.len().cast(pl.Float64).alias("tracks"))
            .sort("pid", "key")
        )
        distinct = artists.group_by("pid").agg(pl.len().alias("num_artists"))
        table = (
            playlists.select(
                pl.col("pid").cast(pl.String),
                pl.col("name").fill_null(""),
                pl.col("num_followers").fill_null(0).cast(pl.Float64),
                pl.col("num_tracks").fill_null(0).cast(pl.Float64),
            )
            .join(distinct.with_columns(pl.col("pid").cast(pl.String)), on="pid", how="left")
            .with_columns(pl.col("num_artists").fill_null(0).cast(pl.Float64))
            .sort("pid")
        )
        return cls(table, artists.with_columns(pl.col("pid").cast(pl.String)))


@dataclass(frozen=True)
class LinkedPlaylists:
    """Playlists over a catalogue's artist columns: ``tracks`` (playlists x artists, track counts
    of linked artists), ``unit`` (its binary rows, L2-normalised) and the playlists' figures."""

    ids: npt.NDArray[np.str_]
    names: npt.NDArray[np.str_]
    followers: npt.NDArray[np.float64]
    num_tracks: npt.NDArray[np.float64]
    num_artists: npt.NDArray[np.float64]
    tracks: sp.csr_matrix
    binary: sp.csr_matrix
    unit: sp.csr_matrix
    linked_artists: float  # share of the playlists' distinct (pid, artist) pairs linked

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, playlist_id: str) -> int | None:
        found = np.flatnonzero(self.ids == playlist_id)
        return int(found[0]) if len(found) else None


def link(table: PlaylistTable, artist_names: Sequence[str]) -> LinkedPlaylists:
    """Link ``table``'s artists to the catalogue whose artist ``i`` is named ``artist_names[i]``
    (the first of several artists with one key takes it)."""
    columns: dict[str, int] = {}
    for i, name in enumerate(artist_names):
        columns.setdefault(normalise(str(name)), i)
    columns.pop("", None)
    ids = table.playlists.get_column("pid").to_numpy().astype(np.str_)
    rows = {pid: i for i, pid in enumerate(ids.tolist())}
    pairs = table.artists.filter(pl.col("pid").is_in(list(rows)))
    col = np.array([columns.get(k, -1) for k in pairs.get_column("key").to_list()], dtype=np.int64)
    row = np.array([rows[p] for p in pairs.get_column("pid").to_list()], dtype=np.int64)
    found = col >= 0
    tracks = sp.csr_matrix(
        (pairs.get_column("tracks").to_numpy()[found], (row[found], col[found])),
        shape=(len(ids), len(artist_names)),
        dtype=np.float64,
    )
    tracks.sum_duplicates()
    binary = sp.csr_matrix(tracks, copy=True)
    binary.data = np.ones_like(binary.data)
    norms = np.sqrt(np.asarray(binary.sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    frame = table.playlists
    return LinkedPlaylists(
        ids=ids,
        names=frame.get_column("name").to_numpy().astype(np.str_),
        followers=frame.get_column("num_followers").to_numpy().astype(np.float64),
        num_tracks=frame.get_column("num_tracks").to_numpy().astype(np.float64),
        num_artists=frame.get_column("num_artists").to_numpy().astype(np.float64),
        tracks=tracks,
        binary=binary,
        unit=sp.csr_matrix(sp.diags(1.0 / norms) @ binary),
        linked_artists=float(found.mean()) if len(found) else 0.0,
    )


def matched_share(history: sp.csr_matrix, linked: LinkedPlaylists) -> float:
    """Share of the listening (plays) that falls on artists found in some playlist."""
    total = float(history.sum())
    if total <= 0:
        return 0.0
    present = np.asarray(linked.binary.sum(axis=0)).ravel() > 0
    return float(np.asarray(history.sum(axis=0)).ravel()[present].sum() / total)


@dataclass(frozen=True)
class Listener:
    """One listener as the playlists see them: plays over the artists (dense), their taste vector
    and their buddies (rows of the listeners' history) with similarities."""

    plays: npt.NDArray[np.float64]
    taste: npt.NDArray[np.float64]
    buddies: npt.NDArray[np.int64]
    similarities: npt.NDArray[np.float64]
    buddy_taste: npt.NDArray[np.float64]  # similarity-weighted sum of the buddies' taste
    buddy_heard: npt.NDArray[np.bool_]  # artists some buddy has heard
    buddy_plays: npt.NDArray[np.bool_]  # buddies x artists: who has heard what

    @property
    def heard(self) -> npt.NDArray[np.bool_]:
        result: npt.NDArray[np.bool_] = self.plays > 0
        return result


def listener(
    history: sp.csr_matrix,
    vectors: sp.csr_matrix,
    query: sp.csr_matrix,
    plays: npt.NDArray[np.float64],
    *,
    exclude: int | None,
    hubs: npt.NDArray[np.float64] | None,
    n_buddies: int = 20,
) -> Listener:
    """A :class:`Listener` from their ``plays`` and one-row taste ``query``; buddies are the
    ``n_buddies`` nearest rows of ``vectors`` (never row ``exclude``)."""
    rows, sims = nearest(vectors, query, n_buddies, exclude=exclude, hubs=hubs)
    theirs = history[rows].toarray() > 0
    buddy_taste = np.asarray(vectors[rows].T @ sims).ravel() if len(rows) else plays * 0.0
    return Listener(
        plays=plays,
        taste=np.asarray(query.todense()).ravel(),
        buddies=rows,
        similarities=sims,
        buddy_taste=buddy_taste,
        buddy_heard=theirs.any(axis=0),
        buddy_plays=theirs,
    )


def listener_of_row(
    history: sp.csr_matrix,
    vectors: sp.csr_matrix,
    row: int,
    hubs: npt.NDArray[np.float64] | None,
    n_buddies: int = 20,
) -> Listener:
    """Row ``row`` of the listeners' ``history`` as a :class:`Listener`."""
    if not 0 <= row < history.shape[0]:
        raise DataError(f"listener row {row} out of range", field="user", value=row)
    plays = history[row].toarray().ravel().astype(np.float64)
    return listener(
        history, vectors, vectors[row], plays, exclude=row, hubs=hubs, n_buddies=n_buddies
    )


def seed_listener(
    history: sp.csr_matrix,
    vectors: sp.csr_matrix,
    artists: Sequence[int],
    hubs: npt.NDArray[np.float64] | None,
    n_buddies: int = 20,
) -> Listener:
    """An onboarding listener from seed artists (columns; one play each), weighted like
    :func:`setlist.index.buddies.taste_vectors` with the IDF of ``history``."""
    plays = np.zeros(history.shape[1], dtype=np.float64)
    plays[np.asarray(list(artists), dtype=np.int64)] = 1.0
    listeners = np.bincount(history.indices, minlength=history.shape[1]).astype(np.float64)
    taste = np.log1p(plays) * np.log((history.shape[0] + 1.0) / (listeners + 1.0))
    norm = float(np.linalg.norm(taste))
    query = sp.csr_matrix(taste / norm if norm > 0 else taste)
    return listener(history, vectors, query, plays, exclude=None, hubs=hubs, n_buddies=n_buddies)


def raw_overlap(linked: LinkedPlaylists, who: Listener) -> npt.NDArray[np.float64]:
    """How many of the listener's artists each playlist holds."""
    return np.asarray(linked.binary @ who.heard.astype(np.float64), dtype=np.float64)


def candidates(linked: LinkedPlaylists, who: Listener, n: int = 100) -> npt.NDArray[np.int64]:
    """The ``n`` playlists sharing most artists with the listener (ties: most followed) and the
    ``n`` their buddies' taste points to most, in one sorted array."""
    overlap = raw_overlap(linked, who)
    affinity = np.asarray(linked.unit @ who.buddy_taste, dtype=np.float64)
    picked = [top(overlap, n, linked.followers), top(affinity, n, linked.followers)]
    return np.unique(np.concatenate(picked)).astype(np.int64)


def top(
    scores: npt.NDArray[np.float64], n: int, ties: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Indices of the ``n`` highest positive ``scores``, best first (ties: higher ``ties``)."""
    positive = np.flatnonzero(scores > 0)
    order = positive[np.lexsort((-ties[positive], -scores[positive]))]
    return order[:n].astype(np.int64)


def features(
    linked: LinkedPlaylists, who: Listener, rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """The :data:`FEATURES` of the listener with each playlist of ``rows`` (rows x 12)."""
    tracks, binary, unit = linked.tracks[rows], linked.binary[rows], linked.unit[rows]
    heard = who.heard.astype(np.float64)
    weight = np.log1p(np.maximum(who.plays, 0.0))
    weight = weight / weight.max() if weight.max() > 0 else weight
    size = np.maximum(linked.num_tracks[rows], np.asarray(tracks.sum(axis=1)).ravel())
    size = np.maximum(size, 1.0)
    artists = np.maximum(linked.num_artists[rows], np.asarray(binary.sum(axis=1)).ravel())
    artists = np.maximum(artists, 1.0)
    overlap = binary @ heard
    return np.column_stack(
        [
            (tracks @ weight) / size,
            overlap,
            overlap / artists,
            unit @ who.taste,
            1.0 - (tracks @ heard) / size,
            np.log1p(artists),
            np.log1p(linked.followers[rows]),
            np.log1p(size),
            unit @ who.buddy_taste,
            unit @ (who.buddy_taste * (1.0 - heard)),
            (binary @ who.buddy_heard.astype(np.float64)) / artists,
            np.asarray(binary.sum(axis=1)).ravel() / artists,
        ]
    ).astype(np.float64)


@dataclass(frozen=True)
class Because:
    familiar: list[int]  # artist columns the listener loves, in the playlist
    new: list[int]  # the playlist's artists new to the listener (those buddies play first)
    buddies: list[int]  # buddies (history rows) who play the playlist's artists, most first


def because(linked: LinkedPlaylists, who: Listener, row: int, n: int = 5) -> Because:
    """Why playlist ``row`` suits the listener: the artists they love in it, the new ones (those
    their buddies' taste weighs most first, then by tracks) and the buddies who play its artists
    (most of them first, then the nearest)."""
    start, end = linked.tracks.indptr[row], linked.tracks.indptr[row + 1]
    cols, counts = linked.tracks.indices[start:end], linked.tracks.data[start:end]
    mine = who.plays[cols]
    loved = mine > 0
    known = cols[loved][np.argsort(-mine[loved], kind="stable")]
    new = cols[~loved][np.lexsort((-counts[~loved], -who.buddy_taste[cols[~loved]]))]
    shared = who.buddy_plays[:, cols].sum(axis=1)
    order = np.lexsort((-who.similarities, -shared))
    buddies = [int(who.buddies[i]) for i in order if shared[i] > 0][:n]
    return Because(known[:n].tolist(), new[:n].tolist(), buddies)


__all__ = [
    "FEATURES",
    "Because",
    "LinkedPlaylists",
    "Listener",
    "PlaylistTable",
    "because",
    "candidates",
    "features",
    "link",
    "listener",
    "listener_of_row",
    "matched_share",
    "normalise",
    "raw_overlap",
    "seed_listener",
    "top",
]
