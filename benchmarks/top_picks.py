"""`setlist top-picks` at Last.fm-360K scale: every listener's buddies and organic playlists.

A synthetic world (:func:`setlist.data.synthetic.generate_world` with the ``lastfm-360k``
preset's shape: 359k listeners x 292k artists, ~17.5M (listener, artist) rows, 40 genres)
becomes a popularity bundle with the listener index that serves ``GET /v1/users/{id}/buddies``
(truncated SVD, ``--dims``, + faiss HNSW, as ``setlist train`` builds it) but left at its
configured start depth of 50 candidates: on this world (genre mixtures, so many listeners are
nearly alike) recall@10 against the exact pairing stays below the 0.95 gate at any depth (0.93
with every listener a candidate, at 30k listeners), so the gate is off (``min_recall`` 0) and
the measured recall is printed. 100k synthetic playlists are drawn like human-made ones: half
of one listener's artists (so they follow the genre structure) plus 15 artists by overall
popularity, 1-4 tracks each (~38 distinct artists a playlist). The organic ranker is a LightGBM
lambdarank of ``--trees`` (200) trees fitted on random feature rows: it orders nothing
meaningful but costs what a trained one costs to predict. Then ``top_picks_local`` (and
``top_picks_ray`` with ``--ray``) answers every listener, or the first ``--sample``, and the
rate is extrapolated to all (start-up, loading the bundle and linking the playlists, included
in the sample's time). Figures only, no assertions; the load average is printed with them
(other processes share the machine's cores).

    PYTHONPATH=src:. .venv/bin/python benchmarks/top_picks.py              # 359k x 100k
    PYTHONPATH=src:. .venv/bin/python benchmarks/top_picks.py --sample 20000 --ray --work DIR
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from setlist.bundle import ModelBundle  # noqa: E402
from setlist.bundle_meta import BundleMeta  # noqa: E402
from setlist.config import IndexConfig, ListenerConfig, WeightConfig  # noqa: E402
from setlist.data.synthetic import PRESETS, generate_world  # noqa: E402
from setlist.index.organic import FEATURES, PlaylistTable, normalise  # noqa: E402
from setlist.index.organic_ranker import OrganicRanker, RankerConfig  # noqa: E402
from setlist.index.organic_store import save_organic  # noqa: E402
from setlist.matrix import build_matrix, weight  # noqa: E402
from setlist.models.popularity import PopularityRecommender  # noqa: E402
from setlist.offline.top_picks import TopPicksConfig, top_picks_local, top_picks_ray  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_bundle(users: int, artists: int, dims: int, seed: int, out: Path) -> ModelBundle:
    preset = PRESETS["lastfm-360k"]
    started = time.perf_counter()
    world = generate_world(
        users,
        artists,
        n_genres=preset.n_genres,
        mean_items_per_user=preset.mean_items_per_user,
        seed=seed,
    )
    train = build_matrix(world.interactions)
    model = PopularityRecommender()
    model.fit(weight(train.csr, WeightConfig()))
    meta = BundleMeta.decode({"model_type": "popularity", "data_fingerprint": "synthetic"})
    bundle = ModelBundle.build(model, train, world.items, meta)
    print(
        f"world: {train.csr.shape[0]:,} listeners x {train.csr.shape[1]:,} artists, "
        f"{train.csr.nnz:,} rows in {time.perf_counter() - started:.0f} s"
    )
    started = time.perf_counter()
    # min_recall 0: the depth stays at the configured start (50); see the module's docstring
    config = IndexConfig(listeners=ListenerConfig(dims=dims), min_recall=0.0, seed=seed)
    bundle.build_listeners(config)
    index = bundle.listeners
    assert index is not None
    print(
        f"listener index: {index.dims} dims, depth {index.candidates}, recall@10 "
        f"{index.recall_at_10:.3f} in {time.perf_counter() - started:.0f} s"
    )
    bundle.save(out)
    return bundle


def make_playlists(bundle: ModelBundle, n: int, seed: int) -> PlaylistTable:
    """``n`` playlists: half of one listener's artists plus 15 by popularity, 1-4 tracks each."""
    rng = np.random.default_rng(seed)
    seen = bundle.seen.tocsr()
    keys = np.array([normalise(str(name)) for name in bundle.item_names.tolist()], dtype=object)
    owners = rng.integers(0, seen.shape[0], n)
    lengths = np.diff(seen.indptr)[owners]
    pid = np.repeat(np.arange(n), lengths)
    starts = np.repeat(seen.indptr[owners], lengths)
    at = starts + np.arange(len(pid)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    keep = rng.random(len(pid)) < 0.5
    pid, cols = pid[keep], seen.indices[at[keep]]
    popularity = np.bincount(seen.indices, minlength=seen.shape[1]).astype(np.float64)
    popular = rng.choice(seen.shape[1], size=15 * n, p=popularity / popularity.sum())
    pid = np.concatenate([pid, np.repeat(np.arange(n), 15)])
    cols = np.concatenate([cols, popular])
    artists = (
        pl.DataFrame({"pid": pid.astype(str), "key": keys[cols].tolist()})
        .filter(pl.col("key") != "")
        .group_by("pid", "key")
        .agg(pl.len().cast(pl.Float64).alias("tracks"))
        .sort("pid", "key")
    )
    extra = rng.integers(0, 4, artists.height).astype(np.float64)  # 1-4 tracks an artist
    artists = artists.with_columns(pl.col("tracks") + pl.Series(extra))
    sizes = artists.group_by("pid").agg(
        pl.col("tracks").sum().alias("num_tracks"), pl.len().cast(pl.Float64).alias("num_artists")
    )
    playlists = (
        pl.DataFrame({"pid": np.arange(n).astype(str), "name": [f"mix {i}" for i in range(n)]})
        .with_columns(num_followers=pl.Series(np.floor(rng.pareto(1.5, n)).astype(np.float64)))
        .join(sizes, on="pid", how="left")
        .fill_null(0.0)
        .sort("pid")
    )
    print(
        f"playlists: {n:,}, {artists.height:,} (playlist, artist) pairs, "
        f"{artists.height / n:.1f} artists each"
    )
    return PlaylistTable(playlists, artists)


def make_organic(table: PlaylistTable, trees: int, seed: int, folder: Path) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.random((20_000, len(FEATURES)))
    y = np.round(x[:, 0] * 3 + rng.random(len(x)))
    ranker = OrganicRanker(RankerConfig(n_estimators=trees, seed=seed))
    ranker.fit(x, y, [100] * 200)
    return save_organic(folder, ranker, table, {"champion": "ranker"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=PRESETS["lastfm-360k"].n_users)
    parser.add_argument("--artists", type=int, default=PRESETS["lastfm-360k"].n_artists)
    parser.add_argument("--playlists", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=128, help="listener index SVD dimensions")
    parser.add_argument("--trees", type=int, default=200, help="the ranker's LightGBM trees")
    parser.add_argument("--sample", type=int, default=0, help="answer only the first N")
    parser.add_argument("--ray", action="store_true", help="also top_picks_ray --cpus 2")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="keep the inputs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="setlist-top-picks-") as tmp:
        work = args.work or Path(tmp)
        bundle_dir, organic_dir = work / "bundle", work / "organic"
        if (bundle_dir / "bundle.json").exists() or (bundle_dir / "bundle.npz").exists():
            bundle = ModelBundle.load(bundle_dir)
            print(f"reusing {bundle_dir}")
        else:
            bundle = make_bundle(args.users, args.artists, args.dims, args.seed, bundle_dir)
        versions = sorted(organic_dir.iterdir()) if organic_dir.is_dir() else []
        if versions:
            organic = versions[-1]
        else:
            table = make_playlists(bundle, args.playlists, args.seed)
            organic = make_organic(table, args.trees, args.seed, organic_dir)
        n = len(bundle.users)
        users = min(args.sample, n) if args.sample else n
        del bundle
        config = TopPicksConfig()
        runs = [("local", top_picks_local)] + ([("ray", top_picks_ray)] if args.ray else [])
        for name, run in runs:
            extra = {"cpus": args.cpus} if name == "ray" else {}
            result = run(
                bundle_dir, organic, work / f"{name}.parquet", config, limit=users, **extra
            )
            rate = result.users / result.seconds
            print(
                f"{name}: {result.users:,} listeners, {result.rows:,} rows in "
                f"{result.seconds:.1f} s = {rate:.0f} listeners/s; all {n:,}: "
                f"{n / rate:.0f} s (load average {load()})"
            )


if __name__ == "__main__":
    main()
