"""`setlist top-picks` on the tiny bundle: the table, Ray equal to local, the API serving it."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from setlist.bundle import ModelBundle
from setlist.config import IndexConfig, ListenerConfig
from setlist.index.organic_store import TOP_PICKS_META
from setlist.offline.top_picks import TopPicksConfig, top_picks_local, top_picks_ray
from setlist.serve import create_app
from tests.registry.bundles import save_bundle
from tests.serve.conftest import make_settings
from tests.serve.organic import save_organic_version

CONFIG = TopPicksConfig(k_buddies=2, k_playlists=3, serendipity=0.3)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("top-picks")
    bundle_dir = save_bundle(root / "bundle")
    bundle = ModelBundle.load(bundle_dir)  # with a listener index, as trained bundles have
    bundle.build_listeners(IndexConfig(listeners=ListenerConfig(dims=4)))
    bundle.save(bundle_dir)
    organic = save_organic_version(root / "home" / "organic")
    out = root / "home" / "top_picks.parquet"
    top_picks_local(bundle_dir, organic, out, CONFIG)
    return bundle_dir, root / "home", out


def _rows(path: Path) -> list[tuple[str, str, int, str]]:
    return [
        (r["user_id"], r["kind"], r["rank"], r["target_id"])
        for r in pq.read_table(path).to_pylist()
    ]


def test_every_listener_gets_buddies_and_playlists(made: tuple[Path, Path, Path]) -> None:
    bundle_dir, _, out = made
    bundle = ModelBundle.load(bundle_dir)
    rows = _rows(out)
    users = {str(u) for u in bundle.users.ids}
    assert {u for u, kind, _, _ in rows if kind == "playlist"} == users
    for user in users:
        mine = [r for r in rows if r[0] == user]
        assert [r[2] for r in mine if r[1] == "playlist"] == [0, 1, 2]
        assert len([r for r in mine if r[1] == "buddy"]) <= 2
        assert all(r[3] != user for r in mine if r[1] == "buddy")
    meta = json.loads(pq.read_schema(out).metadata[TOP_PICKS_META])
    assert meta["k_playlists"] == 3 and meta["serendipity"] == 0.3 and meta["organic_version"]


def _assert_the_api_answers_the_table(path: Path, bundle_dir: Path, home: Path) -> None:
    """Every listener's buddies and playlists in the table are what the routes compute."""
    rows = pq.read_table(path).to_pylist()
    users = sorted({r["user_id"] for r in rows})
    settings = make_settings(home, top_picks_path=home / "absent.parquet")
    with TestClient(create_app(settings, bundle_dir)) as client:
        for user in users:
            mine = [r for r in rows if r["user_id"] == user]
            got = client.get(f"/v1/users/{user}/buddies", params={"k": CONFIG.k_buddies})
            assert got.status_code == 200, got.text
            stored = [
                (r["target_id"], json.loads(r["detail"])) for r in mine if r["kind"] == "buddy"
            ]
            answered = [
                (
                    b["user_id"],
                    {
                        "shared": [[a["item_id"], a["name"]] for a in b["shared"]],
                        "discoveries": [[a["item_id"], a["name"]] for a in b["discoveries"]],
                    },
                )
                for b in got.json()["items"]
            ]
            assert stored == answered, user
            sims = [r["score"] for r in mine if r["kind"] == "buddy"]
            assert sims == pytest.approx([b["similarity"] for b in got.json()["items"]], abs=1e-6)
            got = client.get(
                f"/v1/users/{user}/playlists",
                params={"k": CONFIG.k_playlists, "serendipity": CONFIG.serendipity},
            )
            assert got.status_code == 200, got.text
            stored = [json.loads(r["detail"]) for r in mine if r["kind"] == "playlist"]
            answered = [
                {k: p[k] for k in ("playlist_id", "name", "num_followers", "num_tracks")}
                | p["because"]
                for p in got.json()["items"]
            ]
            assert stored == answered, user


def test_the_table_is_what_the_routes_answer(made: tuple[Path, Path, Path]) -> None:
    bundle_dir, home, out = made
    assert ModelBundle.load(bundle_dir).listeners is not None  # buddies through the index
    _assert_the_api_answers_the_table(out, bundle_dir, home)


def test_without_a_listener_index_the_table_is_what_the_routes_answer(tmp_path: Path) -> None:
    bundle_dir = save_bundle(tmp_path / "bundle")  # buddies by exact search
    assert ModelBundle.load(bundle_dir).listeners is None
    organic = save_organic_version(tmp_path / "home" / "organic")
    out = tmp_path / "exact.parquet"
    top_picks_local(bundle_dir, organic, out, CONFIG)
    _assert_the_api_answers_the_table(out, bundle_dir, tmp_path / "home")


def test_the_api_serves_the_table_while_fresh_and_computes_otherwise(
    made: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    bundle_dir, home, out = made
    # Mark one stored pick so that the test can tell the table's answer from a computed one.
    table = pq.read_table(out)
    rows = table.to_pylist()
    first = next(i for i, r in enumerate(rows) if r["user_id"] == "u1" and r["kind"] == "playlist")
    detail = json.loads(rows[first]["detail"])
    detail["name"] = "from the table"
    rows[first]["detail"] = json.dumps(detail)
    marked = tmp_path / "marked.parquet"
    pq.write_table(type(table).from_pylist(rows, schema=table.schema), marked)
    for max_age, k, serendipity, stored in (
        (3600.0, 3, 0.3, True),
        (3600.0, 4, 0.3, False),  # more than the table holds
        (3600.0, 3, 0.9, False),  # another serendipity
        (1e-6, 3, 0.3, False),  # stale
    ):
        settings = make_settings(home, top_picks_path=marked, top_picks_max_age_s=max_age)
        with TestClient(create_app(settings, bundle_dir)) as client:
            got = client.get("/v1/users/u1/playlists", params={"k": k, "serendipity": serendipity})
        assert got.status_code == 200, got.text
        names = [p["name"] for p in got.json()["items"]]
        assert ("from the table" in names) is stored, (max_age, k, serendipity)


@pytest.mark.usefixtures("ray_session")
def test_ray_gives_the_same_table_as_local(made: tuple[Path, Path, Path], tmp_path: Path) -> None:
    bundle_dir, home, out = made
    organic = sorted((home / "organic").iterdir())[-1]
    result = top_picks_ray(bundle_dir, organic, tmp_path / "ray.parquet", CONFIG, cpus=2)
    assert result.users == len(ModelBundle.load(bundle_dir).users)
    assert _rows(tmp_path / "ray.parquet") == _rows(out)
    _assert_the_api_answers_the_table(tmp_path / "ray.parquet", bundle_dir, home)
    assert (
        pq.read_table(tmp_path / "ray.parquet").column("detail").to_pylist()
        == pq.read_table(out).column("detail").to_pylist()
    )
