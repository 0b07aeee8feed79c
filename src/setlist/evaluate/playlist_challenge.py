"""The RecSys Challenge 2018 protocol: held-out playlists, the 10 seed categories, evaluation.

1. :func:`split_playlists` draws the held-out playlists by pid (seeded); none of their tracks
   lists may reach training.
2. :func:`build_challenge_set` turns each held-out playlist into one test case of one of the
   challenge's 10 categories (its readme: 1,000 playlists each):

   ================== ===== ===== ==========================================
   category           seeds title which seeds
   ================== ===== ===== ==========================================
   title_only             0 yes   none
   title_first_1          1 yes   the first track
   title_first_5          5 yes   the first 5
   first_5                5 no    the first 5
   title_first_10        10 yes   the first 10
   first_10              10 no    the first 10
   title_first_25        25 yes   the first 25
   title_random_25       25 yes   25 drawn at random
   title_first_100      100 yes   the first 100
   title_random_100     100 yes   100 drawn at random
   ================== ===== ===== ==========================================

   Seeds are *distinct* tracks in playlist order ("the first 5" are the first 5 different
   tracks: a playlist that repeats a track does not get fewer seeds). The truth is every other
   distinct track of the playlist (G: never a seed, each track once), in playlist order.
   A playlist is long enough for a category when it has at least ``n_seeds + min_truth``
   distinct tracks: ``min_truth`` (default 5) held-out tracks is our own floor, not a number
   from the challenge, whose constraints on held-out counts we could not read; a playlist too
   short for every category is skipped and listed. Categories are filled as evenly as the
   lengths allow: playlists are taken from the shortest (fewest categories open) to the
   longest, each into the open category that has the fewest so far, ties drawn at random, all
   from ``seed``. Random seed tracks are drawn with ``numpy.random.default_rng([seed, pid])``,
   so a playlist's draw does not depend on the other playlists. With ``train_tracks``, a
   playlist holding a track absent from training is skipped (no model could recommend it);
   the challenge readme lists extra constraints on its playlists that our stored copy of it
   does not show, so this option is our choice, not a quoted rule.
3. :func:`evaluate_challenge` asks a recommender (``recommend(seeds, name, k)``; ``name`` is
   None where the category hides the title) or takes precomputed lists, scores every case with
   :func:`setlist.evaluate.playlists.challenge_metrics` and returns per-playlist figures and a
   per-category table (means with percentile-bootstrap intervals) plus an ``all`` row over
   every playlist, which is the challenge's own average. :func:`compare_challenge` is the paired
   test (Wilcoxon and a bootstrap interval of the difference) of two reports on the same cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from setlist.errors import ConfigError, DataError
from setlist.evaluate.playlists import (
    CHALLENGE_K,
    PLAYLIST_METRICS,
    ArtistMap,
    SeedPolicy,
    TrackList,
    TrackLists,
    challenge_metrics,
)
from setlist.evaluate.stats import (
    DEFAULT_RESAMPLES,
    PairedComparison,
    bootstrap_mean,
    compare_paired,
)

IntArray = npt.NDArray[np.int64]

#: Distinct held-out tracks a test playlist keeps at least (our floor; see the module doc).
DEFAULT_MIN_TRUTH = 5
ALL = "all"


@dataclass(frozen=True)
class Category:
    """One challenge category: how many seed tracks, whether the title is shown, which seeds."""

    name: str
    n_seeds: int
    with_title: bool
    random_seeds: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category("title_only", 0, True),
    Category("title_first_1", 1, True),
    Category("title_first_5", 5, True),
    Category("first_5", 5, False),
    Category("title_first_10", 10, True),
    Category("first_10", 10, False),
    Category("title_first_25", 25, True),
    Category("title_random_25", 25, True, random_seeds=True),
    Category("title_first_100", 100, True),
    Category("title_random_100", 100, True, random_seeds=True),
)


@dataclass(frozen=True)
class ChallengeCase:
    """One test playlist: what the recommender sees (name, seeds) and what it should find."""

    pid: int
    category: str
    name: str | None
    seeds: IntArray
    truth: IntArray


@dataclass(frozen=True)
class ChallengeSet:
    """The test cases, in pid order, and the held-out pids that could not be used."""

    cases: tuple[ChallengeCase, ...]
    skipped: IntArray
    min_truth: int
    seed: int

    def counts(self) -> dict[str, int]:
        """Cases per category, in the challenge's order (categories with none left out)."""
        names = [case.category for case in self.cases]
        return {c.name: names.count(c.name) for c in CATEGORIES if c.name in names}


Recommend = Callable[[IntArray, str | None, int], TrackList]


@dataclass(frozen=True)
class ChallengeReport:
    """Per-playlist figures (one row per case, pid order) and the per-category table."""

    per_playlist: pl.DataFrame
    table: pl.DataFrame
    k: int


def split_playlists(
    pids: npt.ArrayLike, n_holdout: int, *, seed: int = 0
) -> tuple[IntArray, IntArray]:
    """(train pids, held-out pids), both sorted: ``n_holdout`` pids drawn without replacement."""
    ids = _pid_array(pids)
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"pids holds pid {int(unique[counts > 1][0])} more than once", field="pids")
    if not 0 < n_holdout < len(ids):
        raise ConfigError(
            f"n_holdout must be between 1 and {len(ids) - 1} (there are {len(ids)} playlists), "
            f"got {n_holdout}",
            field="n_holdout",
        )
    rng = np.random.default_rng(seed)
    held = np.zeros(len(unique), dtype=np.bool_)
    held[rng.choice(len(unique), size=n_holdout, replace=False)] = True
    return unique[~held], unique[held]


def build_challenge_set(
    pids: npt.ArrayLike,
    tracks: TrackLists,
    names: Sequence[str],
    *,
    seed: int = 0,
    min_truth: int = DEFAULT_MIN_TRUTH,
    categories: Sequence[Category] = CATEGORIES,
    train_tracks: npt.ArrayLike | None = None,
) -> ChallengeSet:
    """One case per usable held-out playlist (``tracks[i]`` in playlist order, ``names[i]``)."""
    ids = _pid_array(pids)
    if not len(ids) == len(tracks) == len(names):
        raise DataError(
            f"pids ({ids.size}), tracks ({len(tracks)}) and names ({len(names)}) must have "
            "one entry per held-out playlist"
        )
    if len(np.unique(ids)) != len(ids) or (ids.size and ids.min() < 0):
        raise DataError("pids must be unique and non-negative", field="pids")
    if seed < 0:
        raise ConfigError(f"seed must be non-negative, got {seed}", field="seed")
    untitled = [int(p) for p, n in zip(ids, names, strict=True) if not isinstance(n, str)]
    if untitled:
        raise DataError(f"playlist {untitled[0]} has no name (a str is needed)", field="names")
    if min_truth < 1:
        raise ConfigError(f"min_truth must be at least 1, got {min_truth}", field="min_truth")
    cats = _check_categories(categories)
    distinct = [_distinct_in_order(t, int(p)) for p, t in zip(ids, tracks, strict=True)]
    n_unique = np.array([len(d) for d in distinct], dtype=np.int64)
    if train_tracks is not None:
        known = np.unique(np.asarray(train_tracks, dtype=np.int64))
        unseen = np.array([not np.isin(d, known).all() for d in distinct], dtype=np.bool_)
        n_unique[unseen] = -1  # open to no category
    assigned = _assign(n_unique, cats, min_truth, np.random.default_rng(seed))

    cases: list[ChallengeCase] = []
    for i in np.argsort(ids, kind="stable"):
        if assigned[i] < 0:
            continue
        cat, pid, row = cats[assigned[i]], int(ids[i]), distinct[i]
        if cat.random_seeds:
            rng = np.random.default_rng([seed, pid])
            chosen = np.sort(rng.choice(len(row), size=cat.n_seeds, replace=False))
        else:
            chosen = np.arange(cat.n_seeds)
        is_seed = np.zeros(len(row), dtype=np.bool_)
        is_seed[chosen] = True
        name = str(names[i]) if cat.with_title else None
        cases.append(ChallengeCase(pid, cat.name, name, row[is_seed], row[~is_seed]))
    skipped = np.sort(ids[assigned < 0])
    return ChallengeSet(tuple(cases), skipped, min_truth, seed)


def evaluate_challenge(
    challenge: ChallengeSet,
    recommend: Recommend | Mapping[int, TrackList],
    artist_of: ArtistMap,
    *,
    k: int = CHALLENGE_K,
    on_seed: SeedPolicy = "error",
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> ChallengeReport:
    """Score every case; ``recommend`` is a callable or precomputed lists keyed by pid.

    A pid missing from precomputed lists is an error (the challenge scored it 0; here it is more
    likely a bug than a choice).
    """
    cases = challenge.cases
    if not cases:
        raise DataError("the challenge set has no case to evaluate")
    if isinstance(recommend, Mapping):
        missing = [c.pid for c in cases if c.pid not in recommend]
        if missing:
            raise DataError(
                f"no recommendations for {len(missing)} test playlists, e.g. pid {missing[0]}",
                field="recommend",
            )
        lists = [recommend[c.pid] for c in cases]
    else:
        lists = [recommend(c.seeds, c.name, k) for c in cases]
    scores = challenge_metrics(
        lists,
        [c.truth for c in cases],
        artist_of,
        k=k,
        seeds=[c.seeds for c in cases],
        on_seed=on_seed,
        playlist_ids=[c.pid for c in cases],
    )
    per_playlist = pl.DataFrame(
        {
            "pid": [c.pid for c in cases],
            "category": [c.category for c in cases],
            "n_seeds": [len(c.seeds) for c in cases],
            "n_truth": [len(c.truth) for c in cases],
            "r_precision": scores["r_precision"],
            "ndcg": scores["ndcg"],
            "clicks": scores["clicks"],
            "track_r_precision": scores["track_r_precision"],
        },
        schema_overrides={"pid": pl.Int64, "n_seeds": pl.Int64, "n_truth": pl.Int64},
    )
    table = challenge_table(per_playlist, confidence=confidence, n_resamples=n_resamples, seed=seed)
    return ChallengeReport(per_playlist, table, k)


def challenge_table(
    per_playlist: pl.DataFrame,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pl.DataFrame:
    """Per category (challenge order) and ``all``: playlists, then each metric's mean and
    bootstrap interval as ``<metric>``, ``<metric>_low``, ``<metric>_high``."""
    missing = {"category", *PLAYLIST_METRICS} - set(per_playlist.columns)
    if missing:
        raise DataError(f"per_playlist lacks the columns {sorted(missing)}")
    order = [c.name for c in CATEGORIES]
    present = per_playlist["category"].unique().to_list()
    names = [n for n in order if n in present] + sorted(set(present) - set(order))
    groups = [(n, per_playlist.filter(pl.col("category") == n)) for n in names]
    rows: list[dict[str, object]] = []
    for name, frame in [*groups, (ALL, per_playlist)]:
        row: dict[str, object] = {"category": name, "n_playlists": frame.height}
        for metric in PLAYLIST_METRICS:
            interval = bootstrap_mean(
                frame[metric].to_numpy(),
                confidence=confidence,
                n_resamples=n_resamples,
                seed=seed,
            )
            row[metric] = interval.mean
            row[f"{metric}_low"] = interval.low
            row[f"{metric}_high"] = interval.high
        rows.append(row)
    return pl.DataFrame(rows)


def compare_challenge(
    candidate: ChallengeReport,
    reference: ChallengeReport,
    *,
    metric: str = "r_precision",
    category: str | None = None,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Paired candidate - reference on one per-playlist metric (all cases, or one category).

    For ``clicks`` lower is better, so a better candidate has a negative difference.
    """
    if metric not in (*PLAYLIST_METRICS, "track_r_precision"):
        raise ConfigError(f"metric must be one of {PLAYLIST_METRICS}, got {metric!r}")
    if candidate.k != reference.k:
        raise DataError(f"the reports were scored at k={candidate.k} and k={reference.k}")
    cand, ref = candidate.per_playlist, reference.per_playlist
    if category is not None:
        cand = cand.filter(pl.col("category") == category)
        ref = ref.filter(pl.col("category") == category)
        if cand.height == 0:
            raise DataError(f"no case of category {category!r} to compare", field="category")
    if not cand.select("pid", "category").equals(ref.select("pid", "category")):
        raise DataError("the two reports do not cover the same cases in the same order")
    return compare_paired(
        cand[metric].to_numpy(),
        ref[metric].to_numpy(),
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )


def _pid_array(pids: npt.ArrayLike) -> IntArray:
    arr = np.asarray(pids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise DataError(
            f"pids must be a 1-D array of integers, got {arr.dtype} {arr.shape}", field="pids"
        )
    out: IntArray = arr.astype(np.int64)
    return out


def _distinct_in_order(tracks: TrackList, pid: int) -> IntArray:
    arr = np.asarray(tracks)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(
            f"tracks of playlist {pid} must be a flat list of integer track ids, got {arr.dtype}",
            field="tracks",
            playlist=pid,
        )
    _, first = np.unique(arr, return_index=True)
    out: IntArray = arr[np.sort(first)].astype(np.int64)
    return out


def _check_categories(categories: Sequence[Category]) -> tuple[Category, ...]:
    cats = tuple(categories)
    if not cats:
        raise ConfigError("categories must name at least one category", field="categories")
    names = [c.name for c in cats]
    if len(set(names)) != len(names) or ALL in names:
        raise ConfigError(f"category names must be unique and not {ALL!r}, got {names}")
    for c in cats:
        if c.n_seeds < 0 or (c.n_seeds == 0 and not c.with_title):
            raise ConfigError(f"category {c.name!r} has {c.n_seeds} seeds and no title")
    return cats


def _assign(
    n_unique: IntArray, cats: tuple[Category, ...], min_truth: int, rng: np.random.Generator
) -> IntArray:
    """Category index per playlist (-1: too short or unusable), as even as lengths allow."""
    need = np.array([c.n_seeds for c in cats], dtype=np.int64) + min_truth
    open_ = n_unique[:, None] >= need[None, :]
    n_open = open_.sum(axis=1)
    order = np.lexsort((rng.permutation(len(n_unique)), n_open))
    tiebreak = rng.random((len(n_unique), len(cats)))
    counts = np.zeros(len(cats), dtype=np.float64)
    assigned = np.full(len(n_unique), -1, dtype=np.int64)
    for i in order:
        if n_open[i] == 0:
            continue
        choice = int(np.argmin(np.where(open_[i], counts + tiebreak[i], np.inf)))
        assigned[i] = choice
        counts[choice] += 1
    return assigned
