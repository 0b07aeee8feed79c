"""`setlist recommend-all`: every user's top-k to Parquet, the same as the service's ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.cli import app
from setlist.offline.topk import recommend_all_local, topk_rows
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


def test_ray_backend_matches_local(hnsw_dir: Path, tmp_path: Path, ray_session: None) -> None:
    from setlist.offline.topk import recommend_all_ray

    local = recommend_all_local(ModelBundle.load(hnsw_dir), 3, tmp_path / "local.parquet")
    # Blocks of two users: three blocks over two actors.
    ray_out = recommend_all_ray(hnsw_dir, 3, tmp_path / "ray.parquet", cpus=2, batch=2)
    assert ray_out.users == local.users == 6

    def rows(path: Path) -> list[tuple[str, int, str, float]]:
        t = pq.read_table(path).to_pylist()
        return sorted(
            (str(r["user_id"]), int(r["rank"]), str(r["item_id"]), round(float(r["score"]), 5))
            for r in t
        )

    assert rows(tmp_path / "local.parquet") == rows(tmp_path / "ray.parquet")
    assert len(rows(tmp_path / "ray.parquet")) == 6 * 3


def test_cli_ray_backend_uses_the_running_ray(
    hnsw_dir: Path, tmp_path: Path, ray_session: None
) -> None:
    import ray

    out = tmp_path / "picks.parquet"
    args = ["recommend-all", "--bundle", str(hnsw_dir), "--k", "2", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--backend", "ray"])
    assert result.exit_code == 0, result.output
    assert ray.is_initialized()  # the session's Ray was reused, not shut down
    assert pq.read_table(out).num_rows == 6 * 2


def test_heard_lookup_matches_each_users_history() -> None:
    import scipy.sparse as sp

    from setlist.offline.topk import _heard

    rng = np.random.default_rng(0)
    seen = sp.random(40, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    shuffled = seen.copy()
    for r in range(40):  # the same matrix with unsorted columns within rows
        lo, hi = shuffled.indptr[r], shuffled.indptr[r + 1]
        perm = rng.permutation(hi - lo)
        shuffled.indices[lo:hi] = shuffled.indices[lo:hi][perm]
        shuffled.data[lo:hi] = shuffled.data[lo:hi][perm]
    rows = rng.choice(40, 25, replace=False)
    found = rng.integers(-1, 30, size=(25, 12))
    for matrix in (seen, shuffled):
        bundle = type("B", (), {"seen": matrix})()
        got = _heard(bundle, rows, found)  # type: ignore[arg-type]
        want = np.array(
            [
                [f in set(seen[r].indices.tolist()) for f in fr]
                for r, fr in zip(rows, found, strict=True)
            ]
        )
        np.testing.assert_array_equal(got, want)


def _factor_bundle(n_users: int, n_items: int, f: int, per_user: int) -> ModelBundle:
    """Clustered random factors and Zipf-like histories: what recommend-all meets at scale."""
    import scipy.sparse as sp

    from setlist.matrix import IdIndex
    from setlist.models.als import ALSRecommender

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((12, f))
    items = centres[rng.integers(0, 12, n_items)] + 0.7 * rng.standard_normal((n_items, f))
    items *= np.linspace(1.5, 0.5, n_items)[:, None]  # earlier items: longer, as popular ones
    users = centres[rng.integers(0, 12, n_users)] + 0.5 * rng.standard_normal((n_users, f))
    p = 1.0 / np.arange(1, n_items + 1)
    cols = [rng.choice(n_items, per_user, replace=False, p=p / p.sum()) for _ in range(n_users)]
    seen = sp.csr_matrix(
        (np.ones(n_users * per_user), (np.repeat(np.arange(n_users), per_user), np.hstack(cols))),
        shape=(n_users, n_items),
        dtype=np.float32,
    )
    model = ALSRecommender(factors=f)
    model.user_factors_, model.item_factors_ = users.astype(np.float32), items.astype(np.float32)
    ids = np.array([f"i{i}" for i in range(n_items)])
    return ModelBundle(
        model=model,
        users=IdIndex(np.array([f"u{u}" for u in range(n_users)])),
        items=IdIndex(ids),
        item_names=ids,
        item_urls=np.array([""] * n_items),
        seen=seen,
        popularity=np.asarray(seen.sum(axis=0)).ravel().astype(np.float32),
        meta=BundleMeta(model_type="als"),
    )


def test_recommend_all_reaches_its_recall_on_the_lists_it_writes(tmp_path: Path) -> None:
    from setlist.config import IndexConfig
    from setlist.offline.topk import batch_index, served_recall

    bundle = _factor_bundle(600, 3000, 16, 20)
    config = IndexConfig(ann="ivf", exact_max_items=100, min_recall=0.9, recall_queries=150)
    index = batch_index(bundle, 30, 0.9, config)
    assert (
        index is not None and index.kind == "ivf" and index.effort() < index.get_params()["nlist"]
    )
    rows = np.arange(len(bundle.users))
    ids, _ = topk_rows(bundle, rows, 30, index)
    exact, _ = bundle.model.recommend(rows, bundle.seen[rows], k=30)
    hits = sum(len(set(a[a >= 0]) & set(e[e >= 0])) for a, e in zip(ids, exact, strict=True))
    # Tuned at depth 30 + the median history, so the lists written, heard items dropped,
    # keep (about) the target recall against exact ranking over all users.
    assert hits / exact.size >= 0.88
    assert served_recall(bundle, 30, index, sample=600) == pytest.approx(hits / exact.size)
    assert not any(set(ids[r].tolist()) & set(bundle.seen[r].indices.tolist()) for r in rows)
    result = recommend_all_local(bundle, 30, tmp_path / "all.parquet")
    assert result.index == "exact" and result.recall == 1.0  # 3000 items: scored exactly
    assert pq.read_table(tmp_path / "all.parquet").num_rows == 600 * 30
