"""ModelBundle: build from a fitted model and an items frame, save, load, refuse broken bundles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import WeightConfig
from setlist.errors import ArtifactError
from setlist.matrix import InteractionMatrix, build_matrix, weight
from setlist.models.als import ALSRecommender
from setlist.models.popularity import PopularityRecommender


def train_matrix() -> InteractionMatrix:
    rows = [
        ("u1", "a1", 5.0),
        ("u1", "a2", 1.0),
        ("u2", "a2", 3.0),
        ("u2", "a3", 2.0),
        ("u3", "a1", 1.0),
        ("u3", "a2", 4.0),
        ("u3", "a4", 1.0),
    ]
    frame = pl.DataFrame(
        rows, schema={"user": pl.String, "item": pl.String, "weight": pl.Float64}, orient="row"
    )
    return build_matrix(frame)


ITEMS = pl.DataFrame(
    {
        # a4 has no metadata; a2 appears twice (the first row wins); zz is not in the catalogue.
        "item": ["a2", "a1", "a3", "a2", "zz"],
        "name": ["Second", "First", "Third", "Second (dup)", "Nobody"],
        "url": ["https://x/2", "https://x/1", None, "https://x/2b", "https://x/z"],
    }
)


@pytest.fixture
def bundle() -> ModelBundle:
    train = train_matrix()
    model = ALSRecommender(factors=4, iterations=3).fit(weight(train.csr, WeightConfig()))
    return ModelBundle.build(model, train, ITEMS, meta=BundleMeta(dataset="tiny", extra={"run": 1}))


def test_build_takes_names_and_links_from_items_frame(bundle: ModelBundle) -> None:
    assert bundle.items.ids.tolist() == ["a1", "a2", "a3", "a4"]
    assert bundle.item_names.tolist() == ["First", "Second", "Third", "a4"]
    assert bundle.item_urls.tolist() == ["https://x/1", "https://x/2", "", ""]
    np.testing.assert_array_equal(bundle.popularity, [2, 3, 1, 1])  # distinct users, not plays
    np.testing.assert_array_equal(bundle.seen.toarray() > 0, train_matrix().csr.toarray() > 0)


def test_save_load_round_trip(bundle: ModelBundle, tmp_path: Path) -> None:
    bundle.save(tmp_path / "b")
    loaded = ModelBundle.load(tmp_path / "b")
    assert loaded.users.ids.tolist() == bundle.users.ids.tolist()
    assert loaded.items.ids.tolist() == bundle.items.ids.tolist()
    assert loaded.item_names.tolist() == bundle.item_names.tolist()
    assert loaded.item_urls.tolist() == bundle.item_urls.tolist()
    np.testing.assert_array_equal(loaded.seen.toarray(), bundle.seen.toarray())
    np.testing.assert_array_equal(loaded.popularity, bundle.popularity)
    assert loaded.meta == BundleMeta(dataset="tiny", extra={"run": 1})
    rows = np.arange(3, dtype=np.int64)
    before = bundle.model.recommend(rows, bundle.seen[rows], k=4)
    after = loaded.model.recommend(rows, loaded.seen[rows], k=4)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])


def test_tampered_bundle_npz_is_refused(bundle: ModelBundle, tmp_path: Path) -> None:
    bundle.save(tmp_path / "b")
    npz = tmp_path / "b" / "bundle.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0x01
    npz.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        ModelBundle.load(tmp_path / "b")


def test_model_with_another_item_count_is_refused(bundle: ModelBundle, tmp_path: Path) -> None:
    bundle.save(tmp_path / "b")
    # A validly saved model, but of a 3-item catalogue, swapped in for the 4-item one.
    other = PopularityRecommender().fit(train_matrix().csr[:, :3])
    other.save(tmp_path / "b" / "model")
    with pytest.raises(ArtifactError, match="items"):
        ModelBundle.load(tmp_path / "b")


PLAYLISTS = pl.DataFrame(
    {
        "pid": ["u1", "u2", "u3", "p9"],  # p9: a playlist kept for lookup, not trained on
        "name": ["Road trip", "Chill", "Road", "Other"],
        "num_followers": [3, 1, 1, 7],
        "tracks": [["a1", "a2"], ["a2", "a3"], ["a1", "a2", "a4"], ["a4"]],
    },
    schema={
        "pid": pl.String,
        "name": pl.String,
        "num_followers": pl.Int64,
        "tracks": pl.List(pl.String),
    },
)


def test_a_playlist_catalogue_keeps_its_playlists_and_checks_them(tmp_path: Path) -> None:
    train = train_matrix()
    model = PopularityRecommender().fit(train.csr)
    bundle = ModelBundle.build(model, train, ITEMS, meta=BundleMeta(), playlists=PLAYLISTS)
    bundle.save(tmp_path / "b")
    loaded = ModelBundle.load(tmp_path / "b")
    assert loaded.playlists is not None
    assert loaded.playlists.equals(PLAYLISTS)
    (tmp_path / "b" / "playlists.parquet").write_bytes(b"changed")
    with pytest.raises(ArtifactError, match="playlists.parquet: SHA-256 does not match"):
        ModelBundle.load(tmp_path / "b")
    with pytest.raises(ArtifactError, match="more than once"):
        ModelBundle.build(
            model,
            train,
            ITEMS,
            meta=BundleMeta(),
            playlists=pl.concat([PLAYLISTS, PLAYLISTS.head(1)]),
        )
    with pytest.raises(ArtifactError, match="lacks column 'tracks'"):
        ModelBundle.build(
            model, train, ITEMS, meta=BundleMeta(), playlists=PLAYLISTS.drop("tracks")
        )


def test_a_bundle_without_playlists_loads_none(bundle: ModelBundle, tmp_path: Path) -> None:
    bundle.save(tmp_path / "b")
    assert not (tmp_path / "b" / "playlists.parquet").exists()
    assert ModelBundle.load(tmp_path / "b").playlists is None
