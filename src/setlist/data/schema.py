"""The shapes every loader returns: an interactions frame and a :class:`Dataset`.

Interactions are a polars frame with exactly :data:`INTERACTION_SCHEMA`: one row per
(user, item) event or aggregate, ``weight`` the play count (1.0 where the source has none),
``timestamp`` in UTC or null where the source has none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

INTERACTION_SCHEMA: dict[str, pl.DataType] = {
    "user": pl.String(),
    "item": pl.String(),
    "weight": pl.Float64(),
    "timestamp": pl.Datetime("us", "UTC"),
}

ITEM_SCHEMA: dict[str, pl.DataType] = {
    "item": pl.String(),
    "name": pl.String(),
    "url": pl.String(),
}


def empty_interactions() -> pl.DataFrame:
    return pl.DataFrame(schema=INTERACTION_SCHEMA)


def empty_items() -> pl.DataFrame:
    return pl.DataFrame(schema=ITEM_SCHEMA)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast the schema's columns, adding missing optional ones as nulls."""
    cols = []
    for name, dtype in schema.items():
        if name in frame.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(cols)


@dataclass
class Dataset:
    """A loaded dataset: interactions plus item metadata (names, links) and optional tags."""

    name: str
    interactions: pl.DataFrame
    items: pl.DataFrame = field(default_factory=empty_items)
    item_tags: pl.DataFrame | None = None  # columns item, tag, count (where the source has tags)

    @property
    def has_timestamps(self) -> bool:
        ts = self.interactions.get_column("timestamp")
        return ts.len() > 0 and ts.null_count() == 0

    def fingerprint(self) -> str:
        """A content hash of the interactions (order-independent), for run tracking."""
        df = self.interactions
        if df.height == 0:
            return hashlib.sha256(b"empty").hexdigest()[:16]
        row_hash = df.hash_rows(seed=0)
        digest = hashlib.sha256()
        digest.update(str(df.height).encode())
        digest.update(str(int(row_hash.cast(pl.UInt64).sum() or 0)).encode())
        digest.update(str(int((row_hash % 1_000_003).cast(pl.UInt64).sum() or 0)).encode())
        return digest.hexdigest()[:16]


# ---------------------------------------------------------------- playlists (MPD)

PLAYLIST_SCHEMA: dict[str, pl.DataType] = {
    "pid": pl.Int64(),
    "name": pl.String(),
    "num_followers": pl.Int64(),
    "num_tracks": pl.Int64(),
    "num_edits": pl.Int64(),
    "num_artists": pl.Int64(),
    "num_albums": pl.Int64(),
    "duration_ms": pl.Int64(),
    "description": pl.String(),
    "modified_at": pl.Datetime("us", "UTC"),
    "collaborative": pl.Boolean(),
    "slice": pl.String(),
}
"""One row per playlist; ``slice`` is the file it came from. Optional fields are null where
the source has none (the public subset keeps only pid, name, the counts and the tracks)."""

TRACK_SCHEMA: dict[str, pl.DataType] = {
    "track_uri": pl.String(),
    "track_name": pl.String(),
    "artist_name": pl.String(),
    "artist_uri": pl.String(),
    "album_name": pl.String(),
    "album_uri": pl.String(),
    "duration_ms": pl.Int64(),
}
"""One row per distinct track; where a track appears several times, its first occurrence."""

PLAYLIST_TRACK_SCHEMA: dict[str, pl.DataType] = {
    "pid": pl.Int64(),
    "pos": pl.Int32(),
    "track_uri": pl.String(),
}
"""One row per (playlist, position): a track may repeat within a playlist."""


@dataclass
class PlaylistDataset:
    """Playlists read from Million Playlist Dataset slices: three tables and where they are.

    ``fingerprint`` is the SHA-256 over the input slice files' names and digests (and the
    reader's version): the same input gives the same fingerprint, for run tracking.
    ``store`` is the folder of the Parquet copy, or None for a dataset read in memory only.
    """

    name: str
    playlists: pl.DataFrame
    tracks: pl.DataFrame
    playlist_tracks: pl.DataFrame
    fingerprint: str
    store: Path | None = None

    def interactions(self) -> pl.DataFrame:
        """Playlists as users and tracks as items, weight 1 per occurrence, in INTERACTION_SCHEMA.

        The timestamp is the playlist's ``modified_at`` (null where the source has none).
        """
        stamps = self.playlists.select("pid", pl.col("modified_at").alias("timestamp"))
        frame = self.playlist_tracks.join(stamps, on="pid", how="left", maintain_order="left")
        return frame.select(
            pl.col("pid").cast(pl.String).alias("user"),
            pl.col("track_uri").alias("item"),
            pl.lit(1.0).alias("weight"),
            pl.col("timestamp").cast(INTERACTION_SCHEMA["timestamp"]),
        )

    def items(self) -> pl.DataFrame:
        """Tracks as items: name ``artist - track`` and the track's Spotify web link."""
        track_id = pl.col("track_uri").str.strip_prefix("spotify:track:")
        return self.tracks.select(
            pl.col("track_uri").alias("item"),
            pl.concat_str("artist_name", "track_name", separator=" - ").alias("name"),
            pl.when(pl.col("track_uri").str.starts_with("spotify:track:"))
            .then(pl.lit("https://open.spotify.com/track/") + track_id)
            .alias("url"),
        )
