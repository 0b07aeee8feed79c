"""Serving benchmark: the real service under wrk on loopback, the index, and recommend-all.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/serving.py            # full size
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/serving.py --users 20000 --items 20000

Builds a synthetic bundle directly (random factors with taste clusters, a decaying spectrum and
item norms growing with popularity, as trained factor models have; a Zipf-like history per user),
starts ``uvicorn`` on 127.0.0.1 in a subprocess serving it plus a bare endpoint in the same
process, and drives both with ``wrk`` (``apt-get install -y wrk``). Prints: throughput of
``/v1/users/{id}/recommendations`` as a ratio of the bare endpoint, p50/p99 latency at half of
saturation (paced with wrk's ``delay()``), the index's queries/s and recall@10 against exact
search, and ``recommend-all`` top-100 for a 64-factor model of the same users. No figure is
asserted: the goals are printed beside the measurements.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from setlist.config import IndexConfig  # noqa: E402
from setlist.index import ExactIndex, build_index, recall_at_k, set_search_threads  # noqa: E402
from setlist.matrix import IdIndex  # noqa: E402
from setlist.models.als import ALSRecommender  # noqa: E402
from setlist.models.bundle import ModelBundle  # noqa: E402

LUA_USERS = """
local users = {}
for line in io.lines("%s") do users[#users + 1] = line end
math.randomseed(%d)
request = function()
  return wrk.format("GET", "/v1/users/" .. users[math.random(#users)] .. "/recommendations?k=10")
end
"""
LUA_PACE = """
local rate_ms = %f
delay = function()
  return -math.log(1 - math.random()) * rate_ms
end
"""


def synthetic_factors(n_users: int, n_items: int, f: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n_clusters = 200
    spectrum = (np.arange(1, f + 1) ** -0.5).astype(np.float32)
    centres = (rng.standard_normal((n_clusters, f)) * spectrum).astype(np.float32)
    labels = rng.integers(0, n_clusters, n_items)
    dirs = centres[labels] + 0.6 * (rng.standard_normal((n_items, f)) * spectrum).astype(np.float32)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    listeners = np.maximum(1.0, 2e5 * (rng.permutation(n_items) + 1.0) ** -0.9)
    norms = 0.05 + 0.3 * np.log1p(listeners) / np.log1p(listeners.max())
    items = np.ascontiguousarray(dirs * norms[:, None], dtype=np.float32)
    users = np.empty((n_users, f), dtype=np.float32)
    for start in range(0, n_users, 50_000):
        stop = min(start + 50_000, n_users)
        mix = centres[rng.integers(0, n_clusters, (stop - start, 3))].mean(axis=1)
        noise = 0.5 * rng.standard_normal((stop - start, f)) * spectrum
        users[start:stop] = 10.0 * (mix + noise)
    return users, items, listeners.astype(np.float32)


def synthetic_bundle(
    n_users: int, n_items: int, f: int, per_user: int, seed: int, index: IndexConfig | None
) -> ModelBundle:
    users, items, listeners = synthetic_factors(n_users, n_items, f, seed)
    rng = np.random.default_rng(seed + 1)
    p = listeners / listeners.sum()
    counts = np.clip(rng.poisson(per_user, n_users), 1, 10 * per_user)
    cols = rng.choice(n_items, size=int(counts.sum()), p=p)
    rows = np.repeat(np.arange(n_users), counts)
    plays = rng.integers(1, 50, len(cols)).astype(np.float32)
    seen = sp.csr_matrix((plays, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)
    seen.sum_duplicates()
    model = ALSRecommender(factors=f)
    model.user_factors_, model.item_factors_ = users, items
    ids = np.array([f"artist_{i}" for i in range(n_items)])
    bundle = ModelBundle(
        model=model,
        users=IdIndex(np.array([f"user_{u}" for u in range(n_users)])),
        items=IdIndex(ids),
        item_names=ids,
        item_urls=np.array([""] * n_items),
        seen=seen,
        popularity=np.asarray((seen > 0).sum(axis=0), dtype=np.float32).ravel(),
        meta={"model_type": "als", "version": "bench"},
    )
    if index is not None:
        started = time.perf_counter()
        bundle.index = build_index(items, users, index)
        print(f"  index {bundle.index.kind} built in {time.perf_counter() - started:.1f} s")
    return bundle


def index_figures(bundle: ModelBundle, n_queries: int = 2000) -> tuple[float, float]:
    """Single-query queries/s (one thread, as a request does) and recall@10 vs exact."""
    assert bundle.index is not None
    set_search_threads(1)
    users = bundle.model.user_factors_  # type: ignore[attr-defined]
    rng = np.random.default_rng(7)
    queries = users[rng.choice(len(users), n_queries, replace=False)]
    started = time.perf_counter()
    found = np.vstack([bundle.index.search(q[None, :], 10)[0] for q in queries])
    qps = n_queries / (time.perf_counter() - started)
    truth = ExactIndex(bundle.model.item_factors_).search(queries, 10)[0]  # type: ignore[attr-defined]
    return qps, recall_at_k(found, truth)


def make_app(bundle_dir: str) -> object:
    """The service over the bundle, plus a bare endpoint in the same app (the reference)."""
    from setlist.config import Settings
    from setlist.serve import create_app

    home = Path(tempfile.mkdtemp(prefix="setlist-bench-home-"))
    settings = Settings(home=home, download=False, swap_interval_s=0)
    app = create_app(settings, Path(bundle_dir))

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(bundle_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "SETLIST_BENCH_BUNDLE": str(bundle_dir)}
    cmd = [
        sys.executable, "-m", "uvicorn", "benchmarks.serving:bench_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parents[1])
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            out = subprocess.run(
                ["curl", "-sf", f"http://127.0.0.1:{port}/ready"], capture_output=True
            )
            if out.returncode == 0:
                return proc
        except OSError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("the service did not become ready")


def bench_app() -> object:
    return make_app(os.environ["SETLIST_BENCH_BUNDLE"])


def wrk(url: str, seconds: int, conns: int, script: Path | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
            figures[f"p{pct}_ms"] = float(m.group(1)) * scale
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    figures["errors"] = float(non2xx.group(1)) if non2xx else 0.0
    return figures


def http_figures(bundle_dir: Path, n_users: int, seconds: int, work: Path) -> None:
    port = 18000 + os.getpid() % 1000
    users_file = work / "users.txt"
    rng = np.random.default_rng(3)
    users_file.write_text(
        "\n".join(f"user_{u}" for u in rng.choice(n_users, min(n_users, 20000), replace=False))
    )
    sat = work / "sat.lua"
    sat.write_text(LUA_USERS % (users_file, 1))
    proc = serve(bundle_dir, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wrk(f"{base}/bench/bare", 3, 16)  # warm-up
        wrk(base, 3, 16, sat)
        bare = wrk(f"{base}/bench/bare", seconds, 32)
        recs = wrk(base, seconds, 32, sat)
        conns = 8
        paced = work / "paced.lua"
        paced.write_text(
            LUA_USERS % (users_file, 2) + LUA_PACE % (1000.0 * conns / (recs["rps"] / 2))
        )
        half = wrk(base, seconds, conns, paced)
    finally:
        proc.terminate()
        proc.wait(30)
    ratio = recs["rps"] / bare["rps"]
    print(f"  bare endpoint:            {bare['rps']:,.0f} req/s")
    print(f"  /recommendations:         {recs['rps']:,.0f} req/s  (non-2xx: {recs['errors']:.0f})")
    print(f"  ratio to bare:            {ratio:.2f}   (goal >= 0.4 and >= 2,000 req/s)")
    print(
        f"  at half saturation ({half['rps']:,.0f} req/s): p50 {half.get('p50_ms', 0):.2f} ms,"
        f" p99 {half.get('p99_ms', 0):.2f} ms   (goal p99 < 20 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=359_000)
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument("--factors", type=int, default=128)
    parser.add_argument("--per-user", type=int, default=40)
    parser.add_argument("--ann", choices=["hnsw", "ivf"], default="hnsw")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-recommend-all", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="setlist-bench-"))
    try:
        config = IndexConfig(kind=args.ann, recall_queries=300)
        print(f"serving: {args.users:,} users x {args.items:,} items x {args.factors} factors")
        bundle = synthetic_bundle(args.users, args.items, args.factors, args.per_user, 0, config)
        qps, recall = index_figures(bundle)
        print(f"  index queries/s (1 thread): {qps:,.0f}; recall@10 {recall:.4f}"
              f" (at build: {bundle.index.recall_at_10:.4f}, effort {bundle.index.effort()})")  # type: ignore[union-attr]  # fmt: skip
        if not args.skip_http:
            bundle.save(work / "bundle")
            del bundle
            http_figures(work / "bundle", args.users, args.seconds, work)
        else:
            del bundle
        if not args.skip_recommend_all:
            from setlist.serve.topk import recommend_all_local

            print(f"recommend-all: {args.users:,} users x {args.items:,} items x 64 factors, k=100")
            bundle64 = synthetic_bundle(args.users, args.items, 64, args.per_user, 1, config)
            result = recommend_all_local(bundle64, 100, work / "picks.parquet", threads=2)
            print(f"  recommend-all top-100: {result.seconds:.1f} s for {result.users:,} users"
                  f" ({result.users / result.seconds:,.0f} users/s; goal < 120 s)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
