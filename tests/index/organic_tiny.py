"""A tiny playlist catalogue and listening history for the organic playlist tests."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from setlist.index.organic import PlaylistTable

ARTISTS = ["Beyoncé", "The Killers", "Radiohead", "Björk", "Muse", "Coldplay", "Adele", "Drake"]
# pid, name, followers, [(artist as the playlist spells it, tracks)]
PLAYLISTS: list[tuple[int, str, int, list[tuple[str, int]]]] = [
    (0, "Rock", 5, [("Killers", 3), ("MUSE", 2), ("Coldplay", 1)]),
    (1, "Pop", 50, [("Beyonce", 2), ("Adele", 2), ("Drake", 1)]),
    (2, "Indie", 1, [("radiohead", 2), ("Bjork", 2), ("Unknown Band", 2)]),
    (3, "Mix", 10, [("The Killers", 1), ("Radiohead", 1), ("Adele", 1), ("Drake", 1)]),
    (4, "Popular", 1000, [("Nobody Known", 5)]),
]
PLAYS = {  # listener -> {artist column: plays}
    0: {1: 10, 4: 5, 2: 3},
    1: {1: 8, 4: 4, 5: 6},
    2: {0: 10, 6: 6},
    3: {0: 4, 6: 3, 7: 7},
    4: {2: 9, 3: 7},
    5: {},
}


Playlist = tuple[int, str, int, list[tuple[str, int]]]  # pid, name, followers, (artist, tracks)


def mpd_tables(
    rows: list[Playlist] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The three tables of the MPD reader (playlists, tracks, playlist_tracks) of ``rows``
    (default :data:`PLAYLISTS`): each artist's tracks made up, one per count."""
    playlists, tracks, pairs = [], [], []
    for pid, name, followers, artists in PLAYLISTS if rows is None else rows:
        n = sum(count for _, count in artists)
        playlists.append({"pid": pid, "name": name, "num_followers": followers, "num_tracks": n})
        for artist, count in artists:
            for i in range(count):
                uri = f"spotify:track:{pid}-{artist}-{i}"
                tracks.append({"track_uri": uri, "artist_name": artist})
                pairs.append({"pid": pid, "track_uri": uri})
    return pl.DataFrame(playlists), pl.DataFrame(tracks), pl.DataFrame(pairs)


def table() -> PlaylistTable:
    return PlaylistTable.from_mpd(*mpd_tables())


def history() -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for user, plays in PLAYS.items():
        for col, value in plays.items():
            rows.append(user)
            cols.append(col)
            vals.append(float(value))
    return sp.csr_matrix(
        (np.array(vals), (rows, cols)), shape=(len(PLAYS), len(ARTISTS)), dtype=np.float64
    )
