"""Beyond accuracy: novelty, intra-list diversity, popularity bias, per-activity breakdown.

Pure functions over ``ranked`` (int64 ``[n_users, k]`` item rows best first, ``-1`` padding, as
:mod:`setlist.evaluate.metrics` takes them) and per-item or per-user arrays; nothing here fits or
scores a model.

- novelty@k (Zhou et al. 2010): mean self-information ``-log2(p_i)`` of the recommended items,
  ``p_i`` the share of training listeners who heard item i (unheard items count as heard by one);
- intra-list diversity@k (Ziegler et al. 2005): mean pairwise ``1 - cosine`` of the recommended
  items' tag (genre) vectors; items without tags leave the pairs, and a list with fewer than two
  tagged items has no value (NaN, left out of the mean);
- popularity-bias curve: items split into ten equal-size groups by training popularity (decile 1
  the most popular), the share of all recommendations that falls in each, next to the share of
  training listens each decile holds (Abdollahpouri et al.);
- activity groups: listeners split by training history length into cold / light / heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.errors import ConfigError, DataError

IntArray = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
ACTIVITY_GROUPS = ("cold", "light", "heavy")


def novelty(ranked: IntArray, item_users: npt.ArrayLike, n_users: int) -> Float64Array:
    """Per-user mean self-information (bits) of the recommended items; NaN for empty lists."""
    ranked = _ranked(ranked)
    counts = np.asarray(item_users, dtype=np.float64)
    if n_users < 1:
        raise ConfigError(f"n_users must be >= 1, got {n_users}")
    _check_items(ranked, len(counts))
    info = -np.log2(np.clip(counts, 1.0, None) / n_users)
    valid = ranked >= 0
    bits = np.where(valid, info[np.where(valid, ranked, 0)], 0.0)
    n = valid.sum(axis=1)
    out = np.full(len(ranked), np.nan)
    np.divide(bits.sum(axis=1), n, out=out, where=n > 0)
    return out


def intra_list_diversity(ranked: IntArray, item_features: sp.spmatrix) -> Float64Array:
    """Per-user mean pairwise ``1 - cosine`` of the listed items' feature (tag) vectors."""
    ranked = _ranked(ranked)
    features = sp.csr_matrix(item_features, dtype=np.float64)
    _check_items(ranked, features.shape[0])
    norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    unit = sp.csr_matrix(sp.diags(scale) @ features)
    out = np.full(len(ranked), np.nan)
    for u, row in enumerate(ranked):
        items = row[row >= 0]
        items = items[norms[items] > 0]
        m = len(items)
        if m < 2:
            continue
        vectors = unit[items]
        sims = np.asarray((vectors @ vectors.T).toarray())
        off_diagonal = (sims.sum() - np.trace(sims)) / (m * (m - 1))
        out[u] = 1.0 - off_diagonal
    return out


def popularity_deciles(item_users: npt.ArrayLike, n_bins: int = 10) -> IntArray:
    """Each item's popularity group 0..n_bins-1 (0 = most popular), equal-size by rank."""
    counts = np.asarray(item_users, dtype=np.float64)
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}")
    order = np.lexsort((np.arange(len(counts)), -counts))
    groups = np.empty(len(counts), dtype=np.int64)
    groups[order] = (np.arange(len(counts)) * n_bins) // max(len(counts), 1)
    return groups


@dataclass(frozen=True)
class PopularityCurve:
    """Share of recommendations and of training listens per popularity group (sums to 1)."""

    recommended: Float64Array
    listens: Float64Array

    @property
    def head_share(self) -> float:
        """Share of recommendations in the most popular group."""
        return float(self.recommended[0]) if len(self.recommended) else 0.0


def popularity_curve(
    ranked: IntArray, item_users: npt.ArrayLike, n_bins: int = 10
) -> PopularityCurve:
    """Recommendation share per popularity decile, next to the listens' share."""
    ranked = _ranked(ranked)
    counts = np.asarray(item_users, dtype=np.float64)
    _check_items(ranked, len(counts))
    groups = popularity_deciles(counts, n_bins)
    listed = ranked[ranked >= 0]
    recommended: Float64Array = np.bincount(groups[listed], minlength=n_bins).astype(np.float64)
    listens = np.bincount(groups, weights=counts, minlength=n_bins).astype(np.float64)
    return PopularityCurve(_share(recommended), _share(listens))


def activity_groups(
    history_lengths: npt.ArrayLike, thresholds: Sequence[float] | None = None
) -> tuple[npt.NDArray[np.str_], tuple[float, float]]:
    """Each user's group (cold / light / heavy) by training history length, and the bounds.

    Default bounds are the terciles of the lengths; ``thresholds=(a, b)`` gives cold <= a <
    light <= b < heavy instead (e.g. (5, 50) for catalogues where everyone is active).
    """
    lengths = np.asarray(history_lengths, dtype=np.float64)
    if thresholds is None:
        if lengths.size == 0:
            raise DataError("no users to group by activity")
        low, high = (float(q) for q in np.quantile(lengths, [1 / 3, 2 / 3]))
    else:
        if len(thresholds) != 2 or thresholds[0] > thresholds[1]:
            raise ConfigError(f"thresholds must be two increasing numbers, got {thresholds!r}")
        low, high = float(thresholds[0]), float(thresholds[1])
    names = np.where(lengths <= low, "cold", np.where(lengths <= high, "light", "heavy"))
    return names.astype(np.str_), (low, high)


def breakdown(
    values: npt.ArrayLike, groups: npt.ArrayLike, names: Sequence[str] = ACTIVITY_GROUPS
) -> dict[str, tuple[int, float]]:
    """Per group: (number of users, mean value); NaN mean for an empty group."""
    data = np.asarray(values, dtype=np.float64)
    labels = np.asarray(groups)
    if data.shape != labels.shape:
        raise DataError(f"values {data.shape} and groups {labels.shape} differ in shape")
    out: dict[str, tuple[int, float]] = {}
    for name in names:
        chosen = data[labels == name]
        out[name] = (len(chosen), float(chosen.mean()) if len(chosen) else float("nan"))
    return out


def _share(counts: Float64Array) -> Float64Array:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros_like(counts)


def _ranked(ranked: npt.ArrayLike) -> IntArray:
    out = np.asarray(ranked, dtype=np.int64)
    if out.ndim != 2:
        raise DataError(f"ranked must be 2-D [users, k], got shape {out.shape}")
    return out


def _check_items(ranked: IntArray, n_items: int) -> None:
    if ranked.size and int(ranked.max(initial=-1)) >= n_items:
        raise DataError(f"ranked names item {int(ranked.max())} but there are {n_items} items")
