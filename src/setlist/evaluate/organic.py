"""Organic playlists judged on a user-content split: part of each listener's artists is held out,
and a recommended playlist is a hit when it holds held-out artists.

Per listener and slate of ``k`` playlists: hit rate@k (share of the slate holding a held-out
artist), discovery recall@k (share of the listener's held-out artists found in some playlist that
the slate covers), novelty (mean share of a playlist's tracks by artists the listener has not
heard) and diversity (distinct catalogue artists over the slate). The ranker and two references
computed in the same run, the most-followed playlists and playlists ordered by raw overlap, are
compared by the gate's paired test (:func:`setlist.evaluate.stats.compare_paired`) on hit rate:
the ranker is champion only when significantly better than both, else the better reference is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.errors import ConfigError
from setlist.evaluate.stats import PairedComparison, compare_paired
from setlist.index.organic import (
    LinkedPlaylists,
    Listener,
    features,
    listener_of_row,
    ones,
    raw_overlap,
    top,
)
from setlist.index.organic_ranker import (
    Feedback,
    OrganicRanker,
    most_followed,
    recommend_playlists,
)

METRICS = ("hit_rate", "discovery_recall", "novelty", "diversity")
RANKER, MOST_FOLLOWED, OVERLAP = "ranker", "most_followed", "overlap"


@dataclass(frozen=True)
class ContentSplit:
    """Each listener's artists split in two: ``visible`` (the input) and ``heldout`` (the truth)."""

    visible: sp.csr_matrix
    heldout: sp.csr_matrix


def content_split(
    history: sp.csr_matrix, fraction: float = 0.2, seed: int = 0, min_artists: int = 5
) -> ContentSplit:
    """Hold out ``fraction`` (at least one) of the artists of every listener with at least
    ``min_artists``; the others keep all of theirs visible."""
    if not 0 < fraction < 1:
        raise ConfigError("fraction must be in (0, 1)", field="fraction", value=fraction)
    csr = sp.csr_matrix(history, dtype=np.float64)
    rng = np.random.default_rng(seed)
    hide = np.zeros(csr.nnz, dtype=bool)
    for user in range(csr.shape[0]):
        start, end = csr.indptr[user], csr.indptr[user + 1]
        n = end - start
        if n >= min_artists:
            chosen = rng.choice(n, size=max(1, int(round(fraction * n))), replace=False)
            hide[start + chosen] = True
    visible, heldout = csr.copy(), csr.copy()
    visible.data = np.where(hide, 0.0, csr.data)
    heldout.data = np.where(hide, csr.data, 0.0)
    visible.eliminate_zeros()
    heldout.eliminate_zeros()
    return ContentSplit(visible, heldout)


def slate_metrics(
    linked: LinkedPlaylists, who: Listener, heldout: npt.NDArray[np.float64], slate: list[int]
) -> dict[str, float]:
    """The four :data:`METRICS` of one slate for one listener (held-out artists as ``heldout``)."""
    rows = np.asarray(slate, dtype=np.int64)
    truth = (heldout > 0).astype(np.float64)
    binary = linked.binary[rows]
    reachable = np.asarray(linked.binary.sum(axis=0)).ravel() > 0
    covered = np.asarray(binary.sum(axis=0)).ravel() > 0
    want = truth.astype(bool) & reachable
    tracks = linked.tracks[rows]
    size = np.maximum(linked.num_tracks[rows], np.asarray(tracks.sum(axis=1)).ravel())
    heard_tracks = tracks @ who.heard.toarray().ravel()
    return {
        "hit_rate": float(((binary @ truth) > 0).mean()) if len(rows) else 0.0,
        "discovery_recall": float((want & covered).sum() / want.sum()) if want.any() else np.nan,
        "novelty": float((1.0 - heard_tracks / np.maximum(size, 1.0)).mean()),
        "diversity": float(covered.sum()),
    }


@dataclass
class OrganicEvaluation:
    """Per-listener metrics of every slate source, their means and the paired tests."""

    users: list[int]
    values: dict[str, dict[str, list[float]]]  # source -> metric -> per listener
    comparisons: dict[str, PairedComparison] = field(default_factory=dict)  # vs each reference

    def mean(self, source: str, metric: str) -> float:
        return float(np.nanmean(self.values[source][metric]))

    @property
    def champion(self) -> str:
        """The ranker when significantly better than both references on hit rate, else the
        reference with the higher hit rate."""
        if self.comparisons and all(c.significantly_better() for c in self.comparisons.values()):
            return RANKER
        refs = (OVERLAP, MOST_FOLLOWED)
        return max(refs, key=lambda s: (self.mean(s, "hit_rate"), s == OVERLAP))

    def summary(self) -> dict[str, float]:
        """Flat metrics (``<source>.<metric>``, ``ranker_vs_<ref>.diff`` / ``.p_value``)."""
        out = {f"{s}.{m}": self.mean(s, m) for s in self.values for m in METRICS}
        for ref, c in self.comparisons.items():
            out[f"ranker_vs_{ref}.diff"] = c.diff.mean
            out[f"ranker_vs_{ref}.p_value"] = c.p_value
        return out


def evaluate_organic(
    ranker: OrganicRanker,
    linked: LinkedPlaylists,
    split: ContentSplit,
    vectors: sp.csr_matrix,
    hubs: npt.NDArray[np.float64] | None,
    users: npt.NDArray[np.int64],
    k: int = 10,
) -> OrganicEvaluation:
    """Slates of ``k`` for every listener of ``users`` whose held-out artists appear in some
    playlist: the ranker's (serendipity 0), the most followed and raw overlap's."""
    reachable = np.asarray(linked.binary.sum(axis=0)).ravel() > 0
    popular = most_followed(linked, k).tolist()
    heard = ones(split.visible)
    evaluation = OrganicEvaluation([], {s: {m: [] for m in METRICS} for s in _SOURCES})
    for user in users.tolist():
        heldout = split.heldout[user].toarray().ravel()
        if not ((heldout > 0) & reachable).any():
            continue
        n_buddies = ranker.config.n_buddies
        who = listener_of_row(split.visible, vectors, user, hubs, n_buddies, heard)
        overlap = top(raw_overlap(linked, who).toarray().ravel(), k, linked.followers).tolist()
        overlap += [r for r in popular if r not in overlap][: k - len(overlap)]
        slates = {
            RANKER: recommend_playlists(ranker, linked, who, k).tolist(),
            MOST_FOLLOWED: popular,
            OVERLAP: overlap,
        }
        evaluation.users.append(user)
        for source, slate in slates.items():
            for metric, value in slate_metrics(linked, who, heldout, slate).items():
                evaluation.values[source][metric].append(value)
    if evaluation.users:
        ours = evaluation.values[RANKER]["hit_rate"]
        evaluation.comparisons = {
            ref: compare_paired(ours, evaluation.values[ref]["hit_rate"])
            for ref in (MOST_FOLLOWED, OVERLAP)
        }
    return evaluation


_SOURCES = (RANKER, MOST_FOLLOWED, OVERLAP)


def feedback_auc(
    ranker: OrganicRanker,
    linked: LinkedPlaylists,
    history: sp.csr_matrix,
    vectors: sp.csr_matrix,
    hubs: npt.NDArray[np.float64] | None,
    feedback: list[Feedback],
) -> list[float]:
    """Per listener whose feedback has two grades or more: the share of (better, worse) pairs of
    their playlists that the ranker orders the same way (ties count half); 0.5 is chance."""
    out = []
    heard = ones(history)
    for f in feedback:
        if len(np.unique(f.labels)) < 2:
            continue
        who = listener_of_row(history, vectors, f.user, hubs, ranker.config.n_buddies, heard)
        owner = np.zeros(len(f.playlists), dtype=np.int64)  # a block of one listener
        score = ranker.score(features(linked, who, owner, f.playlists))
        better = f.labels[:, None] > f.labels[None, :]
        right = (score[:, None] > score[None, :]) + 0.5 * (score[:, None] == score[None, :])
        out.append(float(right[better].mean()))
    return out
