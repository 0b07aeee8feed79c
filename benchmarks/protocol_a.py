"""Protocol A of docs/TARGETS.md on HetRec Last.fm-2K, through setlist's own evaluation.

Users with at least 5 artists keep a seeded random 20% of their artists as test, the rest train;
the full catalogue (every artist in ``user_artists.dat``) is ranked with training items excluded;
binary relevance; means over test users. Prints P@10, MAP@10, NDCG@10 and fit seconds for
popularity, setlist ALS (128 factors, log1p alpha 5, reg 0.1, 15 iterations), raw ``implicit``
ALS on the same weighted matrix (the speed reference: same work, so the ratio is setlist's
overhead) and raw ``implicit`` ALS with its defaults on raw play counts; for the last, implicit's
own ``ranking_metrics_at_k`` is printed too, as a check that setlist's metric definitions agree
with those behind the reference figures.

    .venv/bin/python benchmarks/protocol_a.py --mirror /work/shared/data

``--two-tower`` adds EASE (lambda 200, the hand-set reference) and the two-tower model, on item
ids alone and with artist tags in its item tower (``user_taggedartists.dat``: tags that at least
5 listener-artist pairs used, as a bag per artist).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: implicit runs its own threads

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from setlist.config import WeightConfig  # noqa: E402
from setlist.evaluate.protocol import MetricsReport, evaluate  # noqa: E402
from setlist.matrix import IdIndex, build_matrix, weight  # noqa: E402
from setlist.models.als import ALSRecommender  # noqa: E402
from setlist.models.base import Recommender  # noqa: E402
from setlist.models.popularity import PopularityRecommender  # noqa: E402


def split_protocol_a(
    path: Path, seed: int = 0, test_fraction: float = 0.2, min_items: int = 5
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Train and test play-count matrices over every user and every artist in the file."""
    plays = pl.read_csv(path, separator="\t", schema_overrides={"weight": pl.Float64})
    frame = plays.select(
        pl.col("userID").cast(pl.String).alias("user"),
        pl.col("artistID").cast(pl.String).alias("item"),
        pl.col("weight"),
    )
    rng = np.random.default_rng(seed)
    frame = frame.with_columns(pl.Series("draw", rng.random(frame.height)))
    n = pl.len().over("user")
    order = pl.col("draw").rank("ordinal").over("user")
    frame = frame.with_columns(is_test=(n >= min_items) & (order <= (n * test_fraction).round()))
    users = IdIndex.from_series(frame.get_column("user"))
    items = IdIndex.from_series(frame.get_column("item"))
    train = build_matrix(frame.filter(~pl.col("is_test")), users, items).csr
    test = build_matrix(frame.filter(pl.col("is_test")), users, items).csr
    return train, test


def artist_tags(mirror: Path, min_uses: int = 5) -> sp.csr_matrix:
    """Artists x tags (presence) in protocol A's item order (sorted artist ids, as
    :func:`split_protocol_a` builds them)."""
    plays = pl.read_csv(mirror / "hetrec2011-lastfm-2k" / "user_artists.dat", separator="\t")
    items = IdIndex.from_series(plays.get_column("artistID").cast(pl.String))
    tagged = pl.read_csv(mirror / "hetrec2011-lastfm-2k" / "user_taggedartists.dat", separator="\t")
    used = tagged.group_by("tagID").len().filter(pl.col("len") >= min_uses).get_column("tagID")
    tagged = tagged.filter(pl.col("tagID").is_in(used.to_list()))
    row_of = {artist: row for row, artist in enumerate(items.ids.tolist())}
    pairs = tagged.select("artistID", "tagID").unique()
    keep = [str(a) in row_of for a in pairs.get_column("artistID").to_list()]
    pairs = pairs.filter(pl.Series(keep))
    rows = np.array([row_of[str(a)] for a in pairs.get_column("artistID").to_list()], np.int64)
    _, cols = np.unique(pairs.get_column("tagID").to_numpy(), return_inverse=True)
    return sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(items), int(cols.max()) + 1)
    )


def two_tower_rows(mirror: Path, train: sp.csr_matrix, test: sp.csr_matrix) -> None:
    """EASE and the two-tower model (ids only, then with artist tags) on the same split."""
    from setlist.models.ease import EASERecommender
    from setlist.models.two_tower import TwoTowerRecommender

    ease = EASERecommender(l2=200.0)
    ease_s = timed_fit(ease, train)
    print(row("EASE lambda 200", evaluate(ease, train, test), ease_s))
    tags = artist_tags(mirror)
    for name, features in (
        ("two-tower, ids", None),
        (f"two-tower, ids + {tags.shape[1]} tags", tags),
    ):
        model = TwoTowerRecommender(seed=0)
        started = time.perf_counter()
        model.fit(train, item_features=features)
        print(row(name, evaluate(model, train, test), time.perf_counter() - started))


def implicit_als(matrix: sp.csr_matrix, **params: Any) -> tuple[ALSRecommender, float, Any]:
    """implicit's own ALS fitted on ``matrix``, wrapped for our protocol (scoring is the same dot
    product), with its fit seconds and the raw implicit model."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(random_state=0, **params)
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
    wrapped = ALSRecommender(factors=int(model.factors), regularization=float(model.regularization))
    wrapped.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
    wrapped.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    return wrapped, seconds, model


def timed_fit(model: Recommender, matrix: sp.csr_matrix) -> float:
    started = time.perf_counter()
    model.fit(matrix)
    return time.perf_counter() - started


def row(name: str, report: MetricsReport, fit_s: float) -> str:
    m = report.metrics
    return (
        f"{name:<44} {m['precision@10']:.4f} {m['map@10']:.4f} {m['ndcg@10']:.4f} "
        f"{m['recall@10']:.4f} {m['coverage@10']:.4f} {fit_s:8.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, required=True, help="folder holding hetrec2011-*")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="ALS fits timed (median shown)")
    parser.add_argument("--two-tower", action="store_true", help="add EASE and two-tower rows")
    args = parser.parse_args()
    path = args.mirror / "hetrec2011-lastfm-2k" / "user_artists.dat"
    train, test = split_protocol_a(path, seed=args.seed)
    n_eval = int((np.diff(test.indptr) > 0).sum())
    print(
        f"HetRec 2K: {train.shape[0]} users x {train.shape[1]} artists; train nnz {train.nnz}, "
        f"test nnz {test.nnz}, {n_eval} test users (seed {args.seed})"
    )
    print(f"{'model':<44} {'P@10':>6} {'MAP@10':>6} {'NDCG@10':>6} {'R@10':>6} {'cov@10':>6} fit s")

    if args.two_tower:
        two_tower_rows(args.mirror, train, test)
    pop = PopularityRecommender()
    pop_s = timed_fit(pop, train)
    print(row("popularity", evaluate(pop, train, test), pop_s))

    params = {"factors": 128, "regularization": 0.1, "iterations": 15}
    weighted = weight(train, WeightConfig(scheme="log1p", alpha=5.0))
    ours, theirs = [], []
    for _ in range(args.repeats):  # alternate the two, so drift on a noisy machine hits both
        als = ALSRecommender(seed=0, **params)
        ours.append(timed_fit(als, weighted))
        same, same_s, _ = implicit_als(weighted, alpha=1.0, **params)
        theirs.append(same_s)
    fit_s, same_s = float(np.median(ours)), float(np.median(theirs))
    print(row("setlist ALS 128f log1p a5 reg0.1 15it", evaluate(als, train, test), fit_s))
    print(row("  implicit ALS, same params, same matrix", evaluate(same, train, test), same_s))

    raw, raw_s, implicit_model = implicit_als(train)
    print(row("implicit ALS defaults (100f, raw plays)", evaluate(raw, train, test), raw_s))
    print(
        f"fit time, median of {args.repeats}: setlist ALS / raw implicit ALS on the same weighted "
        f"matrix = {fit_s / same_s:.2f}x"
    )

    from implicit.evaluation import ranking_metrics_at_k

    ref = ranking_metrics_at_k(implicit_model, train, test, K=10, show_progress=False)
    print(
        "implicit's ranking_metrics_at_k on the raw model: "
        f"P@10 {ref['precision']:.4f} (hits / sum min(10, |test|)) "
        f"MAP@10 {ref['map']:.4f} NDCG@10 {ref['ndcg']:.4f}"
    )


if __name__ == "__main__":
    main()
