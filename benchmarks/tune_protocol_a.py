"""Protocol A tuning run: what `setlist tune` finds on HetRec within a budget, and references.

Protocol A (docs/TARGETS.md): users with at least 5 artists, a seeded random 20% of each user's
artists as test (seed 0), the full catalogue ranked (min item users 1), binary relevance. The
study is the one `setlist tune` runs (validation split inside the training part; the winner
refitted on the whole training part and evaluated once on the test part). For comparison, the
same split is scored with EASE lambda=200 on binary input (the 0.225 reference) and with ALS 128
factors, log1p, alpha 5, reg 0.1 (the 0.185 reference), both on the full catalogue.

    .venv/bin/python benchmarks/tune_protocol_a.py --mirror /work/shared/data --budget 15m

Same as: setlist tune -d hetrec-lastfm-2k --models als,ease,knn,blend --budget 15m
--min-item-users 1 (with SETLIST_DATA_MIRROR=/work/shared/data).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: implicit runs its own threads

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from setlist.config import CleanConfig, SplitConfig, WeightConfig  # noqa: E402
from setlist.data.sources import SourceConfig  # noqa: E402
from setlist.models.specs import ModelSpec  # noqa: E402
from setlist.pipeline import ingest, prepare, train_one  # noqa: E402
from setlist.tune.budget import parse_budget  # noqa: E402
from setlist.tune.study import TuneConfig, run_study  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, required=True, help="folder holding hetrec2011-*")
    parser.add_argument("--budget", default="15m")
    parser.add_argument("--models", default="als,ease,knn,blend")
    parser.add_argument("--backend", default="optuna")
    parser.add_argument("--no-references", action="store_true")
    args = parser.parse_args()

    started = time.monotonic()
    sources = SourceConfig(args.mirror, Path.home() / ".setlist" / "data", False)
    dataset, report = ingest("hetrec-lastfm-2k", sources)
    prepared = prepare(dataset, report, CleanConfig(5, 1), SplitConfig(0.2, 0))
    print(
        f"HetRec protocol A: {prepared.train.shape[0]:,} users x {prepared.train.shape[1]:,} "
        f"artists, train {prepared.train.nnz:,} / test {prepared.test.nnz:,}"
    )
    config = TuneConfig(
        kinds=tuple(args.models.split(",")),
        budget_s=parse_budget(args.budget),
        backend=args.backend,
    )
    result = run_study(prepared, config, registry=None, say=print, started=started)
    final = result.final
    m = final.report.metrics
    complete = sum(t.state == "complete" for t in result.trials)
    print(f"\n{len(result.trials)} trials ({complete} complete) in {result.seconds:.0f}s")
    print(f"winner: {result.best_spec.kind} {result.best_spec.describe()}")
    print(
        f"TEST NDCG@10 {m['ndcg@10']:.4f}  P@10 {m['precision@10']:.4f}  MAP@10 {m['map@10']:.4f}"
        f"  (validation {result.best_value:.4f}; refit {final.usage.seconds:.1f}s)"
    )
    if args.no_references:
        return
    references = [
        ModelSpec("ease", {"l2": 200.0, "weighting": "none"}),
        ModelSpec(
            "als",
            {"factors": 128, "regularization": 0.1, "iterations": 15, "seed": 0},
            WeightConfig("log1p", 5.0),
        ),
    ]
    for spec in references:
        ref = train_one(spec, prepared)
        r = ref.report.metrics
        print(
            f"reference {spec.describe()}: NDCG@10 {r['ndcg@10']:.4f} P@10 "
            f"{r['precision@10']:.4f} MAP@10 {r['map@10']:.4f} (fit {ref.usage.seconds:.1f}s)"
        )


if __name__ == "__main__":
    main()
