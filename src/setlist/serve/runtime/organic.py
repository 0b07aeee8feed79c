"""The organic playlist ranker as served: the newest version under ``organic_dir``, loaded at
start-up and linked to the served artists bundle then (not on the first request). A watcher
looks every ``swap_interval_s`` for a newer version (the loop saves one when it retrains on
playlist feedback), builds its answerer off the request path and swaps it in by one
assignment; a version that fails to load is logged, skipped, and the old one keeps serving.

A hot-swapped artists bundle gets its own answerer on first use (the linking takes about a
second on HetRec x the MPD subset); the last one is kept. Without a saved version the playlist
routes answer 503 naming ``organic_dir`` and how to make one. Nothing here raises at load.

The ``setlist top-picks`` table (``top_picks_path``), when present, is read at load too: a
listener's playlists are answered from it while it is fresh (younger than
``top_picks_max_age_s``), made by the loaded version with the asked serendipity and holds at
least ``k`` of them; any other request is computed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from setlist.bundle import ModelBundle
from setlist.errors import UnavailableError
from setlist.index.organic_store import (
    TOP_PICKS_META,
    OrganicArtifact,
    latest_version,
    load_organic,
)
from setlist.serve.answer.organic import OrganicAnswerer, OrganicPick, Ref
from setlist.serve.runtime import heap
from setlist.serve.runtime.periodic import Every

log = logging.getLogger(__name__)


class TopPicks:
    """The playlists of a top-picks table by user id, with the table's metadata."""

    def __init__(self, path: Path) -> None:
        table = pq.read_table(path, columns=["user_id", "kind", "rank", "detail"])
        self.meta: dict[str, Any] = json.loads((table.schema.metadata or {})[TOP_PICKS_META])
        self.picks: dict[str, list[str]] = {}
        rows = table.filter(pc.equal(table.column("kind"), "playlist"))
        rows = rows.sort_by([("user_id", "ascending"), ("rank", "ascending")])
        users, details = rows.column("user_id").to_pylist(), rows.column("detail").to_pylist()
        for user, detail in zip(users, details, strict=True):
            self.picks.setdefault(user, []).append(detail)

    def get(
        self, user_id: str, k: int, serendipity: float, version: str, max_age_s: float
    ) -> list[OrganicPick] | None:
        m = self.meta
        fresh = time.time() - float(m["computed_at"]) < max_age_s
        same = m["organic_version"] == version and float(m["serendipity"]) == serendipity
        found = self.picks.get(user_id)
        if not (fresh and same and found is not None and k <= int(m["k_playlists"])):
            return None
        return [_pick(json.loads(d)) for d in found[:k]]


def _pick(d: dict[str, Any]) -> OrganicPick:
    return OrganicPick(
        playlist_id=d["playlist_id"],
        name=d["name"],
        num_followers=d["num_followers"],
        num_tracks=d["num_tracks"],
        familiar=[Ref(**r) for r in d["familiar"]],
        new=[Ref(**r) for r in d["new"]],
        buddies=d["buddies"],
    )


class OrganicServing:
    def __init__(
        self,
        folder: Path,
        top_picks: Path | None = None,
        max_age_s: float = 0.0,
        gc_freeze: bool = True,
    ) -> None:
        self.folder = folder
        self.gc_freeze = gc_freeze
        self.top_picks_file = top_picks
        self.max_age_s = max_age_s
        self.top_picks: TopPicks | None = None
        self.artifact: OrganicArtifact | None = None
        self.problem = "the organic playlist ranker is still loading"
        self._answerer: OrganicAnswerer | None = None
        self._lock = threading.Lock()
        self._refused: set[Path] = set()
        self._every: Every | None = None

    def load(self, bundle: ModelBundle | None) -> None:
        """Read the newest version and warm it on ``bundle``; a failure is kept as the problem."""
        try:
            found = latest_version(self.folder)
            if found is None:
                self.problem = (
                    f"no organic playlist ranker under organic_dir {self.folder} "
                    "(run `setlist organic train`)"
                )
                return
            self.artifact = load_organic(found)
            self._load_top_picks()
            if bundle is not None:
                self.answerer(bundle)
            log.info("organic playlists: version %s loaded", self.artifact.version)
        except Exception as exc:  # noqa: BLE001 - the service starts; the routes say why
            log.exception("organic playlist ranker not loaded")
            self.artifact = None
            self.problem = f"organic playlist ranker not loaded from {self.folder}: {exc}"

    def refresh(self, bundle: ModelBundle | None) -> bool:
        """Swap in the newest version when it is not the one serving; True when swapped."""
        found = latest_version(self.folder)
        loaded = self.artifact.folder if self.artifact is not None else None
        if found is None or found == loaded or found in self._refused:
            return False
        try:
            artifact = load_organic(found)
            answerer = OrganicAnswerer.build(artifact, bundle) if bundle is not None else None
        except Exception:  # noqa: BLE001 - the old version keeps serving
            log.exception("organic version %s refused", found.name)
            self._refused.add(found)
            return False
        with self._lock:
            self.artifact = artifact
            if answerer is not None:
                self._answerer = answerer
        log.info("organic playlists: now version %s (was %s)", artifact.version, loaded)
        heap.settle(self.gc_freeze)
        return True

    def watch(self, interval_s: float, bundle: Callable[[], ModelBundle | None]) -> None:
        """:meth:`refresh` every ``interval_s`` in a daemon thread until :meth:`stop`."""
        if self._every is None:
            self._every = Every(
                "setlist-organic-watch", "organic version check", lambda: self.refresh(bundle())
            )
            self._every.start(interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._every is not None:
            self._every.stop(timeout_s)

    def _load_top_picks(self) -> None:
        path = self.top_picks_file
        if path is None or not path.is_file():
            return
        try:
            self.top_picks = TopPicks(path)
            log.info("top picks: %d listeners from %s", len(self.top_picks.picks), path)
        except Exception:  # noqa: BLE001 - a bad table only means computing on request
            log.exception("top picks table %s not read; playlists are computed on request", path)
            self.top_picks = None

    def stored(self, user_id: str, k: int, serendipity: float) -> list[OrganicPick] | None:
        """The listener's playlists from the top-picks table, or None where it cannot answer."""
        table, artifact = self.top_picks, self.artifact
        if table is None or artifact is None:
            return None
        return table.get(user_id, k, serendipity, artifact.version, self.max_age_s)

    def built(self, bundle: ModelBundle) -> OrganicAnswerer | None:
        """The answerer over ``bundle`` when it is built already (never builds; None else)."""
        current, artifact = self._answerer, self.artifact
        if current is not None and current.bundle is bundle and current.artifact is artifact:
            return current
        return None

    def answerer(self, bundle: ModelBundle) -> OrganicAnswerer:
        """The answerer over ``bundle``; 503 naming ``organic_dir`` when nothing is loaded."""
        artifact = self.artifact
        if artifact is None:
            raise UnavailableError(self.problem, field="organic_dir")
        with self._lock:
            current = self.built(bundle)
            if current is None:
                current = self._answerer = OrganicAnswerer.build(artifact, bundle)
            return current
