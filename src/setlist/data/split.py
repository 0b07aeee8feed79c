"""Train/test splits per user: temporal where every row has a time, else seeded random.

Each user with n >= 2 items gives ``round(test_fraction * n)`` of them (at least 1, at most
n - 1) to test, so every test user is also a train user and the per-user share matches the
configuration. Users with a single item stay in train only. Splits work on unique
(user, item) rows (call :func:`setlist.data.clean.aggregate` first), so no pair can leak from
test into train.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from setlist.config import SplitConfig
from setlist.data.schema import INTERACTION_SCHEMA, conform
from setlist.errors import ConfigError

Strategy = Literal["temporal", "random", "fixed"]


@dataclass
class Split:
    """Train and test interactions (same columns) and how they were divided."""

    train: pl.DataFrame
    test: pl.DataFrame
    strategy: str


def split(df: pl.DataFrame, config: SplitConfig) -> Split:
    """Per-user split: the latest items go to test when all rows are timed, else random ones.

    Rows are first sorted by (user, item), so the outcome depends on the data and the seed,
    never on the row order the frame arrived in; the random split then draws its keys from
    ``numpy.random.Generator(seed)`` over that order. Ties in time fall back to item order.
    """
    if not 0.0 < config.test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {config.test_fraction}")
    frame = conform(df, INTERACTION_SCHEMA).sort("user", "item")
    repeated = (pl.col("user") == pl.col("user").shift()) & (
        pl.col("item") == pl.col("item").shift()
    )
    if frame.height and frame.select(repeated.any()).item():
        raise ConfigError("split needs one row per (user, item): aggregate() the frame first")
    timed = frame.height > 0 and frame.get_column("timestamp").null_count() == 0
    ranked = frame.with_columns(_u=pl.col("user").rle_id(), _r=pl.int_range(pl.len()))
    if timed:
        ordered = ranked.sort("_u", "timestamp", "_r")
    else:
        keys = np.random.default_rng(config.seed).random(frame.height)
        ordered = ranked.with_columns(_r=pl.Series(keys)).sort("_u", "_r")
    is_test = _test_mask(ordered.get_column("_u").to_numpy(), config.test_fraction)
    marked = ordered.drop("_u", "_r").with_columns(_test=pl.Series(is_test))
    return Split(
        train=marked.filter(~pl.col("_test")).drop("_test"),
        test=marked.filter(pl.col("_test")).drop("_test"),
        strategy="temporal" if timed else "random",
    )


def _test_mask(users: npt.NDArray[np.uint32], fraction: float) -> npt.NDArray[np.bool_]:
    """True for each user's last ``round(fraction * n)`` rows (users sorted, codes 0..k-1).

    Rounding is half up; at least one test row per user with n >= 2, at most n - 1.
    """
    counts = np.bincount(users) if users.size else np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    n = counts[users]
    position = np.arange(users.size) - starts[users]
    n_test = np.clip(np.floor(n * fraction + 0.5), 1, None).astype(np.int64)
    n_test = np.where(n >= 2, np.minimum(n_test, n - 1), 0)
    return np.asarray(position >= n - n_test)


def fixed_split(df: pl.DataFrame, test: pl.DataFrame) -> Split:
    """A given test set (same columns); its (user, item) pairs are removed from train."""
    frame = conform(df, INTERACTION_SCHEMA)
    test_frame = conform(test, INTERACTION_SCHEMA)
    train = frame.join(test_frame.select("user", "item").unique(), on=["user", "item"], how="anti")
    return Split(train=train, test=test_frame, strategy="fixed")
