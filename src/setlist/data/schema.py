"""The shapes every loader returns: an interactions frame and a :class:`Dataset`.

Interactions are a polars frame with exactly :data:`INTERACTION_SCHEMA`: one row per
(user, item) event or aggregate, ``weight`` the play count (1.0 where the source has none),
``timestamp`` in UTC or null where the source has none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

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
