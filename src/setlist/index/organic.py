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
from functools import cached_property

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.errors import DataError
from setlist.index.buddies import nearest_block
from setlist.index.rows import entries, firsts, lookup, split, strongest

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

    @cached_property
    def binary_by_artist(self) -> sp.csr_matrix:
        """``binary`` transposed (artists x playlists), made once: every product with a block
        of listeners needs it."""
        return sp.csr_matrix(self.binary.T)

    @cached_property
    def unit_by_artist(self) -> sp.csr_matrix:
        """``unit`` transposed (artists x playlists), made once."""
        return sp.csr_matrix(self.unit.T)

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
    tracks.sort_indices()
    binary = sp.csr_matrix(tracks, copy=True)
    binary.data = np.ones_like(binary.data)
    norms = np.sqrt(np.asarray(binary.sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    scale = np.repeat(1.0 / norms, np.diff(binary.indptr))  # the same entries as ``tracks``
    frame = table.playlists
    return LinkedPlaylists(
        ids=ids,
        names=frame.get_column("name").to_numpy().astype(np.str_),
        followers=frame.get_column("num_followers").to_numpy().astype(np.float64),
        num_tracks=frame.get_column("num_tracks").to_numpy().astype(np.float64),
        num_artists=frame.get_column("num_artists").to_numpy().astype(np.float64),
        tracks=tracks,
        binary=binary,
        unit=sp.csr_matrix((binary.data * scale, binary.indices, binary.indptr), binary.shape),
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
    """A block of listeners (one row each; the route asks with a block of one) as the
    playlists see them: their plays and taste vectors over the artists, and their buddies (rows
    of the listeners' ``history``, best first, -1 past the last) with similarities."""

    plays: sp.csr_matrix
    taste: sp.csr_matrix
    buddies: npt.NDArray[np.int64]  # listeners x n_buddies, -1 past the last buddy
    similarities: npt.NDArray[np.float64]  # the same shape, 0 past the last buddy
    buddy_taste: sp.csr_matrix  # similarity-weighted sum of the buddies' taste
    buddy_heard: sp.csr_matrix  # 1 on the artists some buddy has heard
    heard: sp.csr_matrix  # 1 on the artists the listener has heard
    history: sp.csr_matrix  # the listeners' history, 1 where heard (the buddies' rows)

    def __len__(self) -> int:
        return int(self.plays.shape[0])


def ones(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """1.0 where ``matrix`` is positive."""
    return sp.csr_matrix(matrix > 0, dtype=np.float64)


def listener(
    history: sp.csr_matrix,
    vectors: sp.csr_matrix,
    queries: sp.csr_matrix,
    plays: sp.csr_matrix,
    buddies: npt.NDArray[np.int64],
    similarities: npt.NDArray[np.float64],
    heard: sp.csr_matrix | None = None,
) -> Listener:
    """The :class:`Listener` block of listeners with these ``plays`` and taste ``queries`` (rows)
    whose buddies (rows of ``history`` and ``vectors``) are already found; ``heard`` is
    ``history`` as 1 where heard (made here when not given)."""
    b = plays.shape[0]
    valid = buddies >= 0
    owner = np.broadcast_to(np.arange(b)[:, None], buddies.shape)[valid]
    n = history.shape[0]
    weights = sp.csr_matrix((similarities[valid], (owner, buddies[valid])), shape=(b, n))
    who = sp.csr_matrix((np.ones(len(owner)), (owner, buddies[valid])), shape=(b, n))
    heard = ones(history) if heard is None else heard
    mine = sp.csr_matrix(plays, dtype=np.float64)
    return Listener(
        plays=mine,
        taste=sp.csr_matrix(queries, dtype=np.float64),
        buddies=buddies,
        similarities=similarities,
        buddy_taste=sp.csr_matrix(weights @ vectors),
        buddy_heard=ones(who @ heard),
        heard=ones(mine),
        history=heard,
    )


def listener_of_row(
    history: sp.csr_matrix,
    vectors: sp.csr_matrix,
    row: int,
    hubs: npt.NDArray[np.float64] | None,
    n_buddies: int = 20,
    heard: sp.csr_matrix | None = None,
) -> Listener:
    """Row ``row`` of the listeners' ``history`` as a :class:`Listener` of one, its buddies by
    the exact pairing (``heard``: :func:`ones` of ``history``, made when not given)."""
    if not 0 <= row < history.shape[0]:
        raise DataError(f"listener row {row} out of range", field="user", value=row)
    query = vectors[[row]]
    found, sims = nearest_block(vectors, query, n_buddies, [row], hubs)
    return listener(history, vectors, query, history[[row]], found, sims, heard)


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
    found, sims = nearest_block(vectors, query, n_buddies, [None], hubs)
    return listener(history, vectors, query, sp.csr_matrix(plays), found, sims)


def raw_overlap(linked: LinkedPlaylists, who: Listener) -> sp.csr_matrix:
    """How many of each listener's artists each playlist holds (listeners x playlists)."""
    return sp.csr_matrix(who.heard @ linked.binary_by_artist)


def candidates(
    linked: LinkedPlaylists, who: Listener, n: int = 100, taste_artists: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For each listener of the block, the ``n`` playlists sharing most artists with them (ties:
    most followed) and the ``n`` their buddies' taste points to most: ``(listener, playlist)``
    pairs, by listener then playlist. ``taste_artists`` (0: all) keeps only that many of the
    buddies' strongest artists for the second source: twenty buddies' artists reach most of a
    large catalogue's playlists, and scoring them all was most of a listener's cost."""
    taste = strongest(who.buddy_taste, taste_artists) if taste_artists else who.buddy_taste
    affinity = sp.csr_matrix(taste @ linked.unit_by_artist)
    owners, rows = [], []
    for scores in (raw_overlap(linked, who), affinity):
        owner, picked = top_of_rows(scores, n, linked.followers)
        owners.append(owner)
        rows.append(picked)
    keys = np.unique(np.concatenate(owners) * len(linked) + np.concatenate(rows))
    return keys // len(linked), keys % len(linked)


def top_of_rows(
    scores: sp.csr_matrix, n: int, ties: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """:func:`top` of each row of sparse ``scores``: ``(row, column)`` pairs, best first."""
    owners, picked = [], []
    indptr = scores.indptr.tolist()
    for r in range(scores.shape[0]):
        values, cols = (
            scores.data[indptr[r] : indptr[r + 1]],
            scores.indices[indptr[r] : indptr[r + 1]],
        )
        keep = values > 0
        if len(values) > n:  # only what can reach the top n needs sorting: values >= the n-th
            floor = np.partition(values, len(values) - n)[len(values) - n]
            keep &= values >= floor
        cols, values = cols[keep].astype(np.int64), values[keep]
        best = cols[np.lexsort((cols, -ties[cols], -values))[:n]]
        owners.append(np.full(len(best), r, dtype=np.int64))
        picked.append(best)
    if not picked:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(owners), np.concatenate(picked)


def top(
    scores: npt.NDArray[np.float64], n: int, ties: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Indices of the ``n`` highest positive ``scores``, best first (ties: higher ``ties``)."""
    positive = np.flatnonzero(scores > 0)
    order = positive[np.lexsort((-ties[positive], -scores[positive]))]
    return order[:n].astype(np.int64)


def features(
    linked: LinkedPlaylists,
    who: Listener,
    owner: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """The :data:`FEATURES` of listener ``owner[i]`` of the block with playlist ``rows[i]``
    (pairs x 12), over each playlist's artists."""
    pair, at = entries(linked.tracks, rows)
    cols, counts, unit = linked.tracks.indices[at], linked.tracks.data[at], linked.unit.data[at]
    mine = owner[pair]
    plays = lookup(who.plays, mine, cols)
    heard = (plays > 0).astype(np.float64)
    taste = lookup(who.taste, mine, cols)
    buddy_taste = lookup(who.buddy_taste, mine, cols)
    buddy_heard = lookup(who.buddy_heard, mine, cols)
    loudest = np.zeros(len(who))
    if who.plays.nnz:
        listened = np.repeat(np.arange(len(who)), np.diff(who.plays.indptr))
        np.maximum.at(loudest, listened, np.log1p(np.maximum(who.plays.data, 0.0)))
    weight = np.log1p(np.maximum(plays, 0.0))
    weight = np.where(loudest[mine] > 0, weight / np.where(loudest[mine] > 0, loudest[mine], 1), 0)

    def per_pair(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.bincount(pair, values, minlength=len(rows)).astype(np.float64)

    distinct = np.diff(linked.tracks.indptr)[rows].astype(np.float64)
    size = np.maximum(np.maximum(linked.num_tracks[rows], per_pair(counts)), 1.0)
    artists = np.maximum(np.maximum(linked.num_artists[rows], distinct), 1.0)
    overlap = per_pair(heard)
    return np.column_stack(
        [
            per_pair(counts * weight) / size,
            overlap,
            overlap / artists,
            per_pair(unit * taste),
            1.0 - per_pair(counts * heard) / size,
            np.log1p(artists),
            np.log1p(linked.followers[rows]),
            np.log1p(size),
            per_pair(unit * buddy_taste),
            per_pair(unit * buddy_taste * (1.0 - heard)),
            per_pair(buddy_heard) / artists,
            distinct / artists,
        ]
    ).astype(np.float64)


@dataclass(frozen=True)
class Because:
    familiar: list[int]  # artist columns the listener loves, in the playlist
    new: list[int]  # the playlist's artists new to the listener (those buddies play first)
    buddies: list[int]  # buddies (history rows) who play the playlist's artists, most first


def because(
    linked: LinkedPlaylists,
    who: Listener,
    owner: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
    n: int = 5,
) -> list[Because]:
    """Why playlist ``rows[i]`` suits listener ``owner[i]`` of the block: the artists they love
    in it, the new ones (those their buddies' taste weighs most first, then by tracks) and the
    buddies who play its artists (most of them first, then the nearest)."""
    pair, at = entries(linked.tracks, rows)
    cols, counts = linked.tracks.indices[at].astype(np.int64), linked.tracks.data[at]
    mine = lookup(who.plays, owner[pair], cols)
    loved = mine > 0
    order = np.lexsort((at, -mine, ~loved, pair))  # per pair: loved (most played first), rest
    p, loved_p = pair[order], loved[order]
    keep = loved_p & firsts(p * 2, n)
    familiar = split(p[keep], cols[order][keep], len(rows))
    taste = lookup(who.buddy_taste, owner[pair], cols)
    order = np.lexsort((at, -counts, -taste, loved, pair))
    p, new_p = pair[order], ~loved[order]
    keep = new_p & firsts(p * 2 + (~new_p), n)
    new = split(p[keep], cols[order][keep], len(rows))
    # how many of each playlist's artists each of the listener's buddies plays
    m = who.buddies.shape[1]
    slots = np.repeat(np.arange(len(rows)), m)
    buddy = who.buddies[owner].ravel()
    valid = buddy >= 0
    slots, buddy = slots[valid], buddy[valid]
    rank = np.tile(np.arange(m), len(rows))[valid]
    sims = who.similarities[owner].ravel()[valid]
    playlist = sp.csr_matrix(
        (np.ones(len(at)), (pair, cols)), shape=(len(rows), linked.tracks.shape[1])
    )
    needed = np.unique(buddy)
    heard = sp.csr_matrix(who.history[needed] @ playlist.T)  # needed buddies x pairs
    shared = lookup(heard, np.searchsorted(needed, buddy), slots)
    order = np.lexsort((rank, -sims, -shared, slots))
    s, b, sh = slots[order], buddy[order], shared[order]
    keep = sh > 0
    s, b = s[keep], b[keep]
    keep = firsts(s, n)
    players = split(s[keep], b[keep], len(rows))
    return [Because(f, w, p) for f, w, p in zip(familiar, new, players, strict=True)]


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
    "ones",
    "raw_overlap",
    "seed_listener",
    "top",
    "top_of_rows",
]
