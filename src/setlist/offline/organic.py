"""Train and judge the organic playlist ranker on HetRec Last.fm listeners x MPD playlists, and
keep it as a versioned folder that the API loads.

Listeners are split in two (train / test listeners), and each listener's artists by the
user-content split of :mod:`setlist.evaluate.organic`. The ranker learns from the train
listeners' candidates labelled by their held-out artists; the test listeners judge it against
the two references. The folder (``<organic_dir>/<version>/``) holds the ranker, the playlists
with their artists by linking key (linked again to the served catalogue's names at load), and
``meta.json`` with the figures and the champion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.data.sources import SourceConfig
from setlist.errors import DataError
from setlist.evaluate.organic import (
    ContentSplit,
    OrganicEvaluation,
    content_split,
    evaluate_organic,
    feedback_auc,
)
from setlist.evaluate.stats import PairedComparison, compare_paired
from setlist.index.buddies import hubness, taste_vectors
from setlist.index.organic import LinkedPlaylists, PlaylistTable, link, matched_share
from setlist.index.organic_ranker import (
    Feedback,
    OrganicRanker,
    RankerConfig,
    feedback_rows,
    training_rows,
)
from setlist.index.organic_store import OrganicArtifact, save_organic
from setlist.registry.gate import MIN_USERS


@dataclass(frozen=True)
class OrganicConfig:
    test_listeners: float = 0.3  # share of listeners that only judge
    heldout: float = 0.2  # share of each listener's artists held out
    seed: int = 0
    k: int = 10
    max_train_listeners: int | None = None  # a cap for quick runs
    ranker: RankerConfig = RankerConfig()


@dataclass
class OrganicResult:
    ranker: OrganicRanker
    table: PlaylistTable
    evaluation: OrganicEvaluation
    figures: dict[str, float]  # matched share, linked artists, sizes
    meta: dict[str, Any] = field(default_factory=dict)  # kept in the version's meta.json

    @property
    def champion(self) -> str:
        return self.evaluation.champion

    def metrics(self) -> dict[str, float]:
        return {**self.figures, **self.evaluation.summary()}


@dataclass(frozen=True)
class Setup:
    """What one training and its judging share: the playlists linked to the artists, the
    content split, the visible taste vectors and the two listener sets (rows)."""

    linked: LinkedPlaylists
    split: ContentSplit
    vectors: sp.csr_matrix
    hubs: npt.NDArray[np.float64]
    train: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]


def setup(
    history: sp.csr_matrix, artist_names: list[str], table: PlaylistTable, config: OrganicConfig
) -> Setup:
    """The split of ``history`` (listeners x artists) that :func:`train_organic` fits and judges
    on; the same ``config`` gives the same split."""
    if history.shape[1] != len(artist_names):
        raise DataError(
            f"history has {history.shape[1]} artists but {len(artist_names)} names",
            field="artist_names",
        )
    linked = link(table, artist_names)
    split = content_split(history, config.heldout, config.seed)
    vectors = taste_vectors(split.visible)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(history.shape[0])
    n_test = max(1, int(round(config.test_listeners * len(order))))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    if config.max_train_listeners is not None:
        train = train[: config.max_train_listeners]
    return Setup(linked, split, vectors, hubness(vectors), train, test)


def train_organic(
    history: sp.csr_matrix,
    artist_names: list[str],
    table: PlaylistTable,
    config: OrganicConfig = OrganicConfig(),
    feedback: list[Feedback] | None = None,
) -> OrganicResult:
    """Fit the ranker on the train listeners and judge it on the test listeners.

    ``feedback`` (listeners' labelled playlists, :func:`feedback_of`) adds each train listener's
    own feedback as one more group of theirs; test listeners' feedback is never trained on."""
    return fit_and_judge(setup(history, artist_names, table, config), history, table, config,
                         feedback)  # fmt: skip


def fit_and_judge(
    s: Setup,
    history: sp.csr_matrix,
    table: PlaylistTable,
    config: OrganicConfig,
    feedback: list[Feedback] | None = None,
) -> OrganicResult:
    """:func:`train_organic` on a ready :class:`Setup`."""
    x, y, groups = training_rows(
        s.linked, s.split.visible, s.split.heldout, s.vectors, s.hubs, s.train, config.ranker
    )
    weight = np.ones(len(y))
    figures = {
        "matched_share": matched_share(history, s.linked),
        "linked_artists": s.linked.linked_artists,
        "playlists": float(len(s.linked)),
        "listeners": float(history.shape[0]),
        "train_listeners": float(len(groups)),
        "training_rows": float(len(y)),
    }
    if feedback:
        train = set(s.train.tolist())
        fx, fy, fw, fg = feedback_rows(
            s.linked, s.split.visible, s.vectors, s.hubs,
            [f for f in feedback if f.user in train], config.ranker,
        )  # fmt: skip
        x, y, weight = np.vstack([x, fx]), np.concatenate([y, fy]), np.concatenate([weight, fw])
        groups = groups + fg
        figures.update(feedback_listeners=float(len(fg)), feedback_rows=float(len(fy)))
    ranker = OrganicRanker(config.ranker).fit(x, y, groups, weight)
    evaluation = evaluate_organic(ranker, s.linked, s.split, s.vectors, s.hubs, s.test, config.k)
    figures["test_listeners"] = float(len(evaluation.users))
    return OrganicResult(ranker, table, evaluation, figures)


def feedback_of(
    labels: pl.DataFrame, user_ids: Sequence[str], linked: LinkedPlaylists
) -> list[Feedback]:
    """:func:`setlist.events.playlist_feedback.playlist_labels` rows as :class:`Feedback` per
    listener, over history rows (``user_ids[row]``) and playlist rows; pairs whose listener or
    playlist is unknown here are left out."""
    users = {str(u): i for i, u in enumerate(user_ids)}
    playlists = {str(p): i for i, p in enumerate(linked.ids.tolist())}
    out = []
    for (user_id,), rows in labels.group_by("user_id", maintain_order=True):
        user = users.get(str(user_id))
        found = [playlists.get(p, -1) for p in rows.get_column("playlist_id").to_list()]
        keep = np.asarray(found, dtype=np.int64) >= 0
        if user is None or not keep.any():
            continue
        out.append(
            Feedback(
                user,
                np.asarray(found, dtype=np.int64)[keep],
                rows.get_column("label").to_numpy()[keep].astype(np.float64),
                rows.get_column("weight").to_numpy()[keep].astype(np.float64),
            )
        )
    return out


def save_result(result: OrganicResult, organic_dir: Path, config: OrganicConfig) -> Path:
    """Keep ``result`` as a new version folder under ``organic_dir``; returns the folder."""
    meta = {
        **result.meta,
        "champion": result.champion,
        "metrics": result.metrics(),
        "config": {k: v for k, v in asdict(config).items() if k != "ranker"},
    }
    return save_organic(organic_dir, result.ranker, result.table, meta)


@dataclass
class OrganicRetrain:
    """A ranker retrained with feedback, judged against the version serving now."""

    result: OrganicResult
    current: OrganicArtifact
    comparison: PairedComparison  # new - current: hit rate of what each serves (content split)
    feedback: PairedComparison | None  # new - current: feedback AUC of test listeners (enough)
    figures: dict[str, float]

    @property
    def accepted(self) -> bool:
        """The gate, live evidence first: refused when significantly worse on the test
        listeners' own feedback; significantly worse on the content split only when that
        feedback does not prove it significantly better. The content split is an offline proxy
        for what a listener will play; their follows and skips of the playlists shown are the
        thing itself (as the artists' loop judges on what listeners discovered lately)."""
        if self.feedback is not None and self.feedback.significantly_worse():
            return False
        if self.comparison.significantly_worse():
            return self.feedback is not None and self.feedback.significantly_better()
        return True


def retrain_organic(
    history: sp.csr_matrix,
    artist_names: list[str],
    user_ids: Sequence[str],
    current: OrganicArtifact,
    labels: pl.DataFrame,
    config: OrganicConfig = OrganicConfig(),
) -> OrganicRetrain:
    """Retrain on ``current``'s playlists with the listeners' playlist feedback (``labels``,
    from :func:`setlist.events.playlist_feedback.playlist_labels`) and judge the new version
    against ``current`` on the same test listeners: each side's served order (its champion) on
    the content split's hit rate, and each ranker's feedback AUC (how often a followed or
    played playlist outscores one skipped or only shown, per test listener whose feedback was
    never trained on), both by the gate's paired test, which needs ``MIN_USERS`` listeners
    with feedback (:attr:`OrganicRetrain.accepted` decides)."""
    s = setup(history, artist_names, current.table, config)
    feedback = feedback_of(labels, user_ids, s.linked)
    result = fit_and_judge(s, history, current.table, config, feedback)
    users = np.asarray(result.evaluation.users, dtype=np.int64)
    before = evaluate_organic(current.ranker, s.linked, s.split, s.vectors, s.hubs, users, config.k)
    new_hits = result.evaluation.values[result.champion]["hit_rate"]
    old_hits = before.values[current.champion]["hit_rate"]
    comparison = compare_paired(new_hits, old_hits)
    test = set(s.test.tolist())
    held = [f for f in feedback if f.user in test]
    auc_new = feedback_auc(result.ranker, s.linked, s.split.visible, s.vectors, s.hubs, held)
    auc_old = feedback_auc(current.ranker, s.linked, s.split.visible, s.vectors, s.hubs, held)
    live = compare_paired(auc_new, auc_old) if len(auc_new) >= MIN_USERS else None
    figures = {
        "hit_rate.new": float(np.mean(new_hits)) if new_hits else float("nan"),
        "hit_rate.current": float(np.mean(old_hits)) if old_hits else float("nan"),
        "hit_rate.diff": comparison.diff.mean,
        "hit_rate.p_value": comparison.p_value,
        "feedback_pairs": float(len(labels)),
        "feedback_test_listeners": float(len(auc_new)),
        "feedback_auc.new": float(np.mean(auc_new)) if auc_new else float("nan"),
        "feedback_auc.current": float(np.mean(auc_old)) if auc_old else float("nan"),
    }
    if live is not None:
        figures.update({"feedback_auc.diff": live.diff.mean, "feedback_auc.p_value": live.p_value})
    until = labels.get_column("ts_us").max() if labels.height else None
    result.meta = {
        "retrained_from": current.version,
        "feedback_until_us": int(until) if until is not None else None,  # type: ignore[arg-type]
        "retrain": figures,
    }
    return OrganicRetrain(result, current, comparison, live, figures)


def load_inputs(sources: SourceConfig) -> tuple[sp.csr_matrix, list[str], PlaylistTable]:
    """HetRec listeners (plays over artists, artist names) and the MPD playlists, fetched
    through ``sources`` (the mirror, the cache or the official source)."""
    from setlist.data.loaders import load
    from setlist.data.playlists import MPD_SOURCE, load_playlist_source
    from setlist.matrix import build_matrix

    dataset, _ = load("hetrec-lastfm-2k", sources)
    matrix = build_matrix(dataset.interactions)
    names = dict(dataset.items.select("item", "name").iter_rows())
    artist_names = [str(names.get(i) or "") for i in matrix.items.ids.tolist()]
    playlists, _ = load_playlist_source(MPD_SOURCE, sources)
    table = PlaylistTable.from_mpd(playlists.playlists, playlists.tracks, playlists.playlist_tracks)
    return sp.csr_matrix(matrix.csr, dtype=np.float64), artist_names, table
