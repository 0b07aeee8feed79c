"""Catalogues: the setting that declares them, and what a bundle records about its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from setlist.bundle import ModelBundle
from setlist.catalogue import Catalogue, served_catalogues
from setlist.config import Settings
from setlist.errors import ArtifactError, ConfigError
from setlist.serve.api.app import parse_bundles
from tests.registry.bundles import save_bundle
from tests.serve.tracks import save_track_bundle


def _settings(**values: object) -> Settings:
    return Settings(mlflow_tracking_uri=None, **values)  # type: ignore[arg-type]


def test_artists_alone_by_default_from_the_model_name() -> None:
    (artists,) = served_catalogues(_settings(model_name="lastfm"))
    assert artists == Catalogue("artists", "artist", "lastfm", "https://www.last.fm/music/{name}")


def test_further_catalogues_take_their_registered_model_from_the_setting() -> None:
    found = served_catalogues(_settings(catalogues="tracks, albums=my-albums"), also=["moods"])
    assert [(c.name, c.noun, c.registered_model) for c in found] == [
        ("artists", "artist", "setlist"),  # always served, always first
        ("tracks", "track", "setlist-tracks"),
        ("albums", "album", "my-albums"),
        ("moods", "mood", "setlist-moods"),  # named by a bundle folder only
    ]


@pytest.mark.parametrize("text", ["tracks,tracks", "Tracks", "tracks=", "a b"])
def test_a_bad_catalogues_setting_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        served_catalogues(_settings(catalogues=text))
    assert caught.value.details == {"field": "catalogues", "value": text}


def test_links_fall_back_to_the_template() -> None:
    artists = served_catalogues(_settings())[0]
    assert artists.link("x", "AC/DC") == "https://www.last.fm/music/AC%2FDC"
    assert artists.link("x", "AC/DC", "https://own") == "https://own"
    assert Catalogue("tracks", "track", "m").link("t1", "One") is None


def test_bundle_folders_by_catalogue() -> None:
    assert parse_bundles(["a/b", "tracks=/t"]) == {
        "artists": Path("a/b"),
        "tracks": Path("/t"),
    }
    assert parse_bundles(["/data/run=3"]) == {"artists": Path("/data/run=3")}
    with pytest.raises(ConfigError, match="each catalogue once"):
        parse_bundles(["a", "artists=b"])


def test_a_bundle_keeps_its_catalogue_and_item_attributes(tmp_path: Path) -> None:
    loaded = ModelBundle.load(save_track_bundle(tmp_path / "tracks"))
    assert loaded.catalogue == "tracks"
    ids, artists = loaded.items.ids.tolist(), loaded.item_attributes["artist"].tolist()
    artist = dict(zip(ids, artists, strict=True))
    assert artist["t-a2"] == "a" and artist["t-z1"] == "z"
    older = ModelBundle.load(save_bundle(tmp_path / "artists"))
    assert older.catalogue is None and older.item_attributes == {}


def test_an_attribute_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    bundle = ModelBundle.load(save_track_bundle(tmp_path / "tracks"))
    bundle.item_attributes["artist"] = np.array(["a"], dtype=np.str_)
    with pytest.raises(ArtifactError, match="attribute 'artist' has 1 entries"):
        bundle.check()
