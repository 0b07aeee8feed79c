"""The synthetic world: deterministic, Last.fm-shaped, and with structure a model can learn."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
import scipy.sparse as sp

from setlist.config import SplitConfig
from setlist.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA, Dataset
from setlist.data.split import split
from setlist.data.synthetic import PRESETS, generate_preset, generate_world
from setlist.errors import ConfigError


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return generate_preset("tiny")


def test_same_seed_same_world(tiny: Dataset) -> None:
    again = generate_preset("tiny")
    assert again.interactions.equals(tiny.interactions)
    assert again.items.equals(tiny.items)
    assert again.item_tags is not None and tiny.item_tags is not None
    assert again.item_tags.equals(tiny.item_tags)
    assert not generate_preset("tiny", seed=1).interactions.equals(tiny.interactions)


def test_shapes_and_values(tiny: Dataset) -> None:
    df = tiny.interactions
    preset = PRESETS["tiny"]
    assert df.schema == pl.Schema(INTERACTION_SCHEMA)
    assert tiny.items.schema == pl.Schema(ITEM_SCHEMA)
    assert df.n_unique(subset=["user", "item"]) == df.height  # one row per pair
    assert df.get_column("user").n_unique() == preset.n_users
    assert tiny.items.height == preset.n_artists
    assert tiny.items.get_column("item").n_unique() == preset.n_artists
    assert tiny.items.get_column("name").null_count() == 0
    assert df.get_column("item").is_in(tiny.items.get_column("item").implode()).all()
    assert df.get_column("weight").min() >= 1  # type: ignore[operator]
    stamps = df.get_column("timestamp")
    assert stamps.null_count() == 0 and tiny.has_timestamps
    start, end = datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)
    assert start <= stamps.min() and stamps.max() < end  # type: ignore[operator]


def test_without_timestamps() -> None:
    world = generate_world(50, 80, n_genres=4, mean_items_per_user=10, with_timestamps=False)
    assert world.interactions.get_column("timestamp").null_count() == world.interactions.height
    assert not world.has_timestamps


def test_tags_give_every_artist_a_genre(tiny: Dataset) -> None:
    tags = tiny.item_tags
    assert tags is not None and tags.columns == ["item", "tag", "count"]
    assert tags.get_column("item").n_unique() == PRESETS["tiny"].n_artists
    assert tags.get_column("count").min() >= 1  # type: ignore[operator]


def test_popularity_is_heavy_tailed() -> None:
    df = generate_preset("small").interactions
    listeners = df.group_by("item").len().get_column("len").sort(descending=True).to_numpy()
    top_tenth = listeners[: len(listeners) // 10].sum() / listeners.sum()
    assert top_tenth > 0.4  # a tenth of the artists draw far more than a tenth of the listens
    plays = df.get_column("weight").to_numpy()
    assert np.percentile(plays, 99) > 10 * np.median(plays)


def _matrix(df: pl.DataFrame, users: dict[str, int], items: dict[str, int]) -> sp.csr_matrix:
    rows = np.array([users[u] for u in df.get_column("user").to_list()], dtype=np.int64)
    cols = np.array([items[i] for i in df.get_column("item").to_list()], dtype=np.int64)
    data = np.ones(len(rows))
    return sp.csr_matrix((data, (rows, cols)), shape=(len(users), len(items)))


def _recall_at_10(
    scores: npt.NDArray[np.float64], train: sp.csr_matrix, test: sp.csr_matrix
) -> float:
    scores = scores.copy()
    scores[train.nonzero()] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :10]
    hits = np.take_along_axis(test.toarray(), top, axis=1).sum(axis=1)
    n = np.asarray(test.sum(axis=1)).ravel()
    has = n > 0
    return float((hits[has] / np.minimum(n[has], 10)).mean())


def test_structure_is_learnable(tiny: Dataset) -> None:
    """Item-item co-occurrence clearly beats global popularity on a held-out split."""
    parts = split(tiny.interactions, SplitConfig(0.2, seed=0))
    users = {u: i for i, u in enumerate(sorted(tiny.interactions.get_column("user").unique()))}
    items = {u: i for i, u in enumerate(sorted(tiny.interactions.get_column("item").unique()))}
    train, test = _matrix(parts.train, users, items), _matrix(parts.test, users, items)
    popularity = np.asarray(train.sum(axis=0)).ravel()
    norms = np.sqrt(popularity) + 1e-9
    similarity = (train.T @ train).toarray() / norms[:, None] / norms[None, :]
    np.fill_diagonal(similarity, 0.0)
    knn = _recall_at_10(np.asarray(train @ similarity), train, test)
    pop = _recall_at_10(np.tile(popularity, (len(users), 1)).astype(np.float64), train, test)
    assert knn > 1.5 * pop


def test_presets() -> None:
    big = PRESETS["lastfm-360k"]  # sizes only: generating it is a benchmark, not a test
    assert (big.n_users, big.n_artists) == (359_000, 292_000)
    assert 15e6 < big.n_users * big.mean_items_per_user < 21e6
    with pytest.raises(ConfigError, match="known presets: tiny"):
        generate_preset("enormous")
    with pytest.raises(ConfigError):
        generate_world(0, 10)
