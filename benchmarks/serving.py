"""Serving benchmark: the real service under wrk on loopback, the index, and recommend-all.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/serving.py            # full size
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/serving.py --users 50000 --items 50000

Builds a synthetic bundle directly (random factors with taste clusters, a decaying spectrum and
item norms growing with popularity, as trained factor models have; a Zipf-like history per user),
starts ``uvicorn`` on 127.0.0.1 in a subprocess (``--workers`` processes, each on its own
``SO_REUSEPORT`` socket, Prometheus in multiprocess mode, as ``setlist serve --workers`` runs them)
serving it plus a bare endpoint in the same processes, and drives both with ``wrk`` (``apt-get
install -y wrk``). Prints: throughput of ``/v1/users/{id}/recommendations`` as a ratio of the bare
endpoint (each pair measured back to back, ``--repeat`` times) with the server's CPU time per
request, p50/p99 latency at half of saturation (paced with wrk's ``delay()``), an overload run
(arrivals at three times the saturated rate: statuses, latency by status, memory before and after),
the index's queries/s, recall@10 and recall of the served lists (heard items dropped), and
``recommend-all`` top-100 for a 64-factor model of the same users beside ``implicit``'s own loop on
a sample of them. No figure is asserted: the goals are printed beside the measurements, with the
load average of the machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from setlist.bundle import ModelBundle  # noqa: E402
from setlist.bundle_meta import BundleMeta  # noqa: E402
from setlist.config import IndexConfig  # noqa: E402
from setlist.index import ExactIndex, build_index, recall_at_k, set_search_threads  # noqa: E402
from setlist.matrix import IdIndex  # noqa: E402
from setlist.models.als import ALSRecommender  # noqa: E402

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
LUA_STATUSES = """
counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) counts = {} end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("counts")) do io.write(string.format("status %d %d\\n", s, n)) end
  end
end
"""


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


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
        meta=BundleMeta(model_type="als", version="bench"),
    )
    if index is not None:
        started = time.perf_counter()
        bundle.index = build_index(items, users, index)
        print(f"  index {bundle.index.kind} built in {time.perf_counter() - started:.1f} s")
    return bundle


def index_figures(bundle: ModelBundle, n_queries: int = 2000) -> tuple[float, float, float]:
    """Single-query queries/s (one thread, as a request does), recall@10 vs exact, and the
    recall@10 of what is served: the top 10 unheard items, fetched as the service fetches."""
    assert bundle.index is not None
    set_search_threads(1)
    users = bundle.model.user_factors_  # type: ignore[attr-defined]
    items = bundle.model.item_factors_  # type: ignore[attr-defined]
    rng = np.random.default_rng(7)
    sample = rng.choice(len(users), n_queries, replace=False)
    queries = users[sample]
    started = time.perf_counter()
    found = np.vstack([bundle.index.search_one(q, 10)[0][None, :] for q in queries])
    qps = n_queries / (time.perf_counter() - started)
    truth = ExactIndex(items).search(queries, 10)[0]
    served, exact = [], []
    for row, q in zip(sample[:500].tolist(), queries[:500], strict=True):
        heard = bundle.seen.indices[bundle.seen.indptr[row] : bundle.seen.indptr[row + 1]]
        ids, _ = bundle.index.search_one(q, 10 + len(heard))
        served.append(ids[~np.isin(ids, heard)][:10])
        dense = items @ q
        dense[heard] = -np.inf
        exact.append(np.argsort(-dense)[:10])
    return qps, recall_at_k(found, truth), recall_at_k(np.vstack(served), np.vstack(exact))


def make_app(bundle_dir: str) -> object:
    """The service over the bundle, plus a bare endpoint in the same app (the reference)."""
    from setlist.config import Settings
    from setlist.serve import create_app

    home = Path(tempfile.mkdtemp(prefix="setlist-bench-home-"))
    settings = Settings(home=home, download=False, swap_interval_s=0)  # SETLIST_* env applies
    app = create_app(settings, Path(bundle_dir))

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app


def bench_app() -> object:
    return make_app(os.environ["SETLIST_BENCH_BUNDLE"])


def serve(bundle_dir: Path, port: int, workers: int, work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "SETLIST_BENCH_BUNDLE": str(bundle_dir)}
    if workers > 1:  # as `setlist serve --workers N`: one scrape adds up every worker
        metrics_dir = work / "metrics"
        metrics_dir.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # As `setlist serve --workers N` runs them: one SO_REUSEPORT socket per worker.
    cmd = [sys.executable, "-m", "benchmarks.serving", "--serve-port", str(port),
           "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parents[1])
    deadline = time.time() + 900
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            # Every worker loads the bundle: wait until a run of readiness checks all pass.
            if all(_ready(port) for _ in range(4 * workers)):
                return proc
        except OSError:
            pass
        time.sleep(1)
    proc.kill()
    raise RuntimeError("the service did not become ready")


def _ready(port: int) -> bool:
    out = subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/ready"], capture_output=True)
    return out.returncode == 0


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            pids += _tree(int(child))
    return pids


def server_cpu(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by the server and its workers."""
    ticks = 0
    for pid in _tree(proc.pid):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def server_rss_mib(proc: subprocess.Popen[bytes]) -> float:
    total = 0
    for pid in _tree(proc.pid):
        m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        total += int(m.group(1)) if m else 0
    return total / 1024


def wrk(url: str, seconds: int, conns: int, script: Path | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    figures["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
            figures[f"p{pct}_ms"] = float(m.group(1)) * scale
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    figures["errors"] = float(non2xx.group(1)) if non2xx else 0.0
    for status, count in re.findall(r"status (\d+) (\d+)", out):
        figures[f"status_{status}"] = float(count)
    return figures


def measured(proc: subprocess.Popen[bytes], url: str, seconds: int, conns: int,
             script: Path | None = None) -> dict[str, float]:  # fmt: skip
    """wrk figures plus the server's CPU microseconds per request of that run."""
    before = server_cpu(proc)
    figures = wrk(url, seconds, conns, script)
    figures["cpu_us"] = 1e6 * (server_cpu(proc) - before) / max(1.0, figures["requests"])
    return figures


def http_figures(bundle_dir: Path, n_users: int, args: argparse.Namespace, work: Path) -> None:
    port = 18000 + os.getpid() % 1000
    users_file = work / "users.txt"
    rng = np.random.default_rng(3)
    users_file.write_text(
        "\n".join(f"user_{u}" for u in rng.choice(n_users, min(n_users, 20000), replace=False))
    )
    sat = work / "sat.lua"
    sat.write_text(LUA_USERS % (users_file, 1))
    proc = serve(bundle_dir, port, args.workers, work)
    base = f"http://127.0.0.1:{port}"
    conns = 16 * args.workers
    try:
        wrk(f"{base}/bench/bare", 3, conns)  # warm-up
        wrk(base, 3, conns, sat)
        print(f"  {args.workers} worker(s), {conns} connections, {args.seconds} s per run")
        rates = []
        for _ in range(args.repeat):
            bare = measured(proc, f"{base}/bench/bare", args.seconds, conns)
            recs = measured(proc, base, args.seconds, conns, sat)
            rates.append(recs["rps"])
            print(
                f"  bare {bare['rps']:,.0f} req/s ({bare['cpu_us']:.0f} us CPU/req); "
                f"/recommendations {recs['rps']:,.0f} req/s ({recs['cpu_us']:.0f} us CPU/req, "
                f"non-2xx {recs['errors']:.0f}); ratio {recs['rps'] / bare['rps']:.2f}  "
                f"[{load()}]   (goal >= 0.4 and >= 2,000 req/s)"
            )
        paced = work / "paced.lua"
        half_rate = float(np.median(rates)) / 2
        paced.write_text(LUA_USERS % (users_file, 2) + LUA_PACE % (1000.0 * 8 / half_rate))
        half = wrk(base, args.seconds, 8, paced)
        print(
            f"  at half saturation ({half['rps']:,.0f} req/s): p50 {half.get('p50_ms', 0):.2f} ms,"
            f" p99 {half.get('p99_ms', 0):.2f} ms  [{load()}]   (goal p99 < 20 ms)"
        )
        if not args.skip_overload:
            overload(proc, base, args, users_file, work, 3 * float(np.median(rates)))
    finally:
        proc.terminate()
        proc.wait(60)


def overload(
    proc: subprocess.Popen[bytes],
    base: str,
    args: argparse.Namespace,
    users: Path,
    work: Path,
    rate: float,
) -> None:
    """Requests arriving at ``rate`` (three times saturation) from many paced connections.

    wrk keeps one request per connection in flight, so a few connections only ever offer what
    the service answers; paced over many connections, the arrivals keep coming whatever the
    service does (as real listeners do), and the excess has to be refused.
    """
    conns = 8 * args.workers * args.max_in_flight
    script = work / "overload.lua"
    script.write_text(LUA_USERS % (users, 3) + LUA_PACE % (1000.0 * conns / rate) + LUA_STATUSES)
    rss_before = server_rss_mib(proc)
    probe = Probe(base, users.read_text().split()[:500], args.seconds)
    probe.start()
    run = measured(proc, base, args.seconds, conns, script)
    probe.join()
    rss_after = server_rss_mib(proc)
    ok, shed = run.get("status_200", 0.0), run.get("status_503", 0.0)
    other = sum(v for k, v in run.items() if k.startswith("status_")) - ok - shed
    print(
        f"  overload, {rate:,.0f} req/s offered over {conns} paced connections"
        f" ({args.workers} x {args.max_in_flight} admitted):"
        f" {ok:,.0f} x 200 ({ok / args.seconds:,.0f}/s), {shed:,.0f} x 503, {other:.0f} other;"
        f" wrk's p50 {run.get('p50_ms', 0):.2f} ms, p99 {run.get('p99_ms', 0):.2f} ms;"
        f" server RSS {rss_before:,.0f} -> {rss_after:,.0f} MiB  [{load()}]"
    )
    for status, times in sorted(probe.times.items()):
        ms = 1e3 * np.asarray(times)
        print(
            f"    a probe client beside it, one request at a time: {len(ms)} x {status},"
            f" p50 {np.median(ms):.2f} ms, p99 {np.quantile(ms, 0.99):.2f} ms"
        )


class Probe(threading.Thread):
    """One request at a time on its own connection, every 20 ms: latency by status."""

    def __init__(self, base: str, users: list[str], seconds: float) -> None:
        super().__init__(daemon=True)
        self.host, self.port = base.removeprefix("http://").split(":")
        self.users, self.seconds = users, seconds
        self.times: dict[int, list[float]] = {}

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, int(self.port), timeout=10)
        stop = time.perf_counter() + self.seconds
        i = 0
        while time.perf_counter() < stop:
            user = self.users[i % len(self.users)]
            started = time.perf_counter()
            conn.request("GET", f"/v1/users/{user}/recommendations?k=10")
            response = conn.getresponse()
            response.read()
            self.times.setdefault(response.status, []).append(time.perf_counter() - started)
            i += 1
            time.sleep(0.02)


def recommend_all_figures(args: argparse.Namespace, work: Path) -> None:
    from setlist.offline.topk import recommend_all_local

    print(f"recommend-all: {args.users:,} users x {args.items:,} items x 64 factors, k=100")
    bundle64 = synthetic_bundle(args.users, args.items, 64, args.per_user, 1, None)
    result = recommend_all_local(bundle64, 100, work / "picks.parquet", threads=2)
    print(
        f"  recommend-all top-100: {result.seconds:.1f} s for {result.users:,} users"
        f" ({result.users / result.seconds:,.0f} users/s; index {result.index},"
        f" recall@100 vs exact {result.recall:.3f})  [{load()}]   (goal < 120 s)"
    )
    n = min(args.users, args.implicit_users)
    seconds = implicit_loop(bundle64, n)
    print(
        f"  implicit's own recommend (exact), {n:,} users: {seconds:.1f} s ->"
        f" {seconds * args.users / n:.0f} s for {args.users:,}  [{load()}]"
    )


def implicit_loop(bundle: ModelBundle, n: int) -> float:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    rows = np.arange(n)
    with threadpool_limits(limits=1, user_api="blas"):  # as implicit asks, before it is built
        model = AlternatingLeastSquares(factors=64, num_threads=2)
        model.user_factors = bundle.model.user_factors_  # type: ignore[attr-defined]
        model.item_factors = bundle.model.item_factors_  # type: ignore[attr-defined]
        started = time.perf_counter()
        model.recommend(rows, bundle.seen[rows], N=100, filter_already_liked_items=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=359_000)
    parser.add_argument("--items", type=int, default=300_000)
    parser.add_argument("--factors", type=int, default=128)
    parser.add_argument("--per-user", type=int, default=40)
    parser.add_argument("--ann", choices=["hnsw", "ivf"], default="hnsw")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--repeat", type=int, default=2, help="bare/recommendations pairs")
    parser.add_argument("--max-in-flight", type=int, default=32, help="per worker")
    parser.add_argument("--implicit-users", type=int, default=20_000)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-overload", action="store_true")
    parser.add_argument("--skip-recommend-all", action="store_true")
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)  # the server process
    args = parser.parse_args()
    if args.serve_port:
        from setlist.serve.runtime.workers import WorkerSpec, run_workers

        spec = WorkerSpec("benchmarks.serving:bench_app", "127.0.0.1", args.serve_port,
                          loop="uvloop", http="httptools", log_level="warning")  # fmt: skip
        sys.exit(run_workers(spec, args.workers))
    os.environ["SETLIST_MAX_IN_FLIGHT"] = str(args.max_in_flight)
    work = Path(tempfile.mkdtemp(prefix="setlist-bench-"))
    try:
        config = IndexConfig(kind=args.ann, recall_queries=300)
        print(f"serving: {args.users:,} users x {args.items:,} items x {args.factors} factors")
        bundle = synthetic_bundle(args.users, args.items, args.factors, args.per_user, 0, config)
        qps, recall, served = index_figures(bundle)
        print(f"  index queries/s (1 thread): {qps:,.0f}; recall@10 {recall:.4f}"
              f" (at build: {bundle.index.recall_at_10:.4f}, effort {bundle.index.effort()});"  # type: ignore[union-attr]
              f" served top 10 (heard dropped) recall {served:.4f}  [{load()}]")  # fmt: skip
        if not args.skip_http:
            bundle.save(work / "bundle")
            del bundle
            http_figures(work / "bundle", args.users, args, work)
        else:
            del bundle
        if not args.skip_recommend_all:
            recommend_all_figures(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
