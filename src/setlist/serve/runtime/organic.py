"""The organic playlist ranker as served: the newest version under ``organic_dir``, loaded at
start-up and linked to the served artists bundle then (not on the first request).

A hot-swapped artists bundle gets its own answerer on first use (the linking takes about a
second on HetRec x the MPD subset); the last one is kept. Without a saved version the playlist
routes answer 503 naming ``organic_dir`` and how to make one. Nothing here raises at load.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from setlist.bundle import ModelBundle
from setlist.errors import UnavailableError
from setlist.index.organic_store import OrganicArtifact, latest_version, load_organic
from setlist.serve.answer.organic import OrganicAnswerer

log = logging.getLogger(__name__)


class OrganicServing:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.artifact: OrganicArtifact | None = None
        self.problem = "the organic playlist ranker is still loading"
        self._answerer: OrganicAnswerer | None = None
        self._lock = threading.Lock()

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
            if bundle is not None:
                self.answerer(bundle)
            log.info("organic playlists: version %s loaded", self.artifact.version)
        except Exception as exc:  # noqa: BLE001 - the service starts; the routes say why
            log.exception("organic playlist ranker not loaded")
            self.artifact = None
            self.problem = f"organic playlist ranker not loaded from {self.folder}: {exc}"

    def answerer(self, bundle: ModelBundle) -> OrganicAnswerer:
        """The answerer over ``bundle``; 503 naming ``organic_dir`` when nothing is loaded."""
        artifact = self.artifact
        if artifact is None:
            raise UnavailableError(self.problem, field="organic_dir")
        with self._lock:
            current = self._answerer
            if current is not None and current.bundle is bundle and current.artifact is artifact:
                return current
            current = OrganicAnswerer.build(artifact, bundle)
            self._answerer = current
            return current
