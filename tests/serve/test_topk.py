"""`setlist recommend-all`: every user's top-k to Parquet, the same as the service's ranking."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from setlist.cli import app
from setlist.models.bundle import ModelBundle
from setlist.serve.topk import recommend_all_local, topk_rows
from tests.serve.tagged import save_tagged_bundle


@pytest.fixture(scope="module")
def hnsw_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tagged_bundle(tmp_path_factory.mktemp("topk") / "bundle", "hnsw")


def test_topk_rows_match_exact_ranking_without_heard_items(hnsw_dir: Path) -> None:
    bundle = ModelBundle.load(hnsw_dir)
    rows = np.arange(len(bundle.users))
    ids, scores = topk_rows(bundle, rows, 3)
    exact, _ = bundle.model.recommend(rows, bundle.seen[rows], k=3)
    np.testing.assert_array_equal(ids, exact)
    for r in rows:
        assert not set(ids[r].tolist()) & set(bundle.seen[r].indices.tolist())


def test_cli_writes_every_user(hnsw_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "picks.parquet"
    result = CliRunner().invoke(
        app, ["recommend-all", "--bundle", str(hnsw_dir), "--k", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pandas()
    assert list(table.columns) == ["user_id", "rank", "item_id", "score"]
    assert table["user_id"].nunique() == 6 and set(table["rank"]) == {1, 2}
    bundle = ModelBundle.load(hnsw_dir)
    direct = recommend_all_local(bundle, 2, tmp_path / "direct.parquet")
    assert direct.users == 6


@pytest.mark.skipif(
    not os.environ.get("SETLIST_RAY_TESTS"),
    reason="starting Ray takes minutes on a loaded 2-core machine; set SETLIST_RAY_TESTS=1",
)
def test_ray_backend_matches_local(hnsw_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from setlist.serve.topk import recommend_all_ray

    local = recommend_all_local(ModelBundle.load(hnsw_dir), 3, tmp_path / "local.parquet")
    ray_out = recommend_all_ray(hnsw_dir, 3, tmp_path / "ray.parquet", cpus=2)
    assert ray_out.users == local.users

    def rows(path: Path) -> list[tuple[str, int, str]]:
        t = pq.read_table(path).to_pylist()
        return sorted((str(r["user_id"]), int(r["rank"]), str(r["item_id"])) for r in t)

    assert rows(tmp_path / "local.parquet") == rows(tmp_path / "ray.parquet")
