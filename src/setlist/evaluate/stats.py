"""Significance and uncertainty for per-user metrics: bootstrap intervals, paired tests.

Two models evaluated on the same test users give paired per-user values (NDCG@10 of each user
under each model). :func:`compare_paired` summarises such a pair the way the promotion gate
needs it: the mean difference, its percentile-bootstrap 95% interval (users resampled with
replacement) and the two-sided Wilcoxon signed-rank p-value of the differences.

Wilcoxon is run on the rounded differences (scipy's advice: round-off must not split ties) with
``zero_method="pratt"``: users on whom both models score the same (often many, e.g. both 0) stay
in the ranking, which is the more conservative choice. Everything is seeded and deterministic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from setlist.errors import ConfigError, DataError

Float64Array = npt.NDArray[np.float64]
DEFAULT_RESAMPLES = 2000
_CHUNK_CELLS = 4_000_000  # resamples x users drawn at once, to bound memory


@dataclass(frozen=True)
class Interval:
    """A mean and its bootstrap interval."""

    mean: float
    low: float
    high: float
    confidence: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class PairedComparison:
    """Candidate vs reference over the same users (``diff`` = candidate - reference)."""

    n_users: int
    candidate_mean: float
    reference_mean: float
    diff: Interval
    p_value: float
    statistic: float
    wins: int
    losses: int

    def significantly_better(self, alpha: float = 0.05) -> bool:
        """p below ``alpha`` and the whole interval of the difference above 0."""
        return self.p_value < alpha and self.diff.low > 0

    def significantly_worse(self, alpha: float = 0.05) -> bool:
        """p below ``alpha`` and the whole interval of the difference below 0."""
        return self.p_value < alpha and self.diff.high < 0

    def to_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "n_users": self.n_users,
            "candidate_mean": self.candidate_mean,
            "reference_mean": self.reference_mean,
            "mean_diff": self.diff.mean,
            "ci_low": self.diff.low,
            "ci_high": self.diff.high,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "wins": self.wins,
            "losses": self.losses,
        }
        return out


def bootstrap_mean(
    values: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement)."""
    data = _vector(values, "values")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    per_chunk = max(1, _CHUNK_CELLS // len(data))
    for start in range(0, n_resamples, per_chunk):
        stop = min(start + per_chunk, n_resamples)
        picks = rng.integers(0, len(data), size=(stop - start, len(data)))
        means[start:stop] = data[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(data.mean()), float(low), float(high), confidence)


def wilcoxon_p(candidate: npt.ArrayLike, reference: npt.ArrayLike) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of paired values: (statistic, p-value).

    All differences zero means no evidence either way: p = 1.
    """
    from scipy.stats import wilcoxon

    diff = np.round(_paired(candidate, reference), 12)
    if not np.any(diff):
        return 0.0, 1.0
    result = wilcoxon(diff, zero_method="pratt", alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def compare_paired(
    candidate: npt.ArrayLike,
    reference: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Mean difference with its bootstrap interval and the Wilcoxon p-value, over paired users."""
    cand = _vector(candidate, "candidate")
    ref = _vector(reference, "reference")
    diff = _paired(cand, ref)
    statistic, p_value = wilcoxon_p(cand, ref)
    return PairedComparison(
        n_users=len(diff),
        candidate_mean=float(cand.mean()),
        reference_mean=float(ref.mean()),
        diff=bootstrap_mean(diff, confidence=confidence, n_resamples=n_resamples, seed=seed),
        p_value=p_value,
        statistic=statistic,
        wins=int((diff > 0).sum()),
        losses=int((diff < 0).sum()),
    )


def _vector(values: npt.ArrayLike, name: str) -> Float64Array:
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise DataError(f"{name} must be a non-empty 1-D array, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise DataError(f"{name} holds {int((~np.isfinite(data)).sum())} non-finite values")
    return data


def _paired(candidate: npt.ArrayLike, reference: npt.ArrayLike) -> Float64Array:
    cand, ref = _vector(candidate, "candidate"), _vector(reference, "reference")
    if cand.shape != ref.shape:
        raise DataError(f"paired values differ in length: {cand.size} vs {ref.size}")
    return cand - ref
