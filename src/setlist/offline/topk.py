"""Top-k for every user of a bundle ("top picks for today"), written to Parquet.

Factor models are answered from a vector index in large query batches (faiss parallelises over
queries). Scoring every item for every user is out of reach at Last.fm-360K scale on two cores:
the product alone (359k x 300k x 64) takes over three minutes there, as long as ``implicit``'s
own loop. So ``recommend_all_local`` builds an index for this one job: IVF (exact scores within
the cells it probes), with ``nprobe`` raised until recall@k against exact search, measured on a
sample of the users, reaches ``min_recall``; that recall is part of the result. IVF rather than
the serving HNSW because deep lists (k = 100) are where a graph search loses most: at the same
time per user, HNSW found 0.87 of the exact top 100, IVF 0.96 (``benchmarks/serving.py``).
Small catalogues (up to ``exact_max_items``) are scored exactly.

Each user's heard items are dropped by over-fetching: users are grouped by how many items they
have heard, so a batch asks for ``k`` plus its largest history (capped; a user with a longer
history gets exact scoring instead). Other models use their own ``recommend`` in blocks. The
``ray`` backend splits the users over Ray Data actors, each loading the bundle once (its files
sent through Ray's object store) and searching the bundle's own index.

Every list goes through the service's ranking rules (:class:`setlist.serve.answer.block.
BlockAnswerer`: blocked items and tags, the per-tag cap, the new-item slot, as
``SETLIST_RANK_*`` sets them), from candidates searched deep enough for what the rules drop; a
user the block pass cannot settle is answered by ``ModelState.answer`` itself. No exploration:
top picks are the deterministic top k.

The Parquet file is long and dictionary-encoded: ``user_id``, ``rank`` (1..k), ``item_id``,
``score``, written block by block (memory stays bounded by one block of users).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.bundle import ModelBundle
from setlist.config import IndexConfig
from setlist.errors import ConfigError
from setlist.index import ExactIndex, VectorIndex, choose_kind, recall_at_k, tuned_index
from setlist.serve.answer.block import BlockAnswerer
from setlist.serve.answer.ranking import RankingConfig

BATCH = 16_384  # users per block: bounds memory; large enough for IVF's cell order to pay
MAX_OVERFETCH = 1024


@dataclass(frozen=True)
class TopKResult:
    users: int
    k: int
    seconds: float
    path: Path
    recall: float | None = None  # recall@k of the index used, against exact search (1: exact)
    index: str | None = None  # the index kind searched, None for a model's own ranking


def user_blocks(n_users: int, batch: int = BATCH) -> Iterator[IntArray]:
    for start in range(0, n_users, batch):
        yield np.arange(start, min(start + batch, n_users), dtype=np.int64)


def topk_rows(
    bundle: ModelBundle, rows: IntArray, k: int, index: VectorIndex | None = None
) -> tuple[IntArray, FloatArray]:
    """Top-k unheard item rows and scores for the given user rows (padded with -1 / -inf).

    Factor models search ``index`` (default: the bundle's own).
    """
    vectors = bundle.model.vectors()
    index = index if index is not None else bundle.index
    if vectors is None or index is None:
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
            ids, scores = _ann(bundle, index, users, rows[members], k, k + extra)
        out_ids[members], out_scores[members] = ids, scores
    return out_ids, out_scores


def _ann(
    bundle: ModelBundle, index: VectorIndex, users: FloatArray, rows: IntArray, k: int, fetch: int
) -> tuple[IntArray, FloatArray]:
    found, scores = index.search(users[rows], fetch)
    keep = (found >= 0) & ~_heard(bundle, rows, found)
    # Kept candidates first, in their (best-first) order; then the first k of each row.
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(keep, order, axis=1)
    ids = np.where(picked, np.take_along_axis(found, order, axis=1), -1)
    out = np.where(picked, np.take_along_axis(scores, order, axis=1), -np.inf)
    return ids.astype(np.int64), out.astype(np.float32)


def _heard(bundle: ModelBundle, rows: IntArray, found: IntArray) -> npt.NDArray[np.bool_]:
    """Which candidates each user has heard: one binary search over (user, item) keys.

    The CSR's rows, one after the other, with sorted columns, give sorted keys
    ``position * n_items + item``; the candidates' keys are looked up among them at once.
    """
    seen = bundle.seen
    n_items = np.int64(seen.shape[1])
    lo = seen.indptr[rows].astype(np.int64)
    counts = seen.indptr[rows + 1].astype(np.int64) - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros(found.shape, dtype=bool)
    starts = np.cumsum(counts) - counts  # where each user's items begin in the flat list
    flat = np.arange(total, dtype=np.int64) + np.repeat(lo - starts, counts)
    owner = np.repeat(np.arange(len(rows), dtype=np.int64), counts)
    keys = owner * n_items + seen.indices[flat]
    if not np.all(keys[1:] > keys[:-1]):  # a CSR with unsorted columns within a row
        keys.sort()
    wanted = np.arange(len(rows), dtype=np.int64)[:, None] * n_items + found
    at = np.minimum(np.searchsorted(keys, wanted), total - 1)
    return np.asarray((keys[at] == wanted) & (found >= 0))


def _exact(
    bundle: ModelBundle, users: FloatArray, rows: IntArray, k: int
) -> tuple[IntArray, FloatArray]:
    _, items = bundle.model.vectors() or (users, users)
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


def recommend_all_local(
    bundle: ModelBundle,
    k: int,
    out: Path,
    threads: int = 2,
    min_recall: float = 0.95,
    ranking: RankingConfig | None = None,
) -> TopKResult:
    """Every user's top-k with this process's threads; writes ``out`` (Parquet).

    Factor models search an index built for this job (see the module docstring); the result
    names it and gives the recall@k of the written lists against exact ranking, measured on a
    sample of users.
    """
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}", field="k")
    from setlist.index import set_search_threads

    set_search_threads(threads)
    started = time.perf_counter()
    with threadpool_limits(limits=threads, user_api="blas"):
        index = batch_index(bundle, k, min_recall)
        answerer = BlockAnswerer(bundle, ranking or RankingConfig())
        depth = answerer.depth(k)
        out.parent.mkdir(parents=True, exist_ok=True)
        writer: pq.ParquetWriter | None = None
        try:
            for rows in user_blocks(len(bundle.users)):
                found, found_scores = topk_rows(bundle, rows, depth, index)
                ids, scores = answerer.answer(rows, found, found_scores, k)
                table = to_table(bundle, rows, ids, scores)
                writer = writer or pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        seconds = time.perf_counter() - started
        recall = served_recall(bundle, k, index)
    kind = None if index is None else index.kind
    return TopKResult(len(bundle.users), k, seconds, out, recall, kind)


def batch_index(
    bundle: ModelBundle, k: int, min_recall: float, config: IndexConfig | None = None
) -> VectorIndex | None:
    """The index recommend-all searches (None: not a factor model, its own ranking is used).

    Tuned for recall at the depth a typical user's list is cut from: k plus the median number
    of heard items, which are dropped from it.
    """
    vectors = bundle.model.vectors()
    if vectors is None:
        return None
    users, items = vectors
    config = config or IndexConfig(ann="ivf", min_recall=min_recall, recall_queries=300)
    if choose_kind(len(items), config) == "exact":
        return ExactIndex(items)
    # Fewer, larger cells than serving's rule of thumb: a deep top-k probes many of them anyway.
    nlist = max(1, 2 ** round(math.log2(max(1.0, 2.0 * math.sqrt(len(items))))))
    heard = int(np.median(np.diff(bundle.seen.indptr))) if len(bundle.users) else 0
    depth = min(len(items), k + heard)
    index, _ = tuned_index(items, users, replace(config, kind="ivf"), depth, nlist=nlist)
    return index


def served_recall(
    bundle: ModelBundle, k: int, index: VectorIndex | None, sample: int = 300, seed: int = 0
) -> float | None:
    """Recall@k of ``topk_rows`` over ``index`` against exact ranking, on a sample of users."""
    if index is None or len(bundle.users) == 0:
        return None
    if isinstance(index, ExactIndex):
        return 1.0
    n = len(bundle.users)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False))
    found, _ = topk_rows(bundle, rows, k, index)
    exact, _ = bundle.model.recommend(rows, bundle.seen[rows], k=k, exclude_seen=True)
    return recall_at_k(found, exact)


def recommend_all_ray(
    bundle_dir: Path,
    k: int,
    out: Path,
    cpus: int = 2,
    ranking: RankingConfig | None = None,
    address: str | None = None,
    batch: int = BATCH,
) -> TopKResult:
    """The same with Ray Data: user blocks as a dataset, one bundle per actor, Parquet out.

    Ray is joined at ``address`` (a cluster: one actor per CPU it offers), or reused, or
    started locally with ``cpus`` CPUs (:mod:`setlist.data.ray_cluster`). The bundle's files
    travel once through Ray's object store and the lists come back to the driver, which
    writes ``out``: a cluster needs no storage shared with the driver.
    """
    import ray

    from setlist.data.ray_cluster import cluster_cpus, ray_session

    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}", field="k")
    bundle = ModelBundle.load(bundle_dir)
    n_users = len(bundle.users)
    started = time.perf_counter()
    with ray_session(address, cpus):
        actors = cluster_cpus() if address else cpus
        # The user rows go in from the driver (no read tasks): the actors may take every CPU.
        blocks = [pa.table({"id": rows}) for rows in user_blocks(n_users, batch)]
        users: Any = ray.data.from_arrow(blocks or [pa.table({"id": pa.array([], pa.int64())})])
        packed = [ray.put(_pack(bundle_dir))]  # in a list: the actors fetch it themselves
        ranked: Any = users.map_batches(
            _RayTopK,
            fn_constructor_args=(packed, k, ranking or RankingConfig()),
            batch_size=batch,
            batch_format="pyarrow",
            concurrency=max(1, min(actors, len(blocks))),
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        # The driver writes what the actors return: only the bundle must be seen by every node.
        with pq.ParquetWriter(out, RAY_SCHEMA) as writer:
            for table in ranked.iter_batches(batch_size=None, batch_format="pyarrow"):
                writer.write_table(table.cast(RAY_SCHEMA))
    return TopKResult(n_users, k, time.perf_counter() - started, out)


# Plain strings: dictionaries differ per block and Ray concatenates blocks.
RAY_SCHEMA = pa.schema(
    [("user_id", pa.string()), ("rank", pa.int16()),
     ("item_id", pa.string()), ("score", pa.float32())]
)  # fmt: skip


def _pack(folder: Path) -> dict[str, bytes]:
    """A bundle folder's files by relative path (what the actors rebuild it from)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


class _RayTopK:
    """A Ray Data actor: loads the bundle once, answers user-row batches."""

    def __init__(self, packed: list[Any], k: int, ranking: RankingConfig) -> None:
        import tempfile

        import ray

        from setlist.index import set_search_threads

        set_search_threads(1)
        # Kept for the actor's life: a model may read its files lazily.
        self.folder = tempfile.TemporaryDirectory(prefix="setlist-bundle-")
        root = Path(self.folder.name)
        for name, data in ray.get(packed[0]).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        self.bundle = ModelBundle.load(root)
        self.k = k
        self.answerer = BlockAnswerer(self.bundle, ranking)

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = np.asarray(batch.column("id").to_numpy(), dtype=np.int64)
        found, found_scores = topk_rows(self.bundle, rows, self.answerer.depth(self.k))
        ids, scores = self.answerer.answer(rows, found, found_scores, self.k)
        return to_table(self.bundle, rows, ids, scores).cast(RAY_SCHEMA)
