"""The ACM RecSys Challenge 2018 metrics (Spotify Million Playlist Dataset, playlist continuation).

One row per test playlist: ``recommendations[i]`` is the ranked list for playlist i (best first,
track ids as non-negative integers), ``truth[i]`` its held-out tracks (G; duplicates count once),
``seeds[i]`` the tracks the recommender was shown. Everything is computed on a ``[n, k]`` matrix
in a few vector operations (the hit lookup is :func:`setlist.evaluate.metrics.hit_matrix`).

Definitions, as checked against Spotify's reference ``metrics.py`` for the challenge (Cedric De
Boom, v0.1, 2017: ``r_precision``, ``ndcg``, ``playlist_extender_clicks``), the challenge's
evaluation page (aicrowd "Evaluation": clicks of 51 when nothing is relevant) and the artist
partial credit of Chen, Lamere, Schedl and Zamani, "RecSys Challenge 2018: Automatic Music
Playlist Continuation" (RecSys '18), ``(|S_T ∩ G_T| + 0.25 |S_A ∩ G_A|) / |G_T|``. R is the
list cut to its first k (k = 500 in the challenge) entries:

- R-precision = ``(|G ∩ R[:|G|]| + 0.25 * |artists(G \\ R[:|G|]) ∩ artists(R[:|G|] \\ G)|)/|G|``.
  The artist term is over *distinct* artists and only over tracks not matched by track: a
  recommended track that is right scores 1 and never also its artist; a wrong track scores 0.25
  when its artist is the artist of a held-out track that was missed, once per such artist. (The
  paper's formula with S_A, G_A over all tracks would give a perfect list more than 1; excluding
  matched tracks keeps the score in [0, 1] and a perfect list at exactly 1.)
  :func:`track_r_precision` is the track-only form of the reference code (no artist term).
- NDCG = DCG / IDCG with binary gains of held-out tracks, ``DCG = sum_i rel_i / log2(i + 1)``
  over 1-based positions i <= k, ``IDCG`` the same for min(|G|, k) hits first: the reference
  code's form (its docstring's ``rel_1 + sum_{i>=2}`` is the same sum, as 1/log2(2) = 1). The
  rules page gives its formulas as images that our stored copy lacks; we follow the code.
- Recommended songs clicks = ``floor((rank of the first held-out track - 1) / 10)`` (rank
  1-based), and ``ceil(k / 10) + 1`` = 51 for k = 500 when none of the k is held out (the
  reference code's ``k / 10 + 1``; the ceiling only matters for a k that is not a multiple of 10).

Input rules (a challenge submission was 500 distinct tracks that leave out the playlist's seeds;
we could not read the official checker, so this is our strict reading): a list that names a
track twice is a :class:`DataError` naming the playlist; a seed track among the recommendations
is a :class:`DataError` too unless ``on_seed="miss"``, which scores it as a miss that still
takes its position and earns no artist credit. A list longer than k is cut to k (as the
reference code does); a shorter one is scored as if padded with misses. ``k`` other than 500 is
allowed (the challenge's figures are at 500; the errors about list contents name the k used).
An empty truth is an error (the metrics are undefined); a seed that is also in the truth is an
error (the truth excludes seeds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.errors import ConfigError, DataError
from setlist.evaluate.metrics import hit_matrix, ndcg_at_k

IntArray = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Tracks per challenge submission list.
CHALLENGE_K = 500
#: Credit for a wrong track by a right artist.
ARTIST_CREDIT = 0.25
#: Tracks per "Recommended Songs" page; a click loads the next page.
PAGE = 10

TrackList = Sequence[int] | npt.NDArray[np.integer]
TrackLists = Sequence[TrackList]
ArtistMap = Mapping[int, int] | npt.ArrayLike
SeedPolicy = Literal["error", "miss"]
PLAYLIST_METRICS = ("r_precision", "ndcg", "clicks")


def r_precision(
    recommendations: TrackLists,
    truth: TrackLists,
    artist_of: ArtistMap,
    *,
    k: int = CHALLENGE_K,
    seeds: TrackLists | None = None,
    on_seed: SeedPolicy = "error",
    playlist_ids: Sequence[object] | None = None,
) -> Float64Array:
    """R-precision with the 0.25 artist credit, one value per playlist (see the module doc)."""
    return challenge_metrics(
        recommendations,
        truth,
        artist_of,
        k=k,
        seeds=seeds,
        on_seed=on_seed,
        playlist_ids=playlist_ids,
    )["r_precision"]


def track_r_precision(
    recommendations: TrackLists,
    truth: TrackLists,
    *,
    k: int = CHALLENGE_K,
    playlist_ids: Sequence[object] | None = None,
) -> Float64Array:
    """``|G ∩ R[:|G|]| / |G|``: the reference code's R-precision, no artist credit."""
    lists = _prepare(recommendations, truth, k, playlist_ids, None, "error")
    hits = hit_matrix(lists.ranked, lists.truth)
    return _track_hits_in_r(hits, lists.n_truth) / lists.n_truth


def ndcg(
    recommendations: TrackLists,
    truth: TrackLists,
    *,
    k: int = CHALLENGE_K,
    playlist_ids: Sequence[object] | None = None,
) -> Float64Array:
    """Binary-gain NDCG over the first k recommendations (see the module doc)."""
    lists = _prepare(recommendations, truth, k, playlist_ids, None, "error")
    return ndcg_at_k(lists.ranked, lists.truth, k)


def recommended_songs_clicks(
    recommendations: TrackLists,
    truth: TrackLists,
    *,
    k: int = CHALLENGE_K,
    playlist_ids: Sequence[object] | None = None,
) -> Float64Array:
    """Pages of 10 refreshed before the first held-out track; ``ceil(k/10) + 1`` when none."""
    lists = _prepare(recommendations, truth, k, playlist_ids, None, "error")
    return _clicks(hit_matrix(lists.ranked, lists.truth), k)


def no_hit_clicks(k: int) -> int:
    """The clicks a playlist scores when none of its k recommendations is held out (51 at 500)."""
    _check_k(k)
    return math.ceil(k / PAGE) + 1


def challenge_metrics(
    recommendations: TrackLists,
    truth: TrackLists,
    artist_of: ArtistMap,
    *,
    k: int = CHALLENGE_K,
    seeds: TrackLists | None = None,
    on_seed: SeedPolicy = "error",
    playlist_ids: Sequence[object] | None = None,
) -> dict[str, Float64Array]:
    """R-precision, NDCG and clicks per playlist from one validation and one hit lookup.

    Also ``track_r_precision`` (no artist credit) and ``n_truth`` (|G|). ``artist_of`` maps a
    track id to an artist id: a dict, or an array indexed by track id (-1: unknown); a track
    whose artist the credit needs (a missed held-out track, a wrong one in the first |G|) and
    that it does not cover is a :class:`DataError`.
    """
    lists = _prepare(recommendations, truth, k, playlist_ids, seeds, on_seed)
    artists = _artist_array(artist_of)
    hits = hit_matrix(lists.ranked, lists.truth)
    track_hits = _track_hits_in_r(hits, lists.n_truth)
    credit = _artist_credit(lists, hits, artists)
    n_truth = lists.n_truth.astype(np.float64)
    return {
        "r_precision": (track_hits + ARTIST_CREDIT * credit) / n_truth,
        "ndcg": ndcg_at_k(lists.ranked, lists.truth, k, hits),
        "clicks": _clicks(hits, k),
        "track_r_precision": track_hits / n_truth,
        "n_truth": n_truth,
    }


@dataclass(frozen=True)
class _Lists:
    """Validated inputs: ``ranked`` [n, k] (-1 pads), binary truth CSR [n, n_tracks]."""

    ranked: IntArray
    truth: sp.csr_matrix
    n_truth: IntArray
    seed_hits: BoolArray  # [n, k]: the recommendation is one of the playlist's seeds
    ids: Sequence[object]


def _prepare(
    recommendations: TrackLists,
    truth: TrackLists,
    k: int,
    playlist_ids: Sequence[object] | None,
    seeds: TrackLists | None,
    on_seed: SeedPolicy,
) -> _Lists:
    _check_k(k)
    if on_seed not in ("error", "miss"):
        raise ConfigError(f"on_seed must be 'error' or 'miss', got {on_seed!r}", field="on_seed")
    n = len(truth)
    if n == 0:
        raise DataError("truth holds no playlist: nothing to evaluate", field="truth")
    ids: Sequence[object] = list(range(n)) if playlist_ids is None else playlist_ids
    for name, values in (("recommendations", recommendations), ("playlist_ids", ids)):
        if len(values) != n:
            raise DataError(
                f"{name} has {len(values)} entries but truth has {n} playlists", field=name
            )
    rec_rows = [_id_row(r, "recommendations", ids[i])[:k] for i, r in enumerate(recommendations)]
    truth_rows = [np.unique(_id_row(t, "truth", ids[i])) for i, t in enumerate(truth)]
    for i, truth_row in enumerate(truth_rows):
        if truth_row.size == 0:
            raise DataError(
                f"playlist {ids[i]!r} has no held-out track: its metrics are undefined",
                field="truth",
                playlist=str(ids[i]),
            )
    if seeds is not None and len(seeds) != n:
        raise DataError(
            f"seeds has {len(seeds)} entries but truth has {n} playlists", field="seeds"
        )
    seed_rows = (
        None
        if seeds is None
        else [np.unique(_id_row(s, "seeds", ids[i])) for i, s in enumerate(seeds)]
    )
    n_tracks = 1 + max(
        int(row.max())
        for rows in (rec_rows, truth_rows, seed_rows or [])
        for row in rows
        if row.size
    )
    ranked = _ranked_matrix(rec_rows, k)
    _refuse_duplicates(ranked, n_tracks, ids, k)
    truth_csr = _csr(truth_rows, n_tracks)
    seed_hits = np.zeros(ranked.shape, dtype=np.bool_)
    if seed_rows is not None:
        seed_csr = _csr(seed_rows, n_tracks)
        _refuse_seeds_in_truth(seed_csr, truth_csr, ids)
        seed_hits = hit_matrix(ranked, seed_csr)
        if on_seed == "error" and seed_hits.any():
            bad_rows, bad_cols = np.nonzero(seed_hits)
            at, col = int(bad_rows[0]), int(bad_cols[0])
            raise DataError(
                f"playlist {ids[at]!r} recommends its seed track {int(ranked[at, col])} at "
                f"rank {col + 1} (k={k}); seeds may not be recommended (on_seed='miss' scores "
                "them as misses)",
                field="recommendations",
                playlist=str(ids[at]),
            )
    return _Lists(ranked, truth_csr, np.diff(truth_csr.indptr).astype(np.int64), seed_hits, ids)


def _id_row(values: TrackList, field: str, pid: object) -> IntArray:
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(
            f"{field} of playlist {pid!r} must be a flat list of integer track ids, "
            f"got dtype {arr.dtype} and shape {arr.shape}",
            field=field,
            playlist=str(pid),
        )
    out = arr.astype(np.int64)
    if out.min() < 0:
        raise DataError(
            f"{field} of playlist {pid!r} holds the negative track id {int(out.min())}",
            field=field,
            playlist=str(pid),
        )
    return out


def _ranked_matrix(rows: list[IntArray], k: int) -> IntArray:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    ranked = np.full((len(rows), k), -1, dtype=np.int64)
    if lengths.sum():
        row_idx = np.repeat(np.arange(len(rows)), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        ranked[row_idx, np.arange(int(lengths.sum())) - starts] = np.concatenate(rows)
    return ranked


def _refuse_duplicates(ranked: IntArray, n_tracks: int, ids: Sequence[object], k: int) -> None:
    rows, cols = np.nonzero(ranked >= 0)
    keys = rows.astype(np.int64) * n_tracks + ranked[rows, cols]
    order = np.argsort(keys, kind="stable")
    same = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if same.size:
        at = order[same[0] + 1]
        row, track = int(rows[at]), int(ranked[rows[at], cols[at]])
        raise DataError(
            f"playlist {ids[row]!r} lists track {track} twice in its first {k} recommendations",
            field="recommendations",
            playlist=str(ids[row]),
        )


def _refuse_seeds_in_truth(
    seeds: sp.csr_matrix, truth: sp.csr_matrix, ids: Sequence[object]
) -> None:
    both = seeds.multiply(truth).tocsr()
    both.eliminate_zeros()
    if both.nnz:
        row = int(np.flatnonzero(np.diff(both.indptr))[0])
        raise DataError(
            f"playlist {ids[row]!r} has seed track {int(both.indices[both.indptr[row]])} in its "
            "truth: the held-out tracks must exclude the seeds",
            field="truth",
            playlist=str(ids[row]),
        )


def _csr(rows: list[IntArray], n_tracks: int) -> sp.csr_matrix:
    """Binary CSR from sorted unique rows (``np.unique`` output)."""
    indptr = np.concatenate(([0], np.cumsum([len(r) for r in rows]))).astype(np.int64)
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    data = np.ones(len(indices), dtype=np.float64)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_tracks))


def _in_r(shape: tuple[int, int], n_truth: IntArray) -> BoolArray:
    """``[n, k]`` mask of the first |G| positions of each list."""
    mask: BoolArray = np.arange(shape[1])[None, :] < n_truth[:, None]
    return mask


def _track_hits_in_r(hits: BoolArray, n_truth: IntArray) -> Float64Array:
    counts: Float64Array = (hits & _in_r(hits.shape, n_truth)).sum(axis=1, dtype=np.float64)
    return counts


def _artist_credit(lists: _Lists, hits: BoolArray, artists: IntArray) -> Float64Array:
    """Per playlist: distinct artists shared by missed truth tracks and wrong tracks in R[:|G|]."""
    ranked, truth = lists.ranked, lists.truth
    n = ranked.shape[0]
    in_r = _in_r(ranked.shape, lists.n_truth)
    n_tracks = truth.shape[1]
    # wrong recommended tracks within the first |G| (seeds never earn credit)
    wrong_rows, wrong_cols = np.nonzero(in_r & (ranked >= 0) & ~hits & ~lists.seed_hits)
    wrong_tracks = ranked[wrong_rows, wrong_cols]
    # held-out tracks that the first |G| missed
    hit_rows, hit_cols = np.nonzero(hits & in_r)
    matched = np.sort(hit_rows.astype(np.int64) * n_tracks + ranked[hit_rows, hit_cols])
    truth_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(truth.indptr))
    truth_keys = truth_rows * n_tracks + truth.indices.astype(np.int64)
    missed = ~np.isin(truth_keys, matched, assume_unique=True)
    missed_rows, missed_tracks = truth_rows[missed], truth.indices[missed].astype(np.int64)

    rec_artist = _lookup(artists, wrong_tracks, "recommendations", lists.ids, wrong_rows)
    truth_artist = _lookup(artists, missed_tracks, "truth", lists.ids, missed_rows)
    n_artists = int(artists.max()) + 1 if artists.size else 1
    rec_keys = np.unique(wrong_rows.astype(np.int64) * n_artists + rec_artist)
    truth_keys_a = np.unique(missed_rows * n_artists + truth_artist)
    shared = np.intersect1d(rec_keys, truth_keys_a, assume_unique=True)
    counts: Float64Array = np.bincount(shared // n_artists, minlength=n).astype(np.float64)
    return counts


def _artist_array(artist_of: ArtistMap) -> IntArray:
    if isinstance(artist_of, Mapping):
        if not artist_of:
            return np.zeros(0, dtype=np.int64)
        tracks = np.fromiter(artist_of.keys(), dtype=np.int64, count=len(artist_of))
        values = np.fromiter(artist_of.values(), dtype=np.int64, count=len(artist_of))
        if tracks.min() < 0:
            raise DataError(f"artist_of has the negative track id {int(tracks.min())}")
        out = np.full(int(tracks.max()) + 1, -1, dtype=np.int64)
        out[tracks] = values
        if values.min() < 0:
            raise DataError(f"artist_of maps a track to the negative artist {int(values.min())}")
        return out
    arr = np.asarray(artist_of)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise DataError(
            f"artist_of must be a dict or a 1-D integer array, got dtype {arr.dtype} and shape "
            f"{arr.shape}",
            field="artist_of",
        )
    return arr.astype(np.int64)


def _lookup(
    artists: IntArray,
    tracks: IntArray,
    field: str,
    ids: Sequence[object],
    rows: npt.NDArray[np.integer],
) -> IntArray:
    """Artist of each track; a track with no artist (-1 or past the map) is a DataError."""
    known = tracks < artists.size
    out = np.full(tracks.shape, -1, dtype=np.int64)
    out[known] = artists[tracks[known]]
    bad = np.flatnonzero(out < 0)
    if bad.size:
        at = int(bad[0])
        raise DataError(
            f"artist_of has no artist for track {int(tracks[at])} in the {field} of playlist "
            f"{ids[int(rows[at])]!r}",
            field="artist_of",
            track=int(tracks[at]),
        )
    return out


def _clicks(hits: BoolArray, k: int) -> Float64Array:
    found = hits.any(axis=1)
    first = np.argmax(hits, axis=1)
    clicks: Float64Array = np.where(found, first // PAGE, no_hit_clicks(k)).astype(np.float64)
    return clicks


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer (the challenge uses 500), got {k!r}")
