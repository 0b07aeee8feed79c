"""Drift between a reference window of events and the current one: data and performance drift.

Data checks look at **engagement** (listens of 30 s or more or of unknown length, likes,
playlist adds): what listeners chose, not impressions, which the model chose. Item popularity
counts distinct listeners per item in a window, not events (a like after a listen is one
choice; counting both makes chi-square optimistic).

================  ===========  ===============================================================
check             statistic    fires when
================  ===========  ===============================================================
activity_ks       KS D         engagement per user differs: p < ks_alpha and D >= ks_min_d
popularity_psi    PSI          shares over equal-mass bins of items by popularity moved:
                               PSI >= psi_threshold and p < psi_alpha
popularity_chi2   Cramer's V   item x window chi-square: p < chi2_alpha, V >= chi2_min_v
new_users         share        current engagement from users the model lacks > new_user_rate
new_items         share        current engagement on items the model lacks > new_item_rate
user_vectors_pca  error ratio  user vectors leave the reference's principal subspace:
                               error ratio >= pca_error_ratio and p < pca_alpha
listen_through    drop         listens per impression fell: the whole bootstrap interval of
                               current - reference is below -perf_min_drop
================  ===========  ===============================================================

Why effect sizes as well as p-values: with thousands of events per window a p-value alone
flags differences nobody would act on, and one listener's events are not independent. Why
held-out halves (PSI bins, PCA subspace): a statistic fitted and scored on the same reference
data flatters it (regression to the mean), so stable traffic would look like drift. A check
whose input is missing (no model, no impressions) is reported as not drifted with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from setlist.config import DriftConfig
from setlist.errors import ConfigError, DataError
from setlist.events.weights import FeedbackWeights

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SHORT_LISTEN_MS = FeedbackWeights().short_listen_ms
CHECKS: dict[str, str] = {
    "activity_ks": "data",
    "popularity_psi": "data",
    "popularity_chi2": "data",
    "new_users": "data",
    "new_items": "data",
    "user_vectors_pca": "data",
    "listen_through": "performance",
}
_THRESHOLDS = {  # the DriftConfig field each check's statistic is compared with
    "activity_ks": "ks_min_d",
    "popularity_psi": "psi_threshold",
    "popularity_chi2": "chi2_min_v",
    "new_users": "new_user_rate",
    "new_items": "new_item_rate",
    "user_vectors_pca": "pca_error_ratio",
    "listen_through": "perf_min_drop",
}
MIN_EXPECTED = 5.0  # chi-square's usual rule: every cell expects at least 5
MIN_PCA_USERS = 50  # in each half of the reference and in the current window
_CHUNK_CELLS = 4_000_000  # bootstrap cells drawn at once, to bound memory

__all__ = [
    "CHECKS",
    "DriftCheck",
    "DriftConfig",
    "DriftReport",
    "WindowSummary",
    "check_drift",
    "engagement",
    "windows",
]


@dataclass(frozen=True)
class DriftCheck:
    """One check's verdict; ``statistic`` is what Prometheus exports as the drift score."""

    name: str
    kind: str
    statistic: float
    threshold: float
    p_value: float | None
    drifted: bool
    detail: str


@dataclass(frozen=True)
class WindowSummary:
    """A window's span and size; ``users`` and ``items`` are those with engagement."""

    start_us: int
    end_us: int
    events: int
    engagement: int
    users: int
    items: int


@dataclass(frozen=True)
class DriftReport:
    reference: WindowSummary
    current: WindowSummary
    checks: list[DriftCheck]
    enough: bool

    @property
    def drifted(self) -> bool:
        return self.enough and any(c.drifted for c in self.checks)

    @property
    def data_drifted(self) -> bool:
        return self.enough and any(c.drifted for c in self.checks if c.kind == "data")

    @property
    def performance_drifted(self) -> bool:
        return self.enough and any(c.drifted for c in self.checks if c.kind == "performance")

    @property
    def outcome(self) -> str:
        """``drift``, ``no_drift`` or ``too_few_events`` (the loop's window outcomes)."""
        if not self.enough:
            return "too_few_events"
        return "drift" if self.drifted else "no_drift"

    def scores(self) -> dict[str, float]:
        return {c.name: c.statistic for c in self.checks}

    def check(self, name: str) -> DriftCheck:
        found = [c for c in self.checks if c.name == name]
        if not found:
            raise KeyError(f"no drift check {name!r}; checks: {', '.join(CHECKS)}")
        return found[0]

    def reason(self) -> str:
        """Which checks fired, with their figures (or why there is no verdict)."""
        if not self.enough:
            return (
                f"too few events: {self.reference.engagement:,} reference and "
                f"{self.current.engagement:,} current engagement events"
            )
        fired = [c for c in self.checks if c.drifted]
        if not fired:
            return f"no drift: all {len(self.checks)} checks within their thresholds"
        return "; ".join(f"{c.name}: {c.detail}" for c in fired)


def engagement(events: pl.DataFrame) -> pl.DataFrame:
    """The events that say what a listener chose (a listen under 30 s is a skip)."""
    play = pl.col("play_ms")
    listened = (pl.col("type") == "listen") & (play.is_null() | (play >= SHORT_LISTEN_MS))
    return events.filter(listened | pl.col("type").is_in(["like", "playlist_add"]))


def windows(
    events: pl.DataFrame, window_s: float, end_us: int | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(reference, current): current = [end - window, end), reference = the window before it.

    ``end_us`` defaults to the newest event's ``ts_us`` + 1.
    """
    if not (math.isfinite(window_s) and window_s > 0):
        raise ConfigError(f"window must be a positive number of seconds, got {window_s!r}")
    width = int(round(window_s * 1e6))
    if end_us is None:
        end_us = _span(events)[1]
    ts = pl.col("ts_us")
    current = events.filter((ts >= end_us - width) & (ts < end_us))
    reference = events.filter((ts >= end_us - 2 * width) & (ts < end_us - width))
    return reference, current


def check_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    config: DriftConfig,
    *,
    known_users: Collection[str] | None = None,
    known_items: Collection[str] | None = None,
    item_vectors: tuple[Sequence[str], np.ndarray] | None = None,
    spans: tuple[tuple[int, int], tuple[int, int]] | None = None,
) -> DriftReport:
    """Every check, reference vs current.

    ``item_vectors`` = (item ids, item factor matrix) of the served model, for the PCA check.
    ``spans`` = ((start_us, end_us) of the reference, of the current window); by default the
    span of each window's events.
    """
    ref_eng, cur_eng = engagement(reference), engagement(current)
    ref_span, cur_span = spans or (_span(reference), _span(current))
    summaries = _summary(reference, ref_eng, ref_span), _summary(current, cur_eng, cur_span)
    if min(ref_eng.height, cur_eng.height) < config.min_events:
        why = (
            f"not checked: {ref_eng.height:,} reference / {cur_eng.height:,} current engagement "
            f"events, fewer than {config.min_events:,}"
        )
        return DriftReport(*summaries, [_not_checked(n, config, why) for n in CHECKS], False)
    ref_pairs, cur_pairs = _pairs(ref_eng), _pairs(cur_eng)
    checks = [
        _activity(reference, current, config),
        _psi(ref_pairs, cur_pairs, config),
        _chi2(ref_pairs, cur_pairs, config),
        _new_share("new_users", cur_eng, "user_id", known_users, config.new_user_rate),
        _new_share("new_items", cur_eng, "item_id", known_items, config.new_item_rate),
        _pca(ref_pairs, cur_pairs, item_vectors, config),
        _listen_through(reference, current, config),
    ]
    return DriftReport(*summaries, checks, True)


# ------------------------------------------------------------------ figures the checks use


def user_activity(events: pl.DataFrame) -> IntArray:
    """Engagement events per user seen in the window by any event (so a listener who still
    asks for recommendations but stopped listening counts, as 0)."""
    seen = events.select("user_id").unique()
    counts = engagement(events).group_by("user_id").len()
    joined = seen.join(counts, on="user_id", how="left").get_column("len").fill_null(0)
    return joined.to_numpy().astype(np.int64)


def popularity_shares(
    ranking: pl.DataFrame, *scored: pl.DataFrame, bins: int = 10
) -> list[FloatArray]:
    """Each scored frame's share of rows per bin of items; the bins hold equal mass of
    ``ranking`` from its most popular items down, and items it never saw fall in the last bin.

    Half a count is added to every bin so that an empty bin does not make the PSI infinite.
    """
    counts = ranking.group_by("item_id").len().sort(["len", "item_id"], descending=[True, False])
    n = counts.get_column("len").to_numpy().astype(np.float64)
    before = (np.cumsum(n) - n) / max(float(n.sum()), 1.0)
    item_bin = pl.DataFrame(
        {"item_id": counts.get_column("item_id"), "bin": np.minimum(before * bins, bins - 1)}
    ).with_columns(pl.col("bin").cast(pl.Int64))
    out = []
    for frame in scored:
        joined = frame.join(item_bin, on="item_id", how="left").get_column("bin")
        hist = np.bincount(joined.fill_null(bins - 1).to_numpy(), minlength=bins)
        out.append((hist + 0.5) / (hist.sum() + 0.5 * bins))
    return out


def listens_per_user(events: pl.DataFrame) -> tuple[IntArray, IntArray]:
    """(impressions, impressions followed by a listen of the same pair in the window) per user."""
    shown = events.filter(pl.col("type") == "impression").select("user_id", "item_id", "ts_us")
    last_listen = (
        engagement(events.filter(pl.col("type") == "listen"))
        .group_by("user_id", "item_id")
        .agg(pl.col("ts_us").max().alias("listened_us"))
    )
    hits = shown.join(last_listen, on=["user_id", "item_id"], how="left").with_columns(
        hit=(pl.col("listened_us") >= pl.col("ts_us")).fill_null(False)
    )
    per_user = (  # sorted: the seeded bootstrap picks users by position
        hits.group_by("user_id")
        .agg(pl.len().alias("n"), pl.col("hit").sum().alias("l"))
        .sort("user_id")
    )
    return (
        per_user.get_column("n").to_numpy().astype(np.int64),
        per_user.get_column("l").to_numpy().astype(np.int64),
    )


def ratio_bootstrap(
    shown: IntArray, listened: IntArray, resamples: int, rng: np.random.Generator
) -> FloatArray:
    """Listen-through of bootstrap samples of users; a user's impressions are resampled
    together, because they are not independent of each other."""
    users = len(shown)
    out = np.empty(resamples, dtype=np.float64)
    step = max(1, _CHUNK_CELLS // max(users, 1))
    for start in range(0, resamples, step):
        picks = rng.integers(0, users, size=(min(step, resamples - start), users))
        out[start : start + len(picks)] = listened[picks].sum(1) / np.maximum(
            shown[picks].sum(1), 1
        )
    return out


def user_vectors(pairs: pl.DataFrame, ids: Sequence[str], matrix: np.ndarray) -> FloatArray:
    """Per user, the L2-normalised mean factor vector of the known items they engaged with."""
    import scipy.sparse as sp

    factors = np.asarray(matrix, dtype=np.float64)
    if factors.ndim != 2 or factors.shape[0] != len(ids):
        raise DataError(
            f"item_vectors: {len(ids):,} item ids but a matrix of shape {factors.shape}",
            field="item_vectors",
        )
    lookup = pl.DataFrame({"item_id": list(ids), "row": np.arange(len(ids))})
    known = pairs.join(lookup, on="item_id", how="inner")
    if known.height == 0:
        return np.zeros((0, factors.shape[1]))
    user = known.get_column("user_id").rank("dense").to_numpy().astype(np.int64) - 1
    row = known.get_column("row").to_numpy()
    incidence = sp.csr_matrix((np.ones(len(row)), (user, row)), shape=(user.max() + 1, len(ids)))
    sums = np.asarray(incidence @ factors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.asarray(sums / np.where(norms > 0, norms, 1.0), dtype=np.float64)


# ------------------------------------------------------------------ the checks


def _activity(reference: pl.DataFrame, current: pl.DataFrame, config: DriftConfig) -> DriftCheck:
    from scipy.stats import ks_2samp

    a, b = user_activity(reference), user_activity(current)
    result = ks_2samp(a, b)
    d, p = float(result.statistic), float(result.pvalue)
    detail = (
        f"engagement per user, mean {a.mean():.2f} -> {b.mean():.2f} over {len(a):,} -> "
        f"{len(b):,} users; KS D {d:.3f} (floor {config.ks_min_d:g}), p {p:.3g}"
    )
    fired = p < config.ks_alpha and d >= config.ks_min_d
    return _check("activity_ks", d, config.ks_min_d, p, fired, detail)


def _psi(ref_pairs: pl.DataFrame, cur_pairs: pl.DataFrame, config: DriftConfig) -> DriftCheck:
    """PSI with bins ranked on one half of the reference users and the other half scored, and
    the other way round (averaged). Its p-value uses PSI / (1/n + 1/m) ~ chi-square with bins - 1
    degrees of freedom under no drift (Yurdakul 2018); the average of two makes it conservative.
    """
    from scipy.stats import chi2

    halves = _user_halves(ref_pairs, config.seed)
    if min(h.height for h in halves) == 0:
        return _missing("popularity_psi", config, "fewer than two reference listeners")
    psi, z = [], []
    for ranking, scored in (halves, halves[::-1]):
        r, c = popularity_shares(ranking, scored, cur_pairs, bins=config.psi_bins)
        psi.append(float(np.sum((c - r) * np.log(c / r))))
        z.append(psi[-1] / (1 / scored.height + 1 / cur_pairs.height))
    value, p = float(np.mean(psi)), float(chi2.sf(np.mean(z), config.psi_bins - 1))
    detail = (
        f"item popularity PSI {value:.3f} over {config.psi_bins} bins of held-out reference "
        f"popularity (threshold {config.psi_threshold:g}), p {p:.3g}"
    )
    fired = value >= config.psi_threshold and p < config.psi_alpha
    return _check("popularity_psi", value, config.psi_threshold, p, fired, detail)


def _chi2(ref_pairs: pl.DataFrame, cur_pairs: pl.DataFrame, config: DriftConfig) -> DriftCheck:
    from scipy.stats import chi2_contingency

    table = _item_table(ref_pairs, cur_pairs)
    if table.shape[1] < 2:
        return _missing("popularity_chi2", config, "fewer than two items with enough listeners")
    statistic, p, _, _ = chi2_contingency(table, correction=False)
    v, p = _cramers_v(float(statistic), table), float(p)
    detail = (
        f"item x window chi-square {float(statistic):,.1f} over {table.shape[1]:,} item columns; "
        f"Cramer's V {v:.3f} (floor {config.chi2_min_v:g}), p {p:.3g}"
    )
    fired = p < config.chi2_alpha and v >= config.chi2_min_v
    return _check("popularity_chi2", v, config.chi2_min_v, p, fired, detail)


def _item_table(ref_pairs: pl.DataFrame, cur_pairs: pl.DataFrame) -> FloatArray:
    """2 x items listener counts; items expected under 5 in a cell are pooled in one column."""
    ref = ref_pairs.group_by("item_id").agg(pl.len().alias("r"))
    cur = cur_pairs.group_by("item_id").agg(pl.len().alias("c"))
    both = ref.join(cur, on="item_id", how="full", coalesce=True).fill_null(0)
    counts = both.select("r", "c").to_numpy().astype(np.float64).T
    n_r, n_c = counts.sum(axis=1)
    big = counts.sum(axis=0) * min(n_r, n_c) / max(n_r + n_c, 1.0) >= MIN_EXPECTED
    pooled = counts[:, ~big].sum(axis=1, keepdims=True)
    return np.hstack([counts[:, big], pooled]) if pooled.sum() > 0 else counts[:, big]


def _cramers_v(chi2: float, table: FloatArray) -> float:
    """Bias-corrected Cramer's V (Bergsma 2013): the plain V of two samples of one distribution
    over k items is about sqrt(k / n), which a fixed floor would mistake for drift."""
    n = float(table.sum())
    rows, cols = table.shape
    phi2 = max(0.0, chi2 / n - (rows - 1) * (cols - 1) / (n - 1))
    denominator = min(rows - (rows - 1) ** 2 / (n - 1), cols - (cols - 1) ** 2 / (n - 1)) - 1
    return math.sqrt(phi2 / denominator) if denominator > 0 else 0.0


def _new_share(
    name: str, cur_eng: pl.DataFrame, column: str, known: Collection[str] | None, limit: float
) -> DriftCheck:
    what = "users" if column == "user_id" else "items"
    if known is None:
        why = f"not checked: no served model's {what} to compare with (no model loaded)"
        return DriftCheck(name, "data", math.nan, limit, None, False, why)
    ids = cur_eng.get_column(column)
    unknown = ~ids.is_in(pl.Series(list(known), dtype=pl.String).implode())
    rate = float(unknown.sum()) / max(len(ids), 1)
    detail = (
        f"{rate:.1%} of current engagement ({int(unknown.sum()):,} of {len(ids):,} events, "
        f"{ids.filter(unknown).n_unique():,} distinct {what}) is from {what} the model does not "
        f"know (threshold {limit:.0%})"
    )
    return _check(name, rate, limit, None, rate > limit, detail)


def _pca(
    ref_pairs: pl.DataFrame,
    cur_pairs: pl.DataFrame,
    item_vectors: tuple[Sequence[str], np.ndarray] | None,
    config: DriftConfig,
) -> DriftCheck:
    name = "user_vectors_pca"
    if item_vectors is None:
        return _missing(name, config, "no item vectors (no model loaded, or not a factor model)")
    ref, cur = (user_vectors(p, *item_vectors) for p in (ref_pairs, cur_pairs))
    if len(ref) < 2 * MIN_PCA_USERS or len(cur) < MIN_PCA_USERS:
        why = (
            f"{len(ref):,} reference / {len(cur):,} current users with known items; "
            f"needs {2 * MIN_PCA_USERS:,} / {MIN_PCA_USERS:,}"
        )
        return _missing(name, config, why)
    from scipy.stats import mannwhitneyu

    held_err, cur_err = _cross_fitted_errors(ref, cur, config)
    base = float(held_err.mean())
    ratio = float(cur_err.mean()) / base if base > 1e-12 else 1.0
    p = float(mannwhitneyu(cur_err, held_err, alternative="greater").pvalue)
    detail = (
        f"PCA reconstruction error of user vectors is {ratio:.2f} x "
        f"the held-out reference's (threshold {config.pca_error_ratio:g}), p {p:.3g}, over "
        f"{len(ref):,} reference / {len(cur):,} current users"
    )
    fired = ratio >= config.pca_error_ratio and p < config.pca_alpha
    return _check(name, ratio, config.pca_error_ratio, p, fired, detail)


def _cross_fitted_errors(
    ref: FloatArray, cur: FloatArray, config: DriftConfig
) -> tuple[FloatArray, FloatArray]:
    """Reconstruction errors, each reference user scored by the PCA of the other half of the
    reference (an in-sample error would flatter the reference), and each current user by one
    of the two at random (averaging both would narrow the current errors' spread)."""
    rng = np.random.default_rng(config.seed)
    half = rng.permutation(len(ref)) < len(ref) // 2
    side = rng.random(len(cur)) < 0.5
    held, current = np.empty(len(ref)), np.empty(len(cur))
    for fit, scored in ((half, side), (~half, ~side)):
        mean, basis = _pca_basis(ref[fit], config.pca_variance)
        held[~fit] = _reconstruction_error(ref[~fit], mean, basis)
        current[scored] = _reconstruction_error(cur[scored], mean, basis)
    return held, current


def _pca_basis(vectors: FloatArray, variance: float) -> tuple[FloatArray, FloatArray]:
    mean = vectors.mean(axis=0)
    _, s, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    share = np.cumsum(s**2) / max(float(np.sum(s**2)), 1e-300)
    k = min(int(np.searchsorted(share, variance - 1e-12)) + 1, len(vectors) - 1, vt.shape[0])
    return mean, vt[: max(k, 1)]


def _reconstruction_error(vectors: FloatArray, mean: FloatArray, basis: FloatArray) -> FloatArray:
    centred = vectors - mean
    residual = centred - (centred @ basis.T) @ basis
    return np.asarray(np.sum(residual**2, axis=1), dtype=np.float64)


def _listen_through(
    reference: pl.DataFrame, current: pl.DataFrame, config: DriftConfig
) -> DriftCheck:
    name = "listen_through"
    (ref_n, ref_l), (cur_n, cur_l) = listens_per_user(reference), listens_per_user(current)
    if len(ref_n) < 2 or len(cur_n) < 2:
        return _missing(name, config, "fewer than two users with impressions in a window")
    rng = np.random.default_rng(config.seed)
    diff = ratio_bootstrap(cur_n, cur_l, config.bootstrap, rng)
    diff -= ratio_bootstrap(ref_n, ref_l, config.bootstrap, rng)
    low, high = np.quantile(diff, [config.perf_alpha / 2, 1 - config.perf_alpha / 2])
    before, after = ref_l.sum() / ref_n.sum(), cur_l.sum() / cur_n.sum()
    detail = (
        f"listen-through {before:.3f} -> {after:.3f} ({int(ref_n.sum()):,} -> "
        f"{int(cur_n.sum()):,} impressions), change {after - before:+.3f}, "
        f"{1 - config.perf_alpha:.0%} interval [{low:+.3f}, {high:+.3f}] "
        f"(drift below {-config.perf_min_drop:+.3f})"
    )
    p = float(np.mean(diff >= -config.perf_min_drop))
    fired = bool(high < -config.perf_min_drop)
    return _check(name, float(before - after), config.perf_min_drop, p, fired, detail)


# ------------------------------------------------------------------ plumbing


def _check(
    name: str, statistic: float, threshold: float, p: float | None, fired: bool, detail: str
) -> DriftCheck:
    return DriftCheck(name, CHECKS[name], statistic, threshold, p, bool(fired), detail)


def _threshold(name: str, config: DriftConfig) -> float:
    return float(getattr(config, _THRESHOLDS[name]))


def _missing(name: str, config: DriftConfig, why: str) -> DriftCheck:
    return _not_checked(name, config, f"not checked: {why}")


def _not_checked(name: str, config: DriftConfig, detail: str) -> DriftCheck:
    return DriftCheck(name, CHECKS[name], math.nan, _threshold(name, config), None, False, detail)


def _pairs(eng: pl.DataFrame) -> pl.DataFrame:
    return eng.select("user_id", "item_id").unique()


def _user_halves(pairs: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of a seeded random half of the users, and of the other half."""
    users = pairs.get_column("user_id").unique().sort()
    chosen = users.filter(pl.Series(np.random.default_rng(seed).random(len(users)) < 0.5))
    inside = pl.col("user_id").is_in(chosen.implode())
    return pairs.filter(inside), pairs.filter(~inside)


def _span(events: pl.DataFrame) -> tuple[int, int]:
    if events.height == 0:
        return 0, 0
    ts = events.get_column("ts_us")
    return int(ts.min()), int(ts.max()) + 1  # type: ignore[arg-type]


def _summary(events: pl.DataFrame, eng: pl.DataFrame, span: tuple[int, int]) -> WindowSummary:
    return WindowSummary(
        start_us=span[0],
        end_us=span[1],
        events=events.height,
        engagement=eng.height,
        users=eng.get_column("user_id").n_unique(),
        items=eng.get_column("item_id").n_unique(),
    )
