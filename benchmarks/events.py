"""Events figures: acknowledged events/s (batches of 100) and event-to-recommendation freshness.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/events.py [--events 30000] [--skip-pg]

Everything runs on 127.0.0.1. Printed, for SQLite and for PostgreSQL:

- direct: ``EventStore.append`` of batches of 100 in this process (the reference: no HTTP);
- http: ``POST /v1/events`` with batches of 100 to a real ``setlist serve`` process (uvicorn,
  one worker), from ``--concurrency`` client threads in this process; bodies are prepared
  before timing. Each figure counts events acknowledged with 200 (durably committed);
- freshness: a listen of a user's top recommendation is posted; from the moment its 200
  arrives, the user's recommendations are fetched until that item is gone. Median, p95, max
  over ``--freshness-users`` users (in-process bus; Redis Streams bus too where Redis answers).

Goals (docs/TARGETS.md): at least 5,000 acknowledged events/s into each store on 2 cores, and
freshness under 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from setlist.events.schema import Event
from setlist.events.store import open_store

BATCH = 100
PG_URL = os.environ.get("SETLIST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SETLIST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def event_dicts(n: int) -> list[dict[str, object]]:
    now = datetime.now(UTC).isoformat()
    return [
        {
            "event_id": uuid.uuid4().hex,
            "user_id": f"user_{i % 5000:06d}",
            "item_id": f"artist_{(i * 7919) % 20000:06d}",
            "type": "listen" if i % 4 else "impression",
            "ts": now,
            "play_ms": 120_000,
            "propensity": 0.5 if i % 4 == 0 else None,
        }
        for i in range(n)
    ]


def direct(url: str, n: int) -> float:
    events = [Event.model_validate(e) for e in event_dicts(n)]
    with open_store(url) as store:
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            store.append(events[start : start + BATCH])
        return n / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, bundle: Path, home: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {k: v for k, v in os.environ.items() if not k.startswith(("SETLIST_", "MLFLOW_"))}
        full.update(SETLIST_HOME=str(home), OPENBLAS_NUM_THREADS="1", **env)
        command = [sys.executable, "-m", "setlist", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--bundle", str(bundle)]
        self.proc = subprocess.Popen(
            command, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def over_http(server: Server, n: int, concurrency: int) -> float:
    events = event_dicts(n)
    bodies = [json.dumps({"events": events[s : s + BATCH]}).encode() for s in range(0, n, BATCH)]
    acked = [0] * concurrency
    headers = {"content-type": "application/json"}

    def worker(w: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for body in bodies[w::concurrency]:
                resp = client.post("/v1/events", content=body, headers=headers)
                if resp.status_code == 200:
                    acked[w] += int(resp.json()["accepted"])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if sum(acked) != n:
        raise RuntimeError(f"only {sum(acked)} of {n} events acknowledged")
    return n / elapsed


def world_bundle(path: Path, preset: str) -> tuple[Path, list[str]]:
    from setlist.bundle import ModelBundle
    from setlist.bundle_meta import BundleMeta
    from setlist.config import WeightConfig
    from setlist.data.clean import aggregate
    from setlist.data.synthetic import generate_preset
    from setlist.matrix import build_matrix, weight
    from setlist.models.als import ALSRecommender

    world = generate_preset(preset)
    train = build_matrix(aggregate(world.interactions))
    model = ALSRecommender(factors=64, iterations=10, seed=0, threads=1)
    model.fit(weight(train.csr, WeightConfig()))
    meta = {"model_type": "als", "version": "bench", "weighting": WeightConfig().__dict__}
    ModelBundle.build(model, train, world.items, BundleMeta.decode(meta)).save(path)
    return path, [str(u) for u in train.users.ids[:5000]]


def freshness(server: Server, users: list[str], n: int) -> list[float]:
    """Seconds from a listen's 200 until the listened item leaves that user's answer."""
    out = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for user in users[:n]:
            path = f"/v1/users/{user}/recommendations"
            top = client.get(path, params={"k": 10}).json()["items"][0]["item_id"]
            listen = {
                "event_id": uuid.uuid4().hex,
                "user_id": user,
                "item_id": top,
                "type": "listen",
                "ts": datetime.now(UTC).isoformat(),
            }
            assert client.post("/v1/events", json=listen).status_code == 200
            acked = time.perf_counter()
            while True:
                items = client.get(path, params={"k": 10}).json()["items"]
                if top not in [i["item_id"] for i in items]:
                    out.append(time.perf_counter() - acked)
                    break
                if time.perf_counter() - acked > 30:
                    out.append(float("inf"))
                    break
    return out


def redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def postgres_answers() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def summary(values: list[float]) -> str:
    ms = np.array(values) * 1000
    return (
        f"median {np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, "
        f"max {ms.max():.1f} ms over {len(ms)} listens"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--freshness-users", type=int, default=200)
    parser.add_argument("--preset", default="small", help="synthetic world of the served model")
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="setlist-bench-events-"))
    bundle, users = world_bundle(tmp / "bundle", args.preset)
    stores = {"sqlite": lambda name: f"sqlite:///{tmp / name / 'events.db'}"}
    if not args.skip_pg and postgres_answers():
        schema = f"setlist_bench_{uuid.uuid4().hex[:8]}"
        stores["postgres"] = lambda name: f"{PG_URL}?schema={schema}_{name}"
    elif not args.skip_pg:
        print(f"PostgreSQL: no server answers at {PG_URL}: skipped")
    print(f"{os.cpu_count()} cores; batches of {BATCH}; {args.events:,} events per figure")
    for name, url_of in stores.items():
        rate_direct = direct(url_of("direct"), args.events)
        server = Server(bundle, tmp / f"home-{name}", SETLIST_EVENTS_STORE_URL=url_of("http"))
        try:
            over_http(server, min(args.events, 5000), args.concurrency)  # warm-up
            rate_http = statistics.median(
                over_http(server, args.events, args.concurrency) for _ in range(3)
            )
        finally:
            server.stop()
        print(
            f"{name:9s} direct {rate_direct:10,.0f} ev/s | http (median of 3) "
            f"{rate_http:10,.0f} ev/s | http/direct {rate_http / rate_direct:.2f} "
            f"| goal 5,000: {'met' if rate_http >= 5000 else 'NOT met'}"
        )
        if name == "postgres":
            from setlist.events.store.postgres import PostgresEventStore

            for part in ("direct", "http"):
                store = open_store(url_of(part))
                assert isinstance(store, PostgresEventStore)
                store.drop_schema()
                store.close()
    buses = {"memory": "memory://"}
    if redis_answers():
        buses["redis"] = f"{REDIS_URL}?stream=setlist-bench-{uuid.uuid4().hex[:8]}"
    for bus, url in buses.items():
        server = Server(bundle, tmp / f"home-fresh-{bus}", SETLIST_EVENTS_BUS_URL=url)
        try:
            values = freshness(server, users, args.freshness_users)
        finally:
            server.stop()
        print(f"freshness ({bus} bus, {args.preset} world): {summary(values)} | goal < 1 s")
        if bus == "redis":
            import redis

            redis.Redis.from_url(REDIS_URL).delete(url.split("stream=")[1])


if __name__ == "__main__":
    main()
