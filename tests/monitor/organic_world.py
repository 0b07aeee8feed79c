"""A small world for the organic ranker's retraining: listeners in four taste clusters, playlists
drawn from the same clusters, and feedback that follows a rule the content split cannot teach.

Each listener plays artists of their own cluster (and a couple of others), so held-out artists
point to their cluster's playlists: the content split teaches overlap. Their feedback follows
popularity instead: among their cluster's playlists they follow the much-followed ones and skip
the little-followed ones. A ranker trained without that feedback cannot know it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import scipy.sparse as sp

from setlist.data.schema import INTERACTION_SCHEMA, Dataset, conform
from setlist.events.store.base import FRAME_SCHEMA
from setlist.index.organic import PlaylistTable

CLUSTERS, PER_CLUSTER = 4, 12
ARTISTS = [f"Artist {c}-{i}" for c in range(CLUSTERS) for i in range(PER_CLUSTER)]
LISTENERS, PLAYLISTS = 240, 80
POPULAR = 400  # followers at or above: followed; below: skipped


class OrganicWorld:
    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.cluster = rng.integers(0, CLUSTERS, LISTENERS)
        rows, cols, vals = [], [], []
        for user, c in enumerate(self.cluster.tolist()):
            own = rng.choice(PER_CLUSTER, size=8, replace=False) + c * PER_CLUSTER
            other = rng.choice(len(ARTISTS), size=2, replace=False)
            for col in {*own.tolist(), *other.tolist()}:
                rows.append(user)
                cols.append(col)
                vals.append(float(rng.integers(1, 50)))
        self.history = sp.csr_matrix(
            (vals, (rows, cols)), shape=(LISTENERS, len(ARTISTS)), dtype=np.float64
        )
        self.user_ids = [f"u{u}" for u in range(LISTENERS)]
        playlists, tracks, pairs = [], [], []
        self.playlist_cluster = rng.integers(0, CLUSTERS, PLAYLISTS)
        self.followers = np.where(
            rng.random(PLAYLISTS) < 0.5, rng.integers(POPULAR, 5000, PLAYLISTS),
            rng.integers(0, POPULAR, PLAYLISTS),
        )  # fmt: skip
        for pid, c in enumerate(self.playlist_cluster.tolist()):
            chosen = rng.choice(PER_CLUSTER, size=6, replace=False) + c * PER_CLUSTER
            n = 0
            for col in chosen.tolist():
                for i in range(int(rng.integers(1, 4))):
                    uri = f"spotify:track:{pid}-{col}-{i}"
                    tracks.append({"track_uri": uri, "artist_name": ARTISTS[col]})
                    pairs.append({"pid": pid, "track_uri": uri})
                    n += 1
            playlists.append(
                {"pid": pid, "name": f"Mix {pid}", "num_followers": int(self.followers[pid]),
                 "num_tracks": n}
            )  # fmt: skip
        self.table = PlaylistTable.from_mpd(
            pl.DataFrame(playlists), pl.DataFrame(tracks), pl.DataFrame(pairs)
        )

    def dataset(self) -> Dataset:
        """The listening as a dataset (artist ids ``a<col>``, named)."""
        coo = self.history.tocoo()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        interactions = pl.DataFrame(
            {
                "user": [self.user_ids[r] for r in coo.row.tolist()],
                "item": [f"a{c}" for c in coo.col.tolist()],
                "weight": coo.data.tolist(),
                "timestamp": [start] * coo.nnz,
            }
        )
        items = pl.DataFrame(
            {"item": [f"a{c}" for c in range(len(ARTISTS))], "name": ARTISTS, "url": None}
        )
        return Dataset("organic-world", conform(interactions, INTERACTION_SCHEMA), items)

    def events(self, users: range | list[int], start_us: int = 0, seq: int = 1) -> pl.DataFrame:
        """Playlist events by the popularity rule: each listener is shown five playlists of
        their cluster (an impression each, propensity 0.5) and follows or skips each."""
        rows = []
        t = start_us or int(datetime(2026, 2, 1, tzinfo=UTC).timestamp() * 1e6)
        for user in users:
            mine = np.flatnonzero(self.playlist_cluster == self.cluster[user])[:5]
            for position, pid in enumerate(mine.tolist()):
                kind = "follow" if self.followers[pid] >= POPULAR else "skip"
                for type_, p in (("playlist_impression", 0.5), (f"playlist_{kind}", None)):
                    t += 1_000
                    rows.append(
                        (seq, f"e{seq}", self.user_ids[user], str(pid), type_, t, t, None,
                         position, "champion", "v1", p, str(pid))
                    )  # fmt: skip
                    seq += 1
        return pl.DataFrame(rows, schema=FRAME_SCHEMA, orient="row")


def later(frame: pl.DataFrame, seconds: float) -> pl.DataFrame:
    """The same events ``seconds`` later (new ids and seqs)."""
    shift = int(timedelta(seconds=seconds).total_seconds() * 1e6)
    offset = int(frame.get_column("seq").max() or 0)  # type: ignore[arg-type]
    return frame.with_columns(
        pl.col("ts_us") + shift,
        pl.col("received_us") + shift,
        pl.col("seq") + offset,
        ("x" + pl.col("event_id")).alias("event_id"),
    )


def playlists_over(names: list[str], n: int, seed: int = 0) -> PlaylistTable:
    """``n`` playlists of six artists each over the catalogue ``names``, half of them much
    followed (at least :data:`POPULAR`)."""
    rng = np.random.default_rng(seed)
    playlists, tracks, pairs = [], [], []
    for pid in range(n):
        followers = int(rng.integers(POPULAR, 5000) if pid % 2 else rng.integers(0, POPULAR))
        for col in rng.choice(len(names), size=6, replace=False).tolist():
            uri = f"spotify:track:{pid}-{col}"
            tracks.append({"track_uri": uri, "artist_name": names[col]})
            pairs.append({"pid": pid, "track_uri": uri})
        playlists.append(
            {"pid": pid, "name": f"Mix {pid}", "num_followers": followers, "num_tracks": 6}
        )
    return PlaylistTable.from_mpd(
        pl.DataFrame(playlists), pl.DataFrame(tracks), pl.DataFrame(pairs)
    )
