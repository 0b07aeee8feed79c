"""Auth benchmark: recommendations/s with API keys and the rate limiter on, against off.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.auth
    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.auth --users 20000 --seconds 10

Builds one synthetic bundle (as benchmarks/serving.py does), starts two services on loopback
over it, one worker each (``benchmarks.serving``'s server): ``off`` (``SETLIST_AUTH=off``; the
per-address limit does not apply to loopback callers) and ``on`` (``SETLIST_AUTH=on``, a key
with the ``read`` scope and a quota no run reaches, memory storage: every request looks the key
up in the per-worker cache, checks its HMAC, and hits the sliding-window limiter). Both are
driven by ``wrk`` on ``/v1/users/{id}/recommendations?k=10``, alternately, ``--repeat`` times
each, in the same run. Prints requests/s, latency and the server's CPU time per request of each
run, and the ratio of the medians. No figure is asserted: the goal (at most 10% slower) is
printed beside the measurement, with the load average of the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.serving import LUA_USERS, load, measured, serve, synthetic_bundle, wrk
from setlist.config import IndexConfig
from setlist.events.keys import KeyStore

LUA_KEY = 'wrk.headers["X-API-Key"] = "%s"\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--conns", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="setlist-bench-auth-"))
    print(f"bundle: {args.users:,} users x {args.items:,} items, {args.factors} factors")
    bundle = synthetic_bundle(args.users, args.items, args.factors, 40, 0, IndexConfig())
    bundle_dir = work / "bundle"
    bundle.save(bundle_dir)
    store_url = f"sqlite:///{work / 'events.db'}"
    keys = KeyStore(store_url)
    key = keys.create("bench", "read", "999999999/minute", "bench", "bench")[1]
    keys.close()
    users_file = work / "users.txt"
    rng = np.random.default_rng(3)
    picks = rng.choice(args.users, min(args.users, 20000), replace=False)
    users_file.write_text("\n".join(f"user_{u}" for u in picks))
    scripts = {"off": work / "off.lua", "on": work / "on.lua"}
    scripts["off"].write_text(LUA_USERS % (users_file, 1))
    scripts["on"].write_text(LUA_KEY % key + LUA_USERS % (users_file, 1))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports = {"off": 18500 + os.getpid() % 500, "on": 19000 + os.getpid() % 500}
    saved = dict(os.environ)
    try:
        for mode in ("off", "on"):
            os.environ.update(
                SETLIST_AUTH=mode, SETLIST_EVENTS_STORE_URL=store_url, SETLIST_ONLINE_UPDATES="0"
            )
            (work / mode).mkdir()
            procs[mode] = serve(bundle_dir, ports[mode], 1, work / mode)
        os.environ.clear()
        os.environ.update(saved)
        for mode in ("off", "on"):  # warm-up, and a check that both answer 200
            warm = wrk(f"http://127.0.0.1:{ports[mode]}", 3, args.conns, scripts[mode])
            assert warm["errors"] == 0, f"{mode}: {warm}"
        rates: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.repeat):
            for mode in ("off", "on"):
                url = f"http://127.0.0.1:{ports[mode]}"
                fig = measured(procs[mode], url, args.seconds, args.conns, scripts[mode])
                rates[mode].append(fig["rps"])
                print(
                    f"  auth {mode:>3}: {fig['rps']:,.0f} req/s, "
                    f"p50 {fig.get('p50_ms', 0):.2f} ms, p99 {fig.get('p99_ms', 0):.2f} ms, "
                    f"{fig['cpu_us']:.0f} us CPU/req, "
                    f"non-2xx {fig['errors']:.0f}  [{load()}]"
                )
        off, on = float(np.median(rates["off"])), float(np.median(rates["on"]))
        print(
            f"  median: off {off:,.0f} req/s, on {on:,.0f} req/s: on is "
            f"{100 * (1 - on / off):+.1f}% slower   (goal: at most 10% slower)"
        )
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(60)


if __name__ == "__main__":
    main()
