"""The whole run at Last.fm-360K scale: ingest -> validate -> train ALS -> evaluate.

A synthetic world of the ``lastfm-360k`` preset (359k users, 292k artists, ~17.5M rows; see
``setlist.data.synthetic``) is written to a Parquet file first (setup, not timed). Then, timed
stage by stage with the process's peak resident memory (VmHWM, reset at each stage start):

1. ingest + validate: the file is read and every row checked, as for any user file;
2. clean + split: aggregate, k-core (5 items per user, 1 user per item: the full catalogue),
   seeded random 20% per user as test, CSR matrices;
3. train: ALS, 64 factors, 15 iterations, log1p confidences (alpha 5), through the pipeline;
4. evaluate: full-catalogue ranking for 10,000 seeded random test users (as the cmfrec
   Last.fm-360K benchmark does), P/R/MAP/NDCG@10.

With ``--reference`` a raw ``implicit`` fit of the same weighted matrix is timed too, for the
fit-time ratio measured in the same run. Goal (docs/TARGETS.md): under 5 minutes and under 4 GB.

With ``--etl-rows N`` the ETL to Parquet shards (``setlist data etl``) is timed on a 360K-shaped
TSV of N rows (40-character user hashes, an MBID for two artists in three, names, plays; 292k
artists of Zipf-like popularity), locally and on a local Ray (``--cpus``), and with
``--mpd-slices N`` (needs ``SETLIST_DATA_MIRROR``) on N full-size MPD slices synthesised as
``benchmarks/mpd_reader.py`` does; both paths' rates are printed and their shards compared.
``--etl-only`` skips the training run.

    .venv/bin/python benchmarks/scale_360k.py --reference
    .venv/bin/python benchmarks/scale_360k.py --etl-only --etl-rows 3000000 --mpd-slices 4
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: implicit runs its own threads

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from setlist.config import CleanConfig, SplitConfig, WeightConfig  # noqa: E402
from setlist.data.sources import SourceConfig  # noqa: E402
from setlist.data.synthetic import generate_preset  # noqa: E402
from setlist.evaluate.protocol import evaluate  # noqa: E402
from setlist.matrix import weight  # noqa: E402
from setlist.models.specs import ModelSpec  # noqa: E402
from setlist.pipeline import fit, ingest, measure, prepare  # noqa: E402


def stage(name: str, results: list[tuple[str, float, float]], work: Callable[[], Any]) -> Any:
    with measure() as usage:
        out = work()
    results.append((name, usage.seconds, usage.peak_rss_mb))
    print(
        f"  {name:<28} {usage.seconds:8.1f}s   peak RSS {usage.peak_rss_mb:8,.0f} MiB", flush=True
    )
    return out


def sample_test(test: sp.csr_matrix, n: int, seed: int) -> sp.csr_matrix:
    rows = np.flatnonzero(np.diff(test.indptr))
    keep = np.random.default_rng(seed).choice(rows, min(n, len(rows)), replace=False)
    mask = np.zeros(test.shape[0], dtype=np.float32)
    mask[keep] = 1.0
    return sp.csr_matrix(sp.diags(mask) @ test)


def write_360k_tsv(path: Path, rows: int, seed: int = 0) -> None:
    """A header-less TSV in Last.fm-360K's shape: user hash, MBID (or empty), name, plays."""
    import polars as pl

    rng = np.random.default_rng(seed)
    artists = np.minimum((rng.pareto(1.2, rows) * 200).astype(np.int64), 291_999)
    frame = pl.DataFrame(
        {
            "user": rng.integers(0, 359_347, rows),
            "artist": artists,
            "plays": rng.integers(1, 2_000, rows),
        }
    ).select(
        pl.col("user").cast(pl.String).str.pad_start(40, "0"),
        pl.when(pl.col("artist") % 3 != 0)
        .then(pl.format("{}-71a5-4011-9441-d0b5e4122711", pl.col("artist").cast(pl.String)
                        .str.pad_start(8, "0")))
        .otherwise(pl.lit(""))
        .alias("mbid"),
        pl.format("artist {}", pl.col("artist")).alias("name"),
        pl.col("plays"),
    )  # fmt: skip
    frame.write_csv(path, separator="\t", include_header=False, quote_style="never")


def etl_rates(folder: Path, rows: int, slices: int, cpus: int) -> None:
    """Both ETL paths on the same input: rates printed, shards compared."""
    import polars as pl

    from setlist.data.etl import etl

    def same(a: Path, b: Path) -> bool:
        files = sorted(p.relative_to(a) for p in a.rglob("*.parquet"))
        return files == sorted(p.relative_to(b) for p in b.rglob("*.parquet")) and all(
            pl.read_parquet(a / f).equals(pl.read_parquet(b / f)) for f in files
        )

    inputs: list[tuple[str, Path, str]] = []
    if rows:
        tsv = folder / "usersha1-artmbid-artname-plays.tsv"
        write_360k_tsv(tsv, rows)
        inputs.append(("360K TSV", tsv, "rows"))
    mirror = os.environ.get("SETLIST_DATA_MIRROR")
    if slices and mirror:
        from mpd_reader import synthesise

        (folder / "mpd").mkdir()
        synthesise(Path(mirror), folder / "mpd", slices)
        inputs.append(("MPD slices", folder / "mpd", "slices"))
    elif slices:
        print("MPD: SETLIST_DATA_MIRROR is not set; no slices to synthesise")
    from setlist.data.ray_cluster import start_ray

    started = time.perf_counter()
    start_ray(None, cpus)  # once, as a cluster would be: its start is not the ETL's rate
    print(f"  local Ray with {cpus} CPUs started in {time.perf_counter() - started:.1f}s")
    for name, path, unit in inputs:
        size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.iterdir()))
        rates = {}
        # Ray twice: its first run starts the worker processes (each imports setlist), the
        # second finds them started, as a long job on a cluster mostly does.
        for backend, label in (("local", "local"), ("ray", "ray (cold)"), ("ray", "ray (warm)")):
            out = folder / f"out-{path.stem}-{backend}"
            result = etl(str(path), out, backend=backend, cpus=cpus)  # type: ignore[arg-type]
            amount = result.rows_read if unit == "rows" else result.parts
            rates[label] = amount / result.seconds
            print(
                f"  etl {name} ({size / 2**20:,.0f} MiB, {result.parts} parts) {label:<10}: "
                f"{result.seconds:7.1f}s  {rates[label]:12,.2f} {unit}/s",
                flush=True,
            )
        equal = same(folder / f"out-{path.stem}-local", folder / f"out-{path.stem}-ray")
        print(
            f"  etl {name}: ray / local = {rates['ray (cold)'] / rates['local']:.3f} cold, "
            f"{rates['ray (warm)'] / rates['local']:.3f} warm; same shards: {equal}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lastfm-360k")
    parser.add_argument("--users", type=int, default=10_000, help="test users evaluated")
    parser.add_argument("--reference", action="store_true", help="also time raw implicit")
    parser.add_argument("--etl-rows", type=int, default=0, help="time the ETL on this many rows")
    parser.add_argument("--mpd-slices", type=int, default=0, help="and on this many MPD slices")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--etl-only", action="store_true", help="skip the training run")
    args = parser.parse_args()

    if args.etl_rows or args.mpd_slices:
        with tempfile.TemporaryDirectory(prefix="setlist-etl-") as tmp:
            etl_rates(Path(tmp), args.etl_rows, args.mpd_slices, args.cpus)
    if args.etl_only:
        return

    with tempfile.TemporaryDirectory(prefix="setlist-360k-") as tmp:
        path = Path(tmp) / "plays.parquet"
        started = time.perf_counter()
        world = generate_preset(args.preset, seed=0)
        world.interactions.select("user", "item", "weight").write_parquet(path)
        rows = world.interactions.height
        del world
        setup_s = time.perf_counter() - started
        print(f"setup: {rows:,} rows written to {path.name} in {setup_s:.0f}s")

        results: list[tuple[str, float, float]] = []
        sources = SourceConfig(None, Path(tmp) / "cache", False)
        weights = WeightConfig(scheme="log1p", alpha=5.0)
        spec = ModelSpec("als", {"factors": 64, "iterations": 15, "seed": 0}, weights)
        loaded = stage("ingest + validate", results, lambda: ingest(str(path), sources))
        prepared = stage(
            "clean + split + matrices",
            results,
            lambda: prepare(*loaded, CleanConfig(5, 1), SplitConfig(0.2, 0)),
        )
        loaded = None  # the raw frame is no longer needed
        print(
            f"  matrix: {prepared.train.shape[0]:,} users x {prepared.train.shape[1]:,} items, "
            f"train {prepared.train.nnz:,} / test {prepared.test.nnz:,}"
        )
        model, usage = stage("train ALS 64f 15it", results, lambda: fit(spec, prepared.train))
        test = sample_test(prepared.test.csr, args.users, 0)
        train = weight(prepared.train.csr, weights)
        metrics = stage(
            f"evaluate ({args.users:,} users)", results, lambda: evaluate(model, train, test)
        )
        total = sum(s for _, s, _ in results)
        peak = max(p for _, _, p in results)
        m = metrics.metrics
        print(
            f"P@10 {m['precision@10']:.4f}  MAP@10 {m['map@10']:.4f}  NDCG@10 {m['ndcg@10']:.4f}"
            f"  over {metrics.n_users:,} users"
        )
        print(f"TOTAL ingest->evaluate: {total:.1f}s wall, peak RSS {peak:,.0f} MiB")
        if args.reference:
            from fit_overhead import raw_fit

            raw = raw_fit(train, 64, 15)
            print(
                f"raw implicit fit of the same matrix: {raw:.1f}s; setlist train stage / raw = "
                f"{usage.seconds / raw:.3f}"
            )


if __name__ == "__main__":
    main()
