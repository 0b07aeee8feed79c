"""Top-k for every user of a bundle ("top picks for today"), written to Parquet.

Factor models are answered from the bundle's vector index in large query batches (faiss
parallelises over queries); each user's heard items are dropped by over-fetching: users are
grouped by how many items they have heard, so a batch asks for ``k`` plus its largest history
(capped; a user with a longer history gets exact scoring instead). Other models use their own
``recommend`` in blocks. The ``ray`` backend splits the users over Ray Data tasks, each loading
the bundle from its folder once.

The Parquet file is long and dictionary-encoded: ``user_id``, ``rank`` (1..k), ``item_id``,
``score``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from setlist.errors import ConfigError
from setlist.index.build import factor_vectors
from setlist.models.base import FloatArray, IntArray, top_k
from setlist.models.bundle import ModelBundle

BATCH = 8192
MAX_OVERFETCH = 1024


@dataclass(frozen=True)
class TopKResult:
    users: int
    k: int
    seconds: float
    path: Path


def user_blocks(n_users: int, batch: int = BATCH) -> Iterator[IntArray]:
    for start in range(0, n_users, batch):
        yield np.arange(start, min(start + batch, n_users), dtype=np.int64)


def topk_rows(bundle: ModelBundle, rows: IntArray, k: int) -> tuple[IntArray, FloatArray]:
    """Top-k unheard item rows and scores for the given user rows (padded with -1 / -inf)."""
    vectors = factor_vectors(bundle.model)
    if vectors is None or bundle.index is None:
        return bundle.model.recommend(rows, bundle.seen[rows], k=k, exclude_seen=True)
    users, _ = vectors
    seen = bundle.seen
    counts = np.diff(seen.indptr)[rows]
    out_ids = np.full((len(rows), k), -1, dtype=np.int64)
    out_scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    # Group by history length (powers of two), so each group over-fetches about what it needs.
    buckets = np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)
    for bucket in np.unique(buckets).tolist():
        members = np.flatnonzero(buckets == bucket)
        extra = int(counts[members].max())
        if extra > MAX_OVERFETCH:  # rare long histories: exact scoring
            ids, scores = _exact(bundle, users, rows[members], k)
        else:
            ids, scores = _ann(bundle, users, rows[members], k, k + extra)
        out_ids[members], out_scores[members] = ids, scores
    return out_ids, out_scores


def _ann(
    bundle: ModelBundle, users: FloatArray, rows: IntArray, k: int, fetch: int
) -> tuple[IntArray, FloatArray]:
    assert bundle.index is not None
    found, scores = bundle.index.search(users[rows], fetch)
    seen = bundle.seen
    ids = np.full((len(rows), k), -1, dtype=np.int64)
    out = np.full((len(rows), k), -np.inf, dtype=np.float32)
    for i, row in enumerate(rows.tolist()):
        heard = seen.indices[seen.indptr[row] : seen.indptr[row + 1]]
        keep = (found[i] >= 0) & ~np.isin(found[i], heard)
        got = found[i][keep][:k]
        ids[i, : len(got)], out[i, : len(got)] = got, scores[i][keep][:k]
    return ids, out


def _exact(
    bundle: ModelBundle, users: FloatArray, rows: IntArray, k: int
) -> tuple[IntArray, FloatArray]:
    _, items = factor_vectors(bundle.model) or (users, users)
    dense = users[rows] @ items.T
    sub = bundle.seen[rows].tocoo()
    dense[sub.row, sub.col] = -np.inf
    return top_k(np.asarray(dense, dtype=np.float32), k)


def to_table(bundle: ModelBundle, rows: IntArray, ids: IntArray, scores: FloatArray) -> pa.Table:
    """Long Parquet-ready table, ids dictionary-encoded (no string per row is built)."""
    k = ids.shape[1]
    keep = (ids >= 0).ravel()
    user_idx = np.repeat(rows, k)[keep].astype(np.int32)
    item_idx = ids.ravel()[keep].astype(np.int32)
    ranks = np.tile(np.arange(1, k + 1, dtype=np.int16), len(rows))[keep]
    return pa.table(
        {
            "user_id": pa.DictionaryArray.from_arrays(user_idx, pa.array(bundle.users.ids)),
            "rank": pa.array(ranks),
            "item_id": pa.DictionaryArray.from_arrays(item_idx, pa.array(bundle.items.ids)),
            "score": pa.array(scores.ravel()[keep].astype(np.float32)),
        }
    )


def recommend_all_local(bundle: ModelBundle, k: int, out: Path, threads: int = 2) -> TopKResult:
    """Every user's top-k with this process's threads; writes ``out`` (Parquet)."""
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}", field="k")
    from setlist.index import set_search_threads

    set_search_threads(threads)
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    writer: pq.ParquetWriter | None = None
    try:
        for rows in user_blocks(len(bundle.users)):
            ids, scores = topk_rows(bundle, rows, k)
            table = to_table(bundle, rows, ids, scores)
            writer = writer or pq.ParquetWriter(out, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return TopKResult(len(bundle.users), k, time.perf_counter() - started, out)


def recommend_all_ray(bundle_dir: Path, k: int, out: Path, cpus: int = 2) -> TopKResult:
    """The same with Ray Data: user blocks as a dataset, one bundle per actor, Parquet out."""
    import ray

    bundle = ModelBundle.load(bundle_dir)
    n_users = len(bundle.users)
    started = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             ignore_reinit_error=True, log_to_driver=False)  # fmt: skip
    try:
        ds = ray.data.range(n_users, override_num_blocks=max(cpus, n_users // BATCH))
        ranked = ds.map_batches(
            _RayTopK,
            fn_constructor_args=(str(bundle_dir), k),
            batch_size=BATCH,
            batch_format="pyarrow",
            concurrency=cpus,
        )
        if out.exists():
            out.unlink()
        ranked.write_parquet(str(out.with_suffix("")) + ".parts")
        _merge_parts(Path(str(out.with_suffix("")) + ".parts"), out)
    finally:
        ray.shutdown()
    return TopKResult(n_users, k, time.perf_counter() - started, out)


class _RayTopK:
    """A Ray Data actor: loads the bundle once, answers user-row batches."""

    def __init__(self, bundle_dir: str, k: int) -> None:
        from setlist.index import set_search_threads

        set_search_threads(1)
        self.bundle = ModelBundle.load(Path(bundle_dir))
        self.k = k

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = np.asarray(batch.column("id").to_numpy(), dtype=np.int64)
        ids, scores = topk_rows(self.bundle, rows, self.k)
        table = to_table(self.bundle, rows, ids, scores)
        # Plain strings: dictionaries differ per block and Ray concatenates blocks.
        return table.cast(
            pa.schema(
                [("user_id", pa.string()), ("rank", pa.int16()),
                 ("item_id", pa.string()), ("score", pa.float32())]
            )
        )  # fmt: skip


def _merge_parts(parts: Path, out: Path) -> None:
    import shutil

    table: Any = pq.read_table(parts)
    pq.write_table(table, out)
    shutil.rmtree(parts, ignore_errors=True)
