"""The playlist routes over the real MPD subset (2,622 playlists): continue, read, search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from setlist.bundle import PLAYLIST_COLUMNS, ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.data.playlists import read_playlists
from setlist.matrix import build_matrix
from setlist.models.als import ALSRecommender
from setlist.serve import create_app
from tests.serve.conftest import make_settings


@pytest.mark.integration
def test_continue_a_real_playlist(mirror: Path, tmp_path: Path) -> None:
    ds, _ = read_playlists(mirror / "spotify-mpd-subset")
    train = build_matrix(ds.interactions())
    # ALS: seconds to fit here (item-kNN over 104k tracks takes half a minute), and it explains.
    model = ALSRecommender(factors=32, iterations=5, seed=0, threads=1)
    model.fit((train.csr > 0).astype(np.float32))
    ordered = (
        ds.playlist_tracks.sort("pid", "pos")
        .group_by("pid", maintain_order=True)
        .agg(pl.col("track_uri").alias("tracks"))
    )
    playlists = (
        ds.playlists.select("pid", "name", "num_followers")
        .join(ordered, on="pid", how="left")
        .select(
            pl.col("pid").cast(pl.String),
            pl.col("name").fill_null(""),
            pl.col("num_followers").cast(pl.Int64).fill_null(0),
            pl.col("tracks").fill_null([]),
        )
    )
    bundle = ModelBundle.build(
        model,
        train,
        ds.items(),
        BundleMeta(model_type="als", catalogue="tracks"),
        playlists=playlists.cast(PLAYLIST_COLUMNS),  # type: ignore[arg-type]
    )
    artist = dict(
        zip(ds.tracks["track_uri"].to_list(), ds.tracks["artist_name"].to_list(), strict=True)
    )
    bundle.item_attributes["artist"] = np.array(
        [artist.get(str(t), "") for t in bundle.items.ids], dtype=np.str_
    )
    bundle.save(tmp_path / "tracks")
    with TestClient(
        create_app(make_settings(tmp_path / "home"), {"tracks": tmp_path / "tracks"})
    ) as client:
        pid = str(playlists["pid"][0])
        known = client.get(f"/v1/playlists/{pid}").json()
        seeds = [t["item_id"] for t in known["tracks"][:5]]
        body = client.post(
            "/v1/playlists/continue", json={"name": known["name"], "tracks": seeds, "k": 50}
        ).json()
        assert body["strategy"] == "seeds_title" and body["unknown_tracks"] == []
        ids = [i["item_id"] for i in body["items"]]
        assert len(ids) == len(set(ids)) == 50 and not set(seeds) & set(ids)
        seeded = [r for i in body["items"] for r in i["because"] if r["kind"] == "seed"]
        assert seeded and {r["item_id"] for r in seeded} <= set(seeds)
        first = known["tracks"][0]
        found = client.get("/v1/tracks/search", params={"q": first["artist"], "limit": 100}).json()[
            "items"
        ]
        assert first["item_id"] in {i["item_id"] for i in found}
