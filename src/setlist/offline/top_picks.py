"""`setlist top-picks`: every listener's taste buddies and organic playlists into one Parquet
table, which the API serves while it is fresh (:mod:`setlist.serve.runtime.organic`).

One row per (listener, kind, rank): ``kind`` is ``buddy`` (``target_id`` a user id, ``score``
the taste similarity) or ``playlist`` (``target_id`` a playlist id, ``score`` 0); ``detail`` is
the row's JSON (the playlist's name, sizes and reasons, as ``GET /v1/users/{id}/playlists``
answers them; a buddy's shared artists and discoveries, as ``GET /v1/users/{id}/buddies`` does).
The file's metadata records the organic version, ``k``, ``serendipity`` and when it was
computed, so the API serves it only for the version it runs and while fresh.
Locally the listeners are answered in one process; with Ray Data (``backend="ray"``) blocks of
listeners go to actors that each load the bundle and the ranker once. Both give the same table.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from setlist.bundle import ModelBundle
from setlist.errors import ConfigError
from setlist.index.organic_store import TOP_PICKS_META, load_organic
from setlist.serve.answer.buddies import BuddyFinder
from setlist.serve.answer.organic import OrganicAnswerer, OrganicPick

BLOCK = 256
SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("kind", pa.string()),
        ("rank", pa.int16()),
        ("target_id", pa.string()),
        ("score", pa.float32()),
        ("detail", pa.string()),
    ]
)


@dataclass(frozen=True)
class TopPicksConfig:
    k_buddies: int = 10
    k_playlists: int = 10
    serendipity: float = 0.3


@dataclass(frozen=True)
class TopPicksResult:
    users: int
    rows: int
    seconds: float
    path: Path
    version: str


class _Picker:
    """Buddies and playlists for blocks of listener rows (one per process or Ray actor), through
    the routes' own answerers: :meth:`BuddyFinder.for_rows` (the bundle's listener index, then
    the exact re-rank) and :meth:`OrganicAnswerer.for_rows` (one ranker call per block)."""

    def __init__(self, bundle_dir: str, organic_folder: str, config: TopPicksConfig) -> None:
        self.bundle = ModelBundle.load(Path(bundle_dir))
        self.answerer = OrganicAnswerer.build(load_organic(Path(organic_folder)), self.bundle)
        self.buddies = BuddyFinder(self.bundle, lambda seeds: ([], list(seeds)))
        self.config = config

    def rows(self, users: np.ndarray) -> pa.Table:
        c = self.config
        user_ids = self.bundle.users.ids
        out: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}

        def add(user: str, kind: str, rank: int, target: str, score: float, detail: Any) -> None:
            for key, value in zip(SCHEMA.names, (user, kind, rank, target, score), strict=False):
                out[key].append(value)
            out["detail"].append(json.dumps(detail, ensure_ascii=False))

        found = self.buddies.for_rows(users, c.k_buddies)
        picks = self.answerer.for_rows(users, c.k_playlists, c.serendipity)
        for row, buddies, playlists in zip(users.tolist(), found, picks, strict=True):
            user = str(user_ids[row])
            for rank, b in enumerate(buddies):
                detail = {"shared": b.shared, "discoveries": b.discoveries}
                add(user, "buddy", rank, b.user_id, b.similarity, detail)
            for rank, pick in enumerate(playlists):
                add(user, "playlist", rank, pick.playlist_id, 0.0, _detail(pick))
        return pa.Table.from_pydict(out, schema=SCHEMA)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self.rows(np.asarray(batch.column("id").to_numpy(), dtype=np.int64))


def _detail(pick: OrganicPick) -> dict[str, Any]:
    """``asdict(pick)``, without its deep copies (millions of picks)."""
    refs = {
        "familiar": [{"item_id": r.item_id, "name": r.name} for r in pick.familiar],
        "new": [{"item_id": r.item_id, "name": r.name} for r in pick.new],
    }
    figures = ("playlist_id", "name", "num_followers", "num_tracks")
    return {**{k: getattr(pick, k) for k in figures}, **refs, "buddies": pick.buddies}


def _metadata(version: str, config: TopPicksConfig) -> dict[bytes, bytes]:
    meta = {"organic_version": version, "computed_at": time.time(), **asdict(config)}
    return {TOP_PICKS_META: json.dumps(meta).encode()}


def _write(table: pa.Table, out: Path, version: str, config: TopPicksConfig) -> None:
    table = table.sort_by([("user_id", "ascending"), ("kind", "ascending"), ("rank", "ascending")])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(table.replace_schema_metadata(_metadata(version, config)), tmp)
    tmp.replace(out)


def _count(users: int, limit: int | None) -> int:
    if limit is not None and limit < 1:
        raise ConfigError("limit must be at least 1", field="limit", value=limit)
    return users if limit is None else min(users, limit)


def top_picks_local(
    bundle_dir: Path,
    organic_folder: Path,
    out: Path,
    config: TopPicksConfig = TopPicksConfig(),
    limit: int | None = None,
) -> TopPicksResult:
    """Every listener of the bundle (the first ``limit``: a benchmark's sample), in this
    process."""
    started = time.perf_counter()
    picker = _Picker(str(bundle_dir), str(organic_folder), config)
    n = _count(len(picker.bundle.users), limit)
    parts = [picker.rows(np.arange(s, min(s + BLOCK, n))) for s in range(0, n, BLOCK)]
    table = pa.concat_tables(parts) if parts else SCHEMA.empty_table()
    version = picker.answerer.artifact.version
    _write(table, out, version, config)
    return TopPicksResult(n, table.num_rows, time.perf_counter() - started, out, version)


def top_picks_ray(
    bundle_dir: Path,
    organic_folder: Path,
    out: Path,
    config: TopPicksConfig = TopPicksConfig(),
    cpus: int = 2,
    limit: int | None = None,
) -> TopPicksResult:
    """The same on Ray Data: blocks of listener rows to ``cpus`` actors. Uses the running Ray
    if there is one (and leaves it running), else starts a local one and shuts it after."""
    import ray

    started = time.perf_counter()
    n = _count(len(ModelBundle.load(bundle_dir).users), limit)
    version = load_organic(organic_folder).version
    own = not ray.is_initialized()
    if own:
        ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                 ignore_reinit_error=True, log_to_driver=False)  # fmt: skip
    try:
        ds = ray.data.range(n, override_num_blocks=max(1, min(cpus * 4, -(-n // BLOCK))))
        picked = ds.map_batches(
            _Picker,
            fn_constructor_args=(str(bundle_dir), str(organic_folder), config),
            batch_size=BLOCK,
            batch_format="pyarrow",
            concurrency=cpus,
            # Half a CPU each: the actors must leave room for the range's read tasks, or the
            # pipeline waits for CPUs that its own actors hold.
            num_cpus=0.5,
        )
        parts = ray.get(picked.to_arrow_refs())
        table = pa.concat_tables([p.cast(SCHEMA) for p in parts]) if parts else SCHEMA.empty_table()
    finally:
        if own:
            ray.shutdown()
    _write(table, out, version, config)
    return TopPicksResult(n, table.num_rows, time.perf_counter() - started, out, version)
