"""Fit-time overhead of setlist's ALS over a raw ``implicit`` fit of the same matrix.

Three fits of the same confidence matrix, alternated ``--repeats`` times so that drift on a
noisy machine hits all of them alike; medians are printed with the ratios:

- raw: ``implicit.cpu.als.AlternatingLeastSquares.fit`` on the already weighted matrix;
- model: ``ALSRecommender.fit`` on the same weighted matrix (setlist's wrapper alone);
- pipeline: ``setlist.pipeline.fit`` from raw play counts (weighting, peak-memory measurement
  and the wrapper: what ``setlist train`` pays).

    .venv/bin/python benchmarks/fit_overhead.py --dataset synthetic:medium --factors 64
    .venv/bin/python benchmarks/fit_overhead.py -d hetrec-lastfm-2k --mirror /work/shared/data
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: implicit runs its own threads

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from setlist.config import CleanConfig, SplitConfig, WeightConfig  # noqa: E402
from setlist.data.sources import SourceConfig  # noqa: E402
from setlist.matrix import weight  # noqa: E402
from setlist.models.als import ALSRecommender  # noqa: E402
from setlist.models.specs import ModelSpec  # noqa: E402
from setlist.pipeline import fit, ingest, prepare  # noqa: E402


def raw_fit(matrix: sp.csr_matrix, factors: int, iterations: int) -> float:
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=factors,
        regularization=0.1,
        alpha=1.0,
        iterations=iterations,
        random_state=0,
        calculate_training_loss=False,
    )
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(matrix, show_progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", "-d", default="synthetic:medium")
    parser.add_argument("--mirror", type=Path, default=None)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    sources = SourceConfig(args.mirror, Path.home() / ".setlist" / "data", False)
    dataset, report = ingest(args.dataset, sources)
    prepared = prepare(dataset, report, CleanConfig(5, 1), SplitConfig(0.2, 0))
    weights = WeightConfig(scheme="log1p", alpha=5.0)
    weighted = weight(prepared.train.csr, weights)
    params = {"factors": args.factors, "iterations": args.iterations, "regularization": 0.1}
    spec = ModelSpec("als", {**params, "seed": 0}, weights)
    print(
        f"{args.dataset}: {weighted.shape[0]:,} users x {weighted.shape[1]:,} items, "
        f"{weighted.nnz:,} non-zeros; ALS {args.factors} factors, {args.iterations} iterations"
    )
    raw_fit(weighted, args.factors, 1)  # warm-up: imports, thread pool
    raw, wrapped, piped = [], [], []
    for _ in range(args.repeats):
        raw.append(raw_fit(weighted, args.factors, args.iterations))
        started = time.perf_counter()
        ALSRecommender(seed=0, **params).fit(weighted)
        wrapped.append(time.perf_counter() - started)
        started = time.perf_counter()
        _, usage = fit(spec, prepared.train)
        piped.append(time.perf_counter() - started)
    r, w, p = (statistics.median(x) for x in (raw, wrapped, piped))
    print(f"raw implicit fit      median {r:7.2f}s  (runs: {np.round(raw, 2).tolist()})")
    print(f"setlist model.fit     median {w:7.2f}s  ratio {w / r:.3f}")
    print(f"setlist pipeline.fit  median {p:7.2f}s  ratio {p / r:.3f}  (weighting included)")
    print(f"peak RSS during the last pipeline fit: {usage.peak_rss_mb:,.0f} MiB")


if __name__ == "__main__":
    main()
