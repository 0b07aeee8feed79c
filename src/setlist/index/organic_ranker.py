"""The organic playlist ranker: LightGBM lambdarank over the (listener, playlist) features of
:mod:`setlist.index.organic`, and :func:`recommend_playlists`, which the API and the evaluation
both call.

A listener's training rows are their candidates; a candidate's label is how many of the
listener's held-out artists it holds (capped at :data:`MAX_LABEL`), so the ranker learns which
familiar-looking playlists lead to more of what the listener will play. ``serendipity`` (0..1)
then moves the learned order toward discovery: the final score is the standardised ranker score
plus ``serendipity`` x (standardised novelty - standardised familiarity), over the candidates.
A listener with no history gets the most-followed playlists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.errors import ConfigError, DataError
from setlist.index.organic import (
    FEATURES,
    LinkedPlaylists,
    Listener,
    candidates,
    features,
    listener_of_row,
    ones,
    top,
)

MAX_LABEL = 4
RANKER_FILE = "ranker.txt"
CONFIG_FILE = "ranker.json"


@dataclass(frozen=True)
class RankerConfig:
    """LightGBM's settings and the candidates' sizes."""

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    seed: int = 0
    n_candidates: int = 100  # per source: overlap and buddies
    n_buddies: int = 20
    # The buddies' source looks through their 50 strongest artists (0: all). On HetRec x the MPD
    # subset hit rate@10 0.7352 against 0.7364 with all; top picks at Last.fm-360K scale 1.8x
    # faster (benchmarks/organic_playlists.py, benchmarks/top_picks.py --sample 2000).
    taste_artists: int = 50

    def __post_init__(self) -> None:
        for name in ("n_estimators", "num_leaves", "min_child_samples", "n_candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"{name} must be at least 1", field=name, value=getattr(self, name)
                )
        if self.taste_artists < 0:
            raise ConfigError(
                "taste_artists must be 0 (all) or more", field="taste_artists",
                value=self.taste_artists,
            )  # fmt: skip
        if not 0 < self.learning_rate <= 1:
            raise ConfigError("learning_rate must be in (0, 1]", field="learning_rate")


@dataclass
class OrganicRanker:
    """A fitted lambdarank booster (or none: then the raw-overlap order)."""

    config: RankerConfig = field(default_factory=RankerConfig)
    booster: Any = None

    def fit(
        self,
        x: npt.NDArray[np.float64],
        y: npt.NDArray[np.float64],
        groups: list[int],
        weight: npt.NDArray[np.float64] | None = None,
    ) -> OrganicRanker:
        """Fit on rows ``x`` with graded labels ``y`` in listener groups of sizes ``groups``.

        ``weight`` is per row (default 1). Lambdarank's gradients are pairwise within a group,
        so LightGBM weighs each group as a whole, by the mean of its rows' weights (its query
        weight): inverse propensities weigh a listener's feedback group, not single rows."""
        import lightgbm as lgb

        if x.shape[1] != len(FEATURES):
            raise DataError(f"expected {len(FEATURES)} features, got {x.shape[1]}", field="x")
        if sum(groups) != len(x) or len(y) != len(x):
            raise DataError("groups must add up to the rows of x and y", field="groups")
        if weight is not None and (len(weight) != len(x) or not (weight >= 0).all()):
            raise DataError("weight must hold one non-negative value per row", field="weight")
        c = self.config
        model = lgb.LGBMRanker(
            objective="lambdarank",
            n_estimators=c.n_estimators,
            learning_rate=c.learning_rate,
            num_leaves=c.num_leaves,
            min_child_samples=c.min_child_samples,
            random_state=c.seed,
            n_jobs=1,
            verbose=-1,
        )
        model.fit(x, np.minimum(y, MAX_LABEL).astype(np.int64), group=groups, sample_weight=weight)
        self.booster = model.booster_
        return self

    def score(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Higher is better; without a booster, the raw overlap (feature 1)."""
        if self.booster is None:
            return np.asarray(x[:, FEATURES.index("overlap_artists")], dtype=np.float64)
        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))
        if self.booster is not None:
            (folder / RANKER_FILE).write_text(self.booster.model_to_string())

    @classmethod
    def load(cls, folder: Path) -> OrganicRanker:
        import lightgbm as lgb

        path = folder / CONFIG_FILE
        if not path.is_file():
            raise DataError(f"no organic ranker in {folder} (missing {CONFIG_FILE})", file=path)
        config = RankerConfig(**json.loads(path.read_text()))
        booster = None
        if (folder / RANKER_FILE).is_file():
            booster = lgb.Booster(model_str=(folder / RANKER_FILE).read_text())
        return cls(config, booster)


def labels(
    linked: LinkedPlaylists, heldout: npt.NDArray[np.float64], rows: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """How many of the held-out artists (``heldout`` > 0) each playlist of ``rows`` holds."""
    return np.asarray(linked.binary[rows] @ (heldout > 0).astype(np.float64), dtype=np.float64)


def training_rows(
    linked: LinkedPlaylists,
    visible: sp.csr_matrix,
    heldout: sp.csr_matrix,
    vectors: sp.csr_matrix,
    hubs: npt.NDArray[np.float64] | None,
    users: npt.NDArray[np.int64],
    config: RankerConfig,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], list[int]]:
    """Features, labels and group sizes for ``users`` (rows of ``visible``): each listener's
    candidates under their visible history, labelled by their held-out artists; listeners whose
    candidates are all alike (no positive, or all positive) teach nothing and are left out."""
    xs, ys, groups = [], [], []
    heard = ones(visible)
    for user in users.tolist():
        who = listener_of_row(visible, vectors, user, hubs, config.n_buddies, heard)
        owner, rows = candidates(linked, who, config.n_candidates, config.taste_artists)
        if len(rows) < 2:
            continue
        y = labels(linked, heldout[user].toarray().ravel(), rows)
        if (y > 0).all() or not (y > 0).any():
            continue
        xs.append(features(linked, who, owner, rows))
        ys.append(y)
        groups.append(len(rows))
    if not groups:
        raise DataError("no listener has candidates with and without held-out artists")
    return np.vstack(xs), np.concatenate(ys), groups


@dataclass(frozen=True)
class Feedback:
    """One listener's labelled playlists (rows of the linked playlists), from their events."""

    user: int  # row of the listeners' history
    playlists: npt.NDArray[np.int64]
    labels: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]


def feedback_rows(
    linked: LinkedPlaylists,
    history: sp.csr_matrix,
    vectors: sp.csr_matrix,
    hubs: npt.NDArray[np.float64] | None,
    feedback: list[Feedback],
    config: RankerConfig,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], list[int]]:
    """Features, labels, weights and group sizes of the listeners' own feedback: each listener's
    group is the playlists they acted on or were shown, described under their whole history.
    As in :func:`training_rows`, a listener whose labels are all alike teaches nothing."""
    xs, ys, ws, groups = [], [], [], []
    heard = ones(history)
    for f in feedback:
        if len(f.playlists) < 2 or len(np.unique(f.labels)) < 2:
            continue
        who = listener_of_row(history, vectors, f.user, hubs, config.n_buddies, heard)
        owner = np.zeros(len(f.playlists), dtype=np.int64)  # a block of one listener
        xs.append(features(linked, who, owner, f.playlists))
        ys.append(f.labels)
        ws.append(f.weights)
        groups.append(len(f.playlists))
    if not groups:
        empty = np.zeros((0, len(FEATURES)))
        return empty, np.zeros(0), np.zeros(0), []
    return np.vstack(xs), np.concatenate(ys), np.concatenate(ws), groups


def most_followed(linked: LinkedPlaylists, k: int) -> npt.NDArray[np.int64]:
    """The ``k`` most-followed playlists (ties: first in the catalogue)."""
    order = np.lexsort((np.arange(len(linked)), -linked.followers))
    return order[:k].astype(np.int64)


def _z(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else values * 0.0


def recommend_playlists(
    ranker: OrganicRanker,
    linked: LinkedPlaylists,
    who: Listener,
    k: int = 10,
    serendipity: float = 0.0,
) -> npt.NDArray[np.int64]:
    """The ``k`` playlists (rows of ``linked``) for a listener (a block of one), best first."""
    return recommend_block(ranker, linked, who, k, serendipity)[0]


def recommend_block(
    ranker: OrganicRanker,
    linked: LinkedPlaylists,
    who: Listener,
    k: int = 10,
    serendipity: float = 0.0,
) -> list[npt.NDArray[np.int64]]:
    """For each listener of the block, the ``k`` playlists (rows of ``linked``), best first;
    ``serendipity`` (0..1) trades familiarity for novelty. No history (or no candidate): the most
    followed. One ranker call for the whole block."""
    if not 0.0 <= serendipity <= 1.0:
        raise ConfigError("serendipity must be in 0..1", field="serendipity", value=serendipity)
    if k < 1:
        raise ConfigError("k must be at least 1", field="k", value=k)
    owner, rows = candidates(linked, who, ranker.config.n_candidates, ranker.config.taste_artists)
    x = features(linked, who, owner, rows)
    raw = ranker.score(x) if len(rows) else np.zeros(0)
    bounds = np.searchsorted(owner, np.arange(len(who) + 1))
    listened = np.diff(who.heard.indptr) > 0
    popular = most_followed(linked, k)
    out = []
    for i in range(len(who)):
        start, end = int(bounds[i]), int(bounds[i + 1])
        if not listened[i] or start == end:
            out.append(popular)
            continue
        mine = rows[start:end]
        score = _z(raw[start:end])
        if serendipity > 0:
            novelty = x[start:end, FEATURES.index("novelty_tracks")]
            familiarity = x[start:end, FEATURES.index("familiarity")]
            score = score + serendipity * (_z(novelty) - _z(familiarity))
        picked = mine[top(score - score.min() + 1.0, k, linked.followers[mine])]
        if len(picked) < k:  # too few candidates: fill with the most followed
            more = most_followed(linked, k + len(picked)).tolist()
            rest = [r for r in more if r not in set(picked.tolist())]
            picked = np.concatenate([picked, np.asarray(rest[: k - len(picked)], dtype=np.int64)])
        out.append(picked.astype(np.int64))
    return out
