"""Artist search over the real HetRec catalogue: names typed without accents find the artist."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.data.loaders import load
from setlist.data.sources import SourceConfig
from setlist.matrix import build_matrix
from setlist.models.popularity import PopularityRecommender
from setlist.serve import create_app
from tests.serve.conftest import make_settings


@pytest.mark.integration
def test_unaccented_names_find_real_artists(mirror: Path, tmp_path: Path) -> None:
    dataset, _ = load(
        "hetrec-lastfm-2k", SourceConfig(mirror=mirror, cache_dir=tmp_path / "c", download=False)
    )
    train = build_matrix(dataset.interactions)
    model = PopularityRecommender()  # search reads names and popularity only: fit in no time
    model.fit(train.csr)
    bundle = ModelBundle.build(model, train, dataset.items, BundleMeta(model_type="popularity"))
    bundle.save(tmp_path / "bundle")
    with TestClient(create_app(make_settings(tmp_path / "home"), tmp_path / "bundle")) as client:
        for typed, name in [
            ("beyonce", "Beyoncé"),
            ("bjork", "Björk"),
            ("motorhead", "Motörhead"),
            ("SIGUR ROS", "Sigur Rós"),
        ]:
            found = client.get("/v1/catalogue/search", params={"q": typed}).json()["items"]
            assert found and found[0]["name"] == name, (typed, found[:3])
