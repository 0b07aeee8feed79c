"""Organic playlists: the ranker against the most-followed playlists and raw overlap, then the
route itself (quality through the API and p99 at half saturation).

HetRec Last.fm listeners x the MPD subset (through the mirror), user-content split: 20% of each
listener's artists held out, 30% of listeners only judge. @10 per test listener: hit rate (share
of the ten playlists holding a held-out artist), discovery recall (share of the held-out artists
found in some playlist that the ten cover), novelty (share of a playlist's tracks by unheard
artists), diversity (distinct artists over the ten). The paired test is the gate's
(``setlist.evaluate.stats.compare_paired``, on hit rate). Then the saved version is served over a
HetRec bundle (real artist names): ``GET /v1/users/{id}/playlists`` is checked against the
function (same slates), and driven with ``wrk`` in a uvicorn subprocess: saturated throughput,
then p50/p99 paced at half of it (goal p99 < 30 ms). ``--skip-http`` skips the load run;
``--top-picks`` also times ``setlist top-picks`` over every listener, locally and on Ray Data.

    PYTHONPATH=src:. .venv/bin/python benchmarks/organic_playlists.py --mirror /work/shared/data
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from setlist.data.sources import SourceConfig  # noqa: E402
from setlist.evaluate.organic import METRICS  # noqa: E402
from setlist.offline.organic import (  # noqa: E402
    OrganicConfig,
    OrganicResult,
    load_inputs,
    save_result,
    train_organic,
)


def quality(result: OrganicResult, seconds: float) -> None:
    ev = result.evaluation
    print(
        f"listening linked to playlists: {result.figures['matched_share']:.1%}; playlist artists "
        f"linked: {result.figures['linked_artists']:.1%}; {len(ev.users)} test listeners; "
        f"trained on {result.figures['train_listeners']:.0f} listeners in {seconds:.0f} s"
    )
    print(f"{'@10':<16}" + "".join(f"{m:>18}" for m in METRICS))
    for source in ev.values:
        print(f"{source:<16}" + "".join(f"{ev.mean(source, m):>18.4f}" for m in METRICS))
    for ref, c in ev.comparisons.items():
        print(
            f"ranker vs {ref}: hit rate {c.diff.mean:+.4f} [{c.diff.low:+.4f}, {c.diff.high:+.4f}]"
            f" p={c.p_value:.2g} wins {c.wins} losses {c.losses}"
        )
    print(f"champion: {result.champion}")


def bundle_of(history: sp.csr_matrix, names: list[str], folder: Path) -> Path:
    """A HetRec bundle (popularity model: the route needs only history and names)."""
    from setlist.bundle import ModelBundle
    from setlist.bundle_meta import BundleMeta
    from setlist.matrix import IdIndex
    from setlist.models.popularity import PopularityRecommender

    seen = sp.csr_matrix(history, dtype=np.float32)
    model = PopularityRecommender()
    model.fit(seen)
    n_users, n_items = seen.shape
    bundle = ModelBundle(
        model=model,
        users=IdIndex(np.array([str(u) for u in range(n_users)])),
        items=IdIndex(np.array([f"artist_{i}" for i in range(n_items)])),
        item_names=np.array(names),
        item_urls=np.array([""] * n_items),
        seen=seen,
        popularity=np.asarray((seen > 0).sum(axis=0), dtype=np.float32).ravel(),
        meta=BundleMeta(model_type="popularity", version="bench"),
    )
    bundle.save(folder)
    return folder


def api_check(bundle_dir: Path, organic_dir: Path, result: OrganicResult, n: int = 200) -> None:
    """The route's slates equal the function's (serendipity 0) for ``n`` listeners; timing of
    single in-process calls."""
    from fastapi.testclient import TestClient

    from setlist.config import Settings
    from setlist.serve import create_app

    home = Path(tempfile.mkdtemp(prefix="setlist-organic-home-"))
    settings = Settings(home=home, download=False, swap_interval_s=0, rate_limit="")
    settings = settings.model_copy(update={"organic_dir": organic_dir})
    t0 = time.perf_counter()
    with TestClient(create_app(settings, bundle_dir)) as client:
        started = time.perf_counter() - t0
        answerer = client.app.state.service.organic._answerer  # type: ignore[attr-defined]
        same, took = 0, []
        for user in result.evaluation.users[:n]:
            t = time.perf_counter()
            response = client.get(f"/v1/users/{user}/playlists", params={"k": 10, "serendipity": 0})
            took.append(time.perf_counter() - t)
            response.raise_for_status()
            got = [p["playlist_id"] for p in response.json()["items"]]
            want = [p.playlist_id for p in answerer.for_user(str(user), 10, 0.0)]
            same += got == want
        onboard = client.post(
            "/v1/recommendations/playlists", json={"seeds": ["Beyonce", "rihanna"], "k": 3}
        ).json()["items"]
    print(
        f"API: start-up with linking {started:.1f} s; {same}/{min(n, len(result.evaluation.users))}"
        f" slates equal the function's; in-process p50 {1e3 * np.median(took):.1f} ms, "
        f"p99 {1e3 * np.quantile(took, 0.99):.1f} ms; onboarding (Beyonce, rihanna): "
        + ", ".join(repr(p["name"]) for p in onboard)
    )


def http_load(bundle_dir: Path, organic_dir: Path, users: list[int], seconds: int) -> None:
    from benchmarks.serving import LUA_PACE, load, serve, wrk

    work = Path(tempfile.mkdtemp(prefix="setlist-organic-http-"))
    (work / "users.txt").write_text("\n".join(str(u) for u in users))
    lua = (
        'local users = {}\nfor line in io.lines("%s") do users[#users + 1] = line end\n'
        'math.randomseed(%d)\nrequest = function()\n  return wrk.format("GET", "/v1/users/" ..'
        ' users[math.random(#users)] .. "/playlists?k=10&serendipity=0.3")\nend\n'
    )
    (work / "sat.lua").write_text(lua % (work / "users.txt", 1))
    os.environ["SETLIST_ORGANIC_DIR"] = str(organic_dir)
    port = 18500 + os.getpid() % 400
    proc = serve(bundle_dir, port, 1, work)
    base = f"http://127.0.0.1:{port}"
    try:
        wrk(base, 3, 8, work / "sat.lua")  # warm-up
        sat = wrk(base, seconds, 8, work / "sat.lua")
        half_rate = sat["rps"] / 2
        paced = work / "paced.lua"
        paced.write_text(lua % (work / "users.txt", 2) + LUA_PACE % (1000.0 * 8 / half_rate))
        half = wrk(base, seconds, 8, paced)
        print(
            f"HTTP (1 worker, wrk, {seconds} s runs): saturated {sat['rps']:,.0f} req/s "
            f"(non-2xx {sat['errors']:.0f}); at half saturation ({half['rps']:,.0f} req/s): "
            f"p50 {half.get('p50_ms', 0):.2f} ms, p99 {half.get('p99_ms', 0):.2f} ms "
            f"[{load()}]   (goal p99 < 30 ms)"
        )
    finally:
        proc.terminate()
        proc.wait(60)


def top_picks_figures(bundle_dir: Path, organic_dir: Path, work: Path) -> None:
    """``setlist top-picks`` over every HetRec listener, locally and on Ray Data (2 CPUs)."""
    import pyarrow.parquet as pq

    from setlist.index.organic_store import latest_version
    from setlist.offline.top_picks import top_picks_local, top_picks_ray

    folder = latest_version(organic_dir)
    assert folder is not None
    local = top_picks_local(bundle_dir, folder, work / "local.parquet")
    ray_run = top_picks_ray(bundle_dir, folder, work / "ray.parquet", cpus=2)
    same = pq.read_table(local.path).equals(pq.read_table(ray_run.path))
    print(
        f"top picks for {local.users:,} listeners ({local.rows:,} rows): "
        f"local {local.seconds:.1f} s, Ray Data (2 CPUs, start-up included) "
        f"{ray_run.seconds:.1f} s; tables equal: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mirror", default=os.environ.get("SETLIST_DATA_MIRROR", "data"))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--top-picks", action="store_true", help="also time setlist top-picks")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="setlist-organic-bench-"))
    sources = SourceConfig(Path(args.mirror), work / "cache", False)
    history, names, table = load_inputs(sources)
    config = OrganicConfig()
    t = time.perf_counter()
    result = train_organic(history, names, table, config)
    quality(result, time.perf_counter() - t)
    organic_dir = work / "organic"
    save_result(result, organic_dir, config)
    bundle_dir = bundle_of(history, names, work / "bundle")
    api_check(bundle_dir, organic_dir, result)
    if not args.skip_http:
        http_load(bundle_dir, organic_dir, result.evaluation.users, args.seconds)
    if args.top_picks:
        top_picks_figures(bundle_dir, organic_dir, work)


if __name__ == "__main__":
    main()
