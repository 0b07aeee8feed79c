"""Stored events as training data: ``setlist train --with-events``.

Each event becomes a weight on its (user, item) pair, in plays, by
:class:`setlist.events.weights.FeedbackWeights` (listen +1, like +5, playlist_add +3, skip -0.5,
a listen under 30 s counts as a skip; impressions count 0). The weights are added to the base
dataset's play counts; then:

- a pair with any ``dislike`` is removed altogether (from the base data too): a negative,
- a pair whose total is not positive (skipped more than heard) is dropped: a down-weight,
- everything else is a positive with the summed weight, timestamp = first time heard.

New users and items enter the catalogue like any other rows (and face the same k-core filter).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from setlist.data.clean import aggregate
from setlist.data.schema import INTERACTION_SCHEMA, Dataset, conform
from setlist.events.weights import FeedbackWeights


@dataclass(frozen=True)
class MergeReport:
    events: int
    weighted: int  # events with a non-zero weight (impressions and the like are not)
    pairs_added: int  # (user, item) pairs the base data did not have
    pairs_disliked: int
    pairs_dropped: int  # total weight not positive after adding skips
    rows_before: int
    rows_after: int


def event_weights(events: pl.DataFrame, weights: FeedbackWeights) -> pl.DataFrame:
    """Store rows (``EventStore.frame()``) -> user, item, weight, timestamp, disliked."""
    t, play = pl.col("type"), pl.col("play_ms")
    short = (t == "listen") & play.is_not_null() & (play < weights.short_listen_ms)
    weight = (
        pl.when(short)
        .then(weights.skip)
        .when(t == "listen")
        .then(weights.listen)
        .when(t == "like")
        .then(weights.like)
        .when(t == "playlist_add")
        .then(weights.playlist_add)
        .when(t == "skip")
        .then(weights.skip)
        .otherwise(0.0)
    )
    return events.select(
        user=pl.col("user_id"),
        item=pl.col("item_id"),
        weight=weight.cast(pl.Float64),
        timestamp=pl.col("ts_us").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        disliked=t == "dislike",
    )


def merge_events(
    dataset: Dataset, events: pl.DataFrame, weights: FeedbackWeights | None = None
) -> tuple[Dataset, MergeReport]:
    """The dataset with the stored events folded in (see the module docstring)."""
    weighted = event_weights(events, weights or FeedbackWeights())
    disliked = weighted.filter(pl.col("disliked")).select("user", "item").unique()
    added = conform(weighted.filter(pl.col("weight") != 0.0), INTERACTION_SCHEMA)
    base = aggregate(dataset.interactions)
    merged = aggregate(pl.concat([base, added]))
    kept = merged.join(disliked, on=["user", "item"], how="anti")
    positive = kept.filter(pl.col("weight") > 0.0)
    new_pairs = (
        added.select("user", "item")
        .unique()
        .join(base.select("user", "item"), on=["user", "item"], how="anti")
    )
    report = MergeReport(
        events=events.height,
        weighted=added.height,
        pairs_added=new_pairs.height,
        pairs_disliked=merged.height - kept.height,
        pairs_dropped=kept.height - positive.height,
        rows_before=base.height,
        rows_after=positive.height,
    )
    merged_dataset = Dataset(f"{dataset.name}+events", positive, dataset.items, dataset.item_tags)
    return merged_dataset, report
