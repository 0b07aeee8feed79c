"""Stored playlist events as the organic ranker's labels: one row per (listener, playlist).

The organic ranker (:mod:`setlist.index.organic_ranker`) learns graded relevance, so feedback
becomes a grade on its own scale (0..4, the content split's labels cap at 4 too):

================================  =====
what the listener last did        label
================================  =====
``playlist_follow``               4
``playlist_play`` (no follow)     2
``playlist_skip``                 0
only shown (``playlist_impression``)  0
================================  =====

Follow and skip are decisions, so the later of them wins (a follow after a skip is a follow);
a play counts only where neither was made. The weight is the inverse of the slate's
propensity (the impression's, else the event's; none: 1), clipped at :data:`MAX_IPS` as the
counterfactual estimators clip it, so that what a ranker showed often does not outweigh what a
listener found on their own.
"""

from __future__ import annotations

import polars as pl

FOLLOW, PLAY, SKIP, SHOWN = 4.0, 2.0, 0.0, 0.0
MAX_IPS = 10.0
#: Every type that says something about a (listener, playlist) pair.
FEEDBACK_TYPES = ("playlist_follow", "playlist_play", "playlist_skip", "playlist_impression")
#: The types a listener acts by (an impression alone is not feedback to retrain on).
ACTION_TYPES = FEEDBACK_TYPES[:3]
SCHEMA = {
    "user_id": pl.String(),
    "playlist_id": pl.String(),
    "label": pl.Float64(),
    "weight": pl.Float64(),
    "ts_us": pl.Int64(),
}


def playlist_labels(events: pl.DataFrame) -> pl.DataFrame:
    """Store rows (``EventStore.frame()``) -> user_id, playlist_id, label, weight, ts_us (the
    pair's latest event), sorted by user and playlist (see the module doc)."""
    rows = events.filter(pl.col("type").is_in(FEEDBACK_TYPES) & pl.col("playlist_id").is_not_null())
    if rows.is_empty():
        return pl.DataFrame(schema=SCHEMA)
    t, p = pl.col("type"), pl.col("propensity")
    # In time order, so each "last" is the latest.
    pairs = (
        rows.sort("ts_us", "seq")
        .group_by("user_id", "playlist_id")
        .agg(
            decision=t.filter(t.is_in(["playlist_follow", "playlist_skip"])).last(),
            played=(t == "playlist_play").any(),
            p_shown=p.filter(p.is_not_null() & (t == "playlist_impression")).last(),
            p_any=p.filter(p.is_not_null()).last(),
            ts_us=pl.col("ts_us").max(),
        )
    )
    label = (
        pl.when(pl.col("decision") == "playlist_follow")
        .then(pl.lit(FOLLOW))
        .when(pl.col("decision") == "playlist_skip")
        .then(pl.lit(SKIP))
        .when(pl.col("played"))
        .then(pl.lit(PLAY))
        .otherwise(pl.lit(SHOWN))
    )
    shown = pl.coalesce("p_shown", "p_any")
    weight = pl.when(shown.is_null()).then(1.0).otherwise((1.0 / shown).clip(upper_bound=MAX_IPS))
    return (
        pairs.select(
            "user_id", "playlist_id", label.alias("label"), weight.alias("weight"), "ts_us"
        )
        .cast(SCHEMA)  # type: ignore[arg-type]
        .sort("user_id", "playlist_id")
    )


def actions_since(events: pl.DataFrame, since_us: int) -> int:
    """How many playlist actions (follow, play, skip) are newer than ``since_us``."""
    return events.filter(pl.col("type").is_in(ACTION_TYPES) & (pl.col("ts_us") > since_us)).height
