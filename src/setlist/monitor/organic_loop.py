"""The organic playlist ranker's turn in the loop: retrain it on playlist feedback once enough
has come in, and keep the new version only if it is no worse than the one serving.

Each :meth:`setlist.monitor.loop.Loop.tick` asks :func:`organic_turn` after its own decision.
Nothing happens until ``min_feedback`` playlist actions (follow, play, skip) are newer than the
serving version's ``feedback_until_us`` (a version made by ``setlist organic train`` has none:
all feedback counts); ``setlist retrain`` asks with ``force`` and retrains on any feedback.

A retraining (:func:`setlist.offline.organic.retrain_organic`) reads the base listening merged
with the events (the listeners the service knows), the serving version's playlists, and the
events' labels (:mod:`setlist.events.playlist_feedback`). It is judged against the serving
version on the same test listeners by the gate's paired test; a version significantly worse
there is refused (nothing is saved), any other is saved under ``organic_dir``, where the
service's watcher (:class:`setlist.serve.runtime.organic.OrganicServing`) picks it up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from setlist.data.schema import Dataset
from setlist.events.playlist_feedback import actions_since, playlist_labels
from setlist.events.training import merge_events
from setlist.index.organic_store import META_FILE, OrganicArtifact, latest_version, load_organic
from setlist.matrix import build_matrix
from setlist.offline.organic import OrganicConfig, retrain_organic, save_result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OrganicLoopConfig:
    """Where the organic versions live and how much feedback makes a retraining."""

    folder: Path
    min_feedback: int = 50


@dataclass
class OrganicDecision:
    """What the organic turn decided: ``saved``, ``refused`` or ``failed``, and why."""

    outcome: str
    reason: str
    version: str | None = None  # the saved version (saved), else the one serving
    figures: dict[str, Any] = field(default_factory=dict)


def listening(base: Dataset, events: pl.DataFrame) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """Base listening merged with the events: plays (listeners x artists), artist names and
    listener ids, as the organic ranker reads them."""
    merged, _ = merge_events(base, events)
    matrix = build_matrix(merged.interactions)
    names = dict(merged.items.select("item", "name").iter_rows())
    artist_names = [str(names.get(i) or "") for i in matrix.items.ids.tolist()]
    history = sp.csr_matrix(matrix.csr, dtype=np.float64)
    return history, artist_names, matrix.users.ids.tolist()


def config_of(current: OrganicArtifact) -> OrganicConfig:
    """The serving version's own settings (split, seed, ranker), so that the retraining is
    judged on the listeners and held-out artists the serving version was judged on."""
    saved = current.meta.get("config", {})
    known = {f.name for f in fields(OrganicConfig)} - {"ranker"}
    return OrganicConfig(
        **{k: v for k, v in saved.items() if k in known}, ranker=current.ranker.config
    )


def organic_turn(
    cfg: OrganicLoopConfig,
    base: Callable[[], Dataset],
    events: pl.DataFrame,
    force: bool = False,
) -> OrganicDecision | None:
    """Retrain the organic ranker when enough feedback is new (see the module doc); None when
    there is nothing to do (no saved version, or too little new feedback)."""
    found = latest_version(cfg.folder)
    if found is None:
        return None
    meta = json.loads((found / META_FILE).read_text())  # each tick reads only this
    fresh = actions_since(events, int(meta.get("feedback_until_us") or 0))
    if fresh == 0 or (fresh < cfg.min_feedback and not force):
        return None
    current = load_organic(found)
    try:
        config = config_of(current)
        history, names, users = listening(base(), events)
        retrained = retrain_organic(history, names, users, current, playlist_labels(events), config)
    except Exception as exc:  # the serving version stays; the decision says why
        log.exception("organic retraining failed")
        return OrganicDecision(
            "failed", f"organic retraining failed: {exc}", current.version, {"feedback": fresh}
        )
    figures: dict[str, Any] = {"feedback": fresh, **retrained.figures}
    c = retrained.comparison
    versus = (
        f"hit rate@{config.k} {c.candidate_mean:.4f} vs {c.reference_mean:.4f} (p={c.p_value:.2g})"
    )
    if not retrained.accepted:
        reason = f"{fresh} new playlist actions; refused: worse than {current.version}: {versus}"
        return OrganicDecision("refused", reason, current.version, figures)
    folder = save_result(retrained.result, cfg.folder, config)
    reason = (
        f"{fresh} new playlist actions; saved {folder.name} (serves {retrained.result.champion}) "
        f"over {current.version}: {versus}"
    )
    return OrganicDecision("saved", reason, folder.name, figures)
