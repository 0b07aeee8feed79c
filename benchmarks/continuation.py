"""Playlist continuation under load: ``POST /v1/playlists/continue`` at k=500 on a real server.

    SETLIST_DATA_MIRROR=../shared/data OPENBLAS_NUM_THREADS=1 \\
        python -m benchmarks.continuation [--seconds 10] [--workers 2] [--tracks 1000000]
        python -m benchmarks.continuation --in-process 400 [--only subset]   # no server

Two catalogues, each served by ``setlist serve --bundle tracks=DIR --workers N`` on loopback and
driven by ``wrk`` (``apt-get install -y wrk``) with a Lua script that posts a random body of a
prepared set:

- **subset**: the real MPD subset (2,622 playlists, 104k tracks) with item kNN (k=100, cosine)
  fitted here, the playlists table (so the title model is there) and each track's artist. The
  bodies are the first 5 tracks of real playlists, half of them with the playlist's name.
- **1M tracks**: a synthetic ALS catalogue of 1,000,000 tracks x 64 factors (100,000 training
  playlists, 66 tracks each on average, Zipf-like popularity; factors shaped as trained ones
  are, see ``benchmarks/serving.py``). Why ALS and not item kNN: a kNN similarity over 1M
  tracks is a 1M x 1M sparse matrix with k neighbours a row (100M entries at k=100), which is
  the item model's own scaling problem, while a factor model is what a catalogue of that size
  gets trained with. No vector index: ``/v1/playlists/continue`` scores every track densely
  (the seeds folded in, then one matrix-vector product through the Continuer shared with the
  challenge evaluation), because a continuation asks for 500 tracks and excludes its seeds,
  so the index's candidate set would have to be most of its top 500 anyway. The figures show
  what the dense path costs at 1M tracks. Bodies: 5 random tracks drawn by popularity.

For each: saturation (4 connections per worker, best of ``--repeat`` runs), then p50/p99 at half
of it (paced with wrk's ``delay()``), the share of non-2xx answers, and the server's CPU time
per request. Goal: p99 < 30 ms at half of saturation. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from benchmarks.serving import (
    LUA_STATUSES,
    load,
    server_cpu,
    server_rss_mib,
    synthetic_factors,
    wrk,
)  # noqa: E402
from setlist.bundle import PLAYLIST_COLUMNS, ModelBundle  # noqa: E402
from setlist.bundle_meta import BundleMeta  # noqa: E402
from setlist.catalogue import TRACKS_CATALOGUE  # noqa: E402
from setlist.data.playlists import read_playlists  # noqa: E402
from setlist.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA  # noqa: E402
from setlist.matrix import IdIndex, build_matrix  # noqa: E402
from setlist.models.als import ALSRecommender  # noqa: E402
from setlist.models.knn import ItemKNNRecommender  # noqa: E402

K = 500
LUA_BODIES = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
math.randomseed(%d)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format("POST", "/v1/playlists/continue", nil, bodies[math.random(#bodies)])
end
"""
LUA_PACE = """
local rate_ms = %f
delay = function()
  return -math.log(1 - math.random()) * rate_ms
end
"""


def subset_bundle(mirror: Path, out: Path) -> list[str]:
    """Item kNN on the real subset's playlists, saved to ``out``; request bodies."""
    started = time.perf_counter()
    ds, _ = read_playlists(mirror / "spotify-mpd-subset")
    pairs = ds.playlist_tracks.unique(["pid", "track_uri"], keep="first", maintain_order=True)
    frame = pl.DataFrame(
        {
            "user": pairs["pid"].cast(pl.String),
            "item": pairs["track_uri"],
            "weight": [1.0] * pairs.height,
            "timestamp": [None] * pairs.height,
        },
        schema=INTERACTION_SCHEMA,
    )
    train = build_matrix(frame)
    model = ItemKNNRecommender(k=100)
    model.fit(train.csr)
    meta = ds.tracks.select(
        pl.col("track_uri").alias("item"),
        pl.col("track_name").alias("name"),
        pl.lit("").alias("url"),
    ).cast(ITEM_SCHEMA)  # type: ignore[arg-type]
    ordered = (
        ds.playlist_tracks.sort("pid", "pos")
        .group_by("pid", maintain_order=True)
        .agg(pl.col("track_uri").alias("tracks"))
    )
    playlists = (
        ds.playlists.select("pid", "name", "num_followers")
        .join(ordered, on="pid")
        .with_columns(pl.col("pid").cast(pl.String))
        .cast(PLAYLIST_COLUMNS)  # type: ignore[arg-type]
    )
    bundle = ModelBundle.build(
        model,
        train,
        meta,
        BundleMeta(model_type="knn", catalogue=TRACKS_CATALOGUE, data_fingerprint=ds.fingerprint),
        playlists=playlists,
    )
    artist = dict(zip(ds.tracks["track_uri"], ds.tracks["artist_name"], strict=True))
    bundle.item_attributes["artist"] = np.array(
        [artist[str(t)] for t in bundle.items.ids], dtype=np.str_
    )
    bundle.save(out)
    print(f"  subset: {len(bundle.items.ids):,} tracks, {len(bundle.users.ids):,} playlists, "
          f"item kNN fitted and saved in {time.perf_counter() - started:.1f} s")  # fmt: skip
    rng = random.Random(1)
    bodies = []
    for row in playlists.iter_rows(named=True):
        body: dict[str, object] = {"tracks": row["tracks"][:5], "k": K}
        if rng.random() < 0.5:
            body["name"] = row["name"]
        bodies.append(json.dumps(body))
    return bodies


def synthetic_bundle(n_tracks: int, n_playlists: int, factors: int, out: Path) -> list[str]:
    """A 1M-track ALS catalogue (synthetic factors and playlists), saved; request bodies."""
    started = time.perf_counter()
    users, items, listeners = synthetic_factors(n_playlists, n_tracks, factors, seed=0)
    rng = np.random.default_rng(1)
    p = listeners / listeners.sum()
    counts = np.clip(rng.poisson(66, n_playlists), 5, 250)
    cols = rng.choice(n_tracks, size=int(counts.sum()), p=p)
    rows = np.repeat(np.arange(n_playlists), counts)
    seen = sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)),
        shape=(n_playlists, n_tracks),
        dtype=np.float32,
    )
    seen.sum_duplicates()
    seen.data[:] = 1.0
    model = ALSRecommender(factors=factors)
    model.user_factors_, model.item_factors_ = users, items
    ids = np.array([f"spotify:track:{i:022d}" for i in range(n_tracks)])
    bundle = ModelBundle(
        model=model,
        users=IdIndex(np.array([str(u) for u in range(n_playlists)])),
        items=IdIndex(ids),
        item_names=np.array([f"Track {i}" for i in range(n_tracks)]),
        item_urls=np.array([""] * n_tracks),
        seen=seen,
        popularity=np.asarray((seen > 0).sum(axis=0), dtype=np.float32).ravel(),
        meta=BundleMeta(model_type="als", catalogue=TRACKS_CATALOGUE, version="bench"),
    )
    bundle.item_attributes["artist"] = np.array(
        [f"Artist {i % 200_000}" for i in range(n_tracks)], dtype=np.str_
    )
    bundle.save(out)
    print(f"  synthetic: {n_tracks:,} tracks x {factors} factors, {n_playlists:,} playlists "
          f"({seen.nnz:,} rows), built and saved in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    seeds = rng.choice(n_tracks, size=(2000, 5), p=p)
    return [json.dumps({"tracks": [str(ids[s]) for s in row], "k": K}) for row in seeds]


def serve(bundle: Path, port: int, workers: int, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SETLIST_HOME": str(home), "SETLIST_DOWNLOAD": "false",
           "OPENBLAS_NUM_THREADS": "1", "SETLIST_ONLINE_UPDATES": "false"}  # fmt: skip
    cmd = [sys.executable, "-m", "setlist", "serve", "--port", str(port), "--workers",
           str(workers), "--bundle", f"{TRACKS_CATALOGUE}={bundle}"]  # fmt: skip
    with log.open("wb") as out:
        # The registry's SQLite file is created once here: N workers starting on a fresh home
        # would race to create its tables.
        subprocess.run([sys.executable, "-m", "setlist", "models", "list"], env=env,
                       stdout=out, stderr=out, check=False)  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
    deadline = time.time() + 600
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        ok = [
            subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/ready"], capture_output=True)
            for _ in range(4 * workers)
        ]
        if all(r.returncode == 0 for r in ok):
            return proc
        time.sleep(1)
    proc.kill()
    raise RuntimeError("the service did not become ready")


def measure(
    name: str, bundle: Path, bodies: list[str], args: argparse.Namespace, work: Path
) -> None:
    port = 19000 + os.getpid() % 1000
    (work / "bodies.txt").write_text("\n".join(bodies))
    sat = work / "sat.lua"
    sat.write_text(LUA_BODIES % (work / "bodies.txt", 1) + LUA_STATUSES)
    proc = serve(bundle, port, args.workers, work / f"home-{name}", work / f"{name}.log")
    base = f"http://127.0.0.1:{port}"
    # 4 connections per worker keep each busy (one continuation is milliseconds of one core)
    # and stay under the in-flight cap, so that saturation measures answers, not instant 503s.
    conns = 4 * args.workers
    try:
        one = subprocess.run(
            ["curl", "-s", "-X", "POST", f"{base}/v1/playlists/continue", "-H",
             "content-type: application/json", "-d", bodies[0]],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        answer = json.loads(one)
        print(f"  {name}: one answer: {len(answer['items'])} items, strategy {answer['strategy']}, "
              f"{sum(1 for i in answer['items'] if i['because'])} with reasons; "
              f"server RSS {server_rss_mib(proc):,.0f} MiB")  # fmt: skip
        times = []
        for body in bodies[1:21]:  # one at a time: latency alone, and what a refusal says
            out = subprocess.run(
                ["curl", "-s", "-w", "\n%{time_total} %{http_code}", "-X", "POST",
                 f"{base}/v1/playlists/continue", "-H", "content-type: application/json",
                 "-d", body], capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            text, last = out.rsplit("\n", 1)
            seconds, status = last.split()
            times.append(1e3 * float(seconds))
            if status != "200":
                print(f"  {name}: after warm-up, one request answered {status}: {text[:300]}")
                break
        print(
            f"  {name}: one request at a time: median {float(np.median(times)):.1f} ms, "
            f"max {max(times):.1f} ms over {len(times)}  [{load()}]"
        )
        wrk(base, 3, conns, sat)  # warm-up
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            before = server_cpu(proc)
            run = wrk(base, args.seconds, conns, sat)
            run["cpu_ms"] = 1e3 * (server_cpu(proc) - before) / max(1.0, run["requests"])
            # Answers only: a 503 (load shed past the in-flight cap) is no continuation.
            run["ok_rps"] = run["rps"] * (1 - run["errors"] / max(1.0, run["requests"]))
            print(f"  {name}: saturated {run['ok_rps']:,.1f} answers/s ({run['rps']:,.1f} req/s),"
                  f" p99 {run.get('p99_ms', 0):.1f} ms"
                  f", {run['cpu_ms']:.1f} ms CPU/req, {_statuses(run)}"
                  f"  [{load()}]")  # fmt: skip
            if run["ok_rps"] > best.get("ok_rps", 0):
                best = run
        paced = work / "paced.lua"
        if not best:
            print(f"  {name}: no run answered anything but 503: no half-saturation figure")
            return
        half_rate = best["ok_rps"] / 2
        conns_half = max(2, args.workers * 4)
        paced.write_text(LUA_BODIES % (work / "bodies.txt", 2) + LUA_STATUSES
                         + LUA_PACE % (1000.0 * conns_half / half_rate))  # fmt: skip
        half = wrk(base, args.seconds, conns_half, paced)
        print(f"  {name}: at half saturation ({half['rps']:,.1f} req/s): p50 "
              f"{half.get('p50_ms', 0):.1f} ms, p99 {half.get('p99_ms', 0):.1f} ms, "
              f"{_statuses(half)}  [{load()}]   (goal p99 < 30 ms)")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(60)


def in_process(name: str, bundle: Path, bodies: list[str], n: int, work: Path) -> None:
    """The route without a server: ``n`` requests through the app in this process (FastAPI's
    TestClient), one at a time: one answer and its JSON, without network or queueing."""
    from fastapi.testclient import TestClient

    from setlist.config import Settings
    from setlist.serve import create_app

    settings = Settings(home=work / f"home-inproc-{name}", mlflow_tracking_uri=None,
                        download=False, rate_limit="", online_updates=False)  # fmt: skip
    app = create_app(settings, {TRACKS_CATALOGUE: bundle})
    headers = {"content-type": "application/json"}
    with TestClient(app) as client:
        for body in bodies[:5]:  # warm-up (lazy structures, caches)
            client.post("/v1/playlists/continue", content=body, headers=headers)
        times = []
        for body in (bodies * (1 + n // max(1, len(bodies))))[:n]:
            started = time.perf_counter()
            answer = client.post("/v1/playlists/continue", content=body, headers=headers)
            times.append(1e3 * (time.perf_counter() - started))
            answer.raise_for_status()
    print(f"  {name}: in process, one at a time: median {float(np.median(times)):.1f} ms, "
          f"p99 {float(np.percentile(times, 99)):.1f} ms over {n}  [{load()}]")  # fmt: skip


def _statuses(run: dict[str, float]) -> str:
    """HTTP statuses of a wrk run (a 503 is the service shedding load past its in-flight cap)."""
    found = sorted(
        (k.removeprefix("status_"), v) for k, v in run.items() if k.startswith("status_")
    )
    return "statuses " + ", ".join(f"{k}: {v:,.0f}" for k, v in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--playlists", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--only", choices=["subset", "synthetic"])
    parser.add_argument(
        "--in-process", type=int, default=0, metavar="N",
        help="instead of a server and wrk: N requests through the app in this process",
    )  # fmt: skip
    args = parser.parse_args()
    mirror = Path(os.environ.get("SETLIST_DATA_MIRROR", "../shared/data"))
    print(f"k={K}, {args.workers} worker(s), {os.cpu_count()} cores, {load()}")
    with tempfile.TemporaryDirectory(prefix="setlist-continue-") as tmp:
        work = Path(tmp)
        if args.only in (None, "subset"):
            bodies = subset_bundle(mirror, work / "subset")
            if args.in_process:
                in_process("subset", work / "subset", bodies, args.in_process, work)
            else:
                measure("subset", work / "subset", bodies, args, work)
        if args.only in (None, "synthetic"):
            bodies = synthetic_bundle(args.tracks, args.playlists, args.factors, work / "big")
            if args.in_process:
                in_process("1M tracks", work / "big", bodies, args.in_process, work)
            else:
                measure("1M tracks", work / "big", bodies, args, work)


if __name__ == "__main__":
    main()
