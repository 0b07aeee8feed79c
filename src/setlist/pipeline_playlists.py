"""The playlist pipeline: MPD slices -> held-out playlists -> candidates -> challenge -> gate.

The tracks catalogue's counterpart of :mod:`setlist.pipeline` (``setlist train -d spotify-mpd``
or ``-d path/to/slices``):

1. :func:`prepare_playlists` reads the playlist store, holds out ``holdout`` playlists by pid
   (:func:`~setlist.evaluate.playlist_challenge.split_playlists`, seeded), turns them into the
   challenge's test cases (:func:`~setlist.evaluate.playlist_challenge.build_challenge_set`)
   and builds a binary playlist x track training matrix over the other playlists. The
   catalogue is every track of the dataset: a track only the held-out playlists hold has an
   empty column (no model can recommend it; it stays in the truth, as a miss, as in the
   challenge). ``train_tracks`` is *not* passed to ``build_challenge_set``: on the public
   subset (104k tracks, most in one playlist) nearly every held-out playlist holds a track no
   training playlist has, so that filter would leave about 11 of 500 test playlists.
2. :func:`fit_candidate` fits each candidate through the zoo (:func:`setlist.pipeline.
   fit_matrix`, timed and memory-measured) and :func:`evaluate_candidate` scores every case with
   a :class:`~setlist.models.continuation.Continuer` (the model, a title model over the training
   playlists' names, the artist back-off), the seeds excluded, at k = 500.
3. :func:`run_playlists` picks the best by mean R-precision over all cases, evaluates the
   current champion of the tracks registered model on the *same* cases, and registers the best
   through the promotion gate with the paired test on per-playlist R-precision
   (``metric="r_precision"``). The registered model is the evaluated one (fitted on the
   training playlists only, not refitted on all): what the gate saw is what is served, and the
   next run's gate compares it on fresh held-out playlists of the same split seed. Its bundle
   holds the catalogue (``catalogue="tracks"``), track names ``artist - track``, the attribute
   ``artist`` and the playlists table of *all* playlists (the service shows and continues any
   of them; the title model is rebuilt from the training playlists only, the bundle's users).

The per-category tables (R-precision, NDCG, clicks with bootstrap intervals) of every candidate
are logged as CSV artifacts in the registered bundle's run (``challenge/<kind>.csv``) and as
metrics ``rprec_<category>``, ``ndcg_<category>``, ``clicks_<category>``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.bundle import ModelBundle, playlist_continuer
from setlist.bundle_meta import BundleMeta
from setlist.config import Settings, WeightConfig
from setlist.data.playlists import PlaylistReport
from setlist.data.schema import PlaylistDataset
from setlist.errors import DataError
from setlist.evaluate.playlist_challenge import (
    ALL,
    ChallengeReport,
    ChallengeSet,
    build_challenge_set,
    compare_challenge,
    evaluate_challenge,
    split_playlists,
)
from setlist.evaluate.playlists import CHALLENGE_K
from setlist.evaluate.stats import DEFAULT_RESAMPLES, PairedComparison
from setlist.matrix import IdIndex, InteractionMatrix
from setlist.models.base import Recommender
from setlist.models.continuation import ContinuationConfig, Continuer
from setlist.models.specs import ModelSpec
from setlist.models.title import TitleModel
from setlist.pipeline import FitUsage, fit_matrix, inputs
from setlist.registry import ModelVersion, PromotionDecision, Registry, RegistryConfig
from setlist.registry.gate import promote

Progress = Callable[[str], None]
IntArray = npt.NDArray[np.int64]

CATALOGUE = "tracks"
GATE_METRIC = "r_precision"
DEFAULT_HOLDOUT = 500
#: Candidates of ``setlist train -d spotify-mpd`` with no ``--models``.
DEFAULT_MODELS = "popularity,knn,blend"  # the EASE reference (2.2 GB, 70 s): benchmark
#: Playlist defaults per kind (``--param`` overrides them). ``knn`` and ``ease`` are the
#: references of docs/TARGETS.md (item-kNN cosine on binary; EASE on the 15k most frequent
#: tracks, lambda 100); ``blend`` is the chosen model: EASE (12k tracks, l2 300) for the
#: frequent tracks, item-kNN over the whole catalogue for the long tail, each scaled to a
#: maximum of 1 (README, "Playlists": how these were measured). 12k rather than 15k EASE
#: tracks keeps the fit's peak under 1.5 GB (two dense n x n float32 matrices).
PLAYLIST_DEFAULTS: dict[str, dict[str, Any]] = {
    "knn": {"k": 100, "similarity": "cosine", "weighting": "none"},
    "ease": {"l2": 100.0, "max_items": 15_000, "weighting": "none"},
    "blend": {
        "members": [
            {"kind": "ease", "params": {"l2": 300.0, "max_items": 12_000, "weighting": "none"}},
            {"kind": "knn", "params": {"k": 100_000, "similarity": "cosine", "weighting": "none"}},
        ],
        "weights": [0.7, 0.3],
        "normalize": "max",
    },
}


@dataclass
class PlaylistPrepared:
    """A playlist dataset split into training playlists and challenge cases over one catalogue."""

    dataset: PlaylistDataset
    report: PlaylistReport | None
    train: InteractionMatrix  # training playlists (pid as str) x every track, binary
    train_names: list[str]
    challenge: ChallengeSet
    #: Artist code per catalogue row (the evaluation's artist map) and artist name per row.
    artist_codes: IntArray
    artist_names: npt.NDArray[np.str_]
    holdout: int
    seed: int

    @property
    def popularity(self) -> npt.NDArray[np.float32]:
        return np.asarray(self.train.csr.sum(axis=0), dtype=np.float32).ravel()


@dataclass
class PlaylistCandidate:
    """One candidate fitted and evaluated on the challenge cases."""

    spec: ModelSpec
    model: Recommender
    usage: FitUsage
    report: ChallengeReport
    version: ModelVersion | None = None
    decision: PromotionDecision | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def r_precision(self) -> float:
        return category_mean(self.report, ALL, "r_precision")

    def metrics(self) -> dict[str, float]:
        return challenge_metrics_flat(self.report)


@dataclass
class PlaylistRunResult:
    prepared: PlaylistPrepared
    config: ContinuationConfig
    candidates: list[PlaylistCandidate] = field(default_factory=list)
    best: PlaylistCandidate | None = None
    champion_report: ChallengeReport | None = None


def prepare_playlists(
    dataset: PlaylistDataset,
    report: PlaylistReport | None = None,
    *,
    holdout: int = DEFAULT_HOLDOUT,
    seed: int = 0,
) -> PlaylistPrepared:
    """Hold out ``holdout`` playlists, build the challenge cases and the training matrix."""
    if dataset.playlists.height < 2:
        raise DataError(
            f"dataset {dataset.name!r} has {dataset.playlists.height} playlists; at least 2 "
            "are needed (one to train on, one to test)",
            field="playlists",
        )
    items = IdIndex(dataset.tracks.get_column("track_uri").to_list())
    ordered = dataset.playlist_tracks.sort(["pid", "pos"])
    rows = items.rows(ordered.get_column("track_uri").to_list())
    pid_of_row = ordered.get_column("pid").to_numpy().astype(np.int64)
    all_pids = dataset.playlists.get_column("pid").to_numpy().astype(np.int64)
    names = dict(
        zip(all_pids.tolist(), dataset.playlists.get_column("name").to_list(), strict=True)
    )
    train_pids, test_pids = split_playlists(all_pids, holdout, seed=seed)
    bounds = np.searchsorted(pid_of_row, np.concatenate([all_pids, all_pids + 1]))
    start = dict(zip(all_pids.tolist(), bounds[: len(all_pids)].tolist(), strict=True))
    stop = dict(zip(all_pids.tolist(), bounds[len(all_pids) :].tolist(), strict=True))

    def tracks_of(pid: int) -> IntArray:
        return rows[start[pid] : stop[pid]]

    challenge = build_challenge_set(
        test_pids,
        [tracks_of(int(p)) for p in test_pids],
        [names[int(p)] or "" for p in test_pids],
        seed=seed,
    )
    if not challenge.cases:
        raise DataError(
            f"none of the {len(test_pids)} held-out playlists of {dataset.name!r} is long "
            f"enough for a challenge category (at least {challenge.min_truth} tracks beyond "
            "the seeds); hold out more playlists or use longer ones",
            field="playlists",
        )
    counts = np.array([stop[int(p)] - start[int(p)] for p in train_pids], dtype=np.int64)
    cols = np.concatenate([tracks_of(int(p)) for p in train_pids]) if len(train_pids) else rows[:0]
    indptr = np.concatenate([[0], np.cumsum(counts)])
    csr = sp.csr_matrix(
        (np.ones(len(cols), np.float32), cols, indptr), shape=(len(train_pids), len(items))
    )
    csr.sum_duplicates()
    csr.data[:] = 1.0  # binary: a playlist holds a track or not
    train = InteractionMatrix(IdIndex([str(p) for p in train_pids]), items, csr)
    artist_names = dataset.tracks.get_column("artist_name").fill_null("").to_numpy()
    _, codes = np.unique(artist_names.astype(np.str_), return_inverse=True)
    return PlaylistPrepared(
        dataset=dataset,
        report=report,
        train=train,
        train_names=[names[int(p)] or "" for p in train_pids],
        challenge=challenge,
        artist_codes=codes.astype(np.int64),
        artist_names=artist_names.astype(np.str_),
        holdout=holdout,
        seed=seed,
    )


def playlist_specs(kinds: Sequence[str], overrides: Mapping[str, Mapping[str, Any]]) -> list[Any]:
    """Specs for the playlist candidates: :data:`PLAYLIST_DEFAULTS` under ``--param`` values."""
    from setlist.config import WeightConfig as Weights
    from setlist.models.specs import build_specs

    defaults = {k: dict(PLAYLIST_DEFAULTS.get(k, {})) for k in kinds}
    # binary input: popularity counts playlists (no confidence weighting to apply)
    return build_specs(list(kinds), overrides, Weights(scheme="none"), defaults)


def fit_candidate(spec: ModelSpec, prepared: PlaylistPrepared) -> tuple[Recommender, FitUsage]:
    """Fit one candidate on the training playlists (timed, peak memory measured)."""
    return fit_matrix(spec, prepared.train.csr)


def continuer_for(
    model: Recommender, prepared: PlaylistPrepared, config: ContinuationConfig
) -> Continuer:
    """The continuer a candidate is evaluated with, as the service builds it from the bundle."""
    title = TitleModel(prepared.train_names, prepared.train.csr)
    return Continuer(
        model,
        title,
        config,
        item_artists=prepared.artist_names,
        popularity=prepared.popularity,
    )


def ranked_lists(
    continuer: Continuer,
    challenge: ChallengeSet,
    popularity: npt.NDArray[np.float32],
    k: int = CHALLENGE_K,
) -> dict[int, IntArray]:
    """Top-k per case (seeds excluded); a case the continuer cannot score gets the most
    popular tracks, as the service's fallback does."""
    by_popularity = np.lexsort((np.arange(len(popularity)), -popularity))
    out: dict[int, IntArray] = {}
    for case in challenge.cases:
        found = continuer.scores(case.seeds, case.name)
        if found is None:
            ranked = by_popularity[~np.isin(by_popularity, case.seeds)][:k]
        else:
            scores = found[0] + 1e-6 * popularity / max(float(popularity.max()), 1.0)
            scores[case.seeds] = -np.inf
            take = min(k, len(scores) - len(np.unique(case.seeds)))
            top = np.argpartition(-scores, take - 1)[:take]
            ranked = top[np.lexsort((top, -scores[top]))]
        out[case.pid] = ranked.astype(np.int64)
    return out


def evaluate_continuer(
    continuer: Continuer,
    prepared: PlaylistPrepared,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> ChallengeReport:
    """The challenge report of one continuer on the prepared cases."""
    lists = ranked_lists(continuer, prepared.challenge, prepared.popularity)
    return evaluate_challenge(
        prepared.challenge,
        lists,
        prepared.artist_codes,
        seed=prepared.seed,
        n_resamples=n_resamples,
    )


def category_mean(report: ChallengeReport, category: str, metric: str) -> float:
    row = report.table.filter(pl.col("category") == category)
    return float(row[metric][0]) if row.height else float("nan")


def challenge_metrics_flat(report: ChallengeReport) -> dict[str, float]:
    """``r_precision``, ``ndcg``, ``clicks`` over all cases and ``rprec_<category>``, ... ."""
    out: dict[str, float] = {}
    short = {"r_precision": "rprec", "ndcg": "ndcg", "clicks": "clicks"}
    for row in report.table.iter_rows(named=True):
        for metric, prefix in short.items():
            if row["category"] == ALL:
                out[metric] = float(row[metric])
                out[f"{metric}_low"] = float(row[f"{metric}_low"])
                out[f"{metric}_high"] = float(row[f"{metric}_high"])
            else:
                out[f"{prefix}_{row['category']}"] = float(row[metric])
    return out


def champion_report(
    registry: Registry, prepared: PlaylistPrepared, config: ContinuationConfig, folder: Path
) -> ChallengeReport | None:
    """The current tracks champion evaluated on the same cases; None without a champion.

    The champion's tracks and the cases' are matched by track URI: seeds it does not know are
    dropped from its view, tracks it does not know cannot be recommended by it. If it was
    trained on some of these test playlists it has an unfair advantage, which only makes
    promotion harder (the gate errs on the side of the champion).
    """
    loaded = registry.load_champion(folder)
    if loaded is None:
        return None
    return bundle_report(loaded[1], prepared, config)


def bundle_report(
    bundle: ModelBundle, prepared: PlaylistPrepared, config: ContinuationConfig | None = None
) -> ChallengeReport:
    """A bundled tracks model on the prepared cases, through :func:`playlist_continuer`
    (``config`` None: the one recorded in the bundle)."""
    continuer = playlist_continuer(bundle, config)
    to_bundle = bundle.items.rows(prepared.train.items.ids.tolist())
    from_bundle = prepared.train.items.rows(bundle.items.ids.tolist())
    popularity = np.zeros(len(bundle.items), dtype=np.float32)
    popularity[:] = bundle.popularity
    lists: dict[int, IntArray] = {}
    for case in prepared.challenge.cases:
        seeds = to_bundle[case.seeds]
        seeds = seeds[seeds >= 0]
        found = continuer.scores(seeds, case.name)
        scores = np.zeros(len(bundle.items), dtype=np.float32) if found is None else found[0].copy()
        scores += 1e-6 * popularity / max(float(popularity.max()), 1.0)
        scores[seeds] = -np.inf
        scores[from_bundle < 0] = -np.inf
        order = np.argsort(-scores, kind="stable")
        order = order[np.isfinite(scores[order])][: CHALLENGE_K * 2]
        mapped = from_bundle[order]
        mapped = mapped[~np.isin(mapped, case.seeds)][:CHALLENGE_K]
        lists[case.pid] = mapped.astype(np.int64)
    return evaluate_challenge(prepared.challenge, lists, prepared.artist_codes, seed=prepared.seed)


def playlists_table(dataset: PlaylistDataset) -> pl.DataFrame:
    """Every playlist of the dataset in the bundle's :data:`~setlist.bundle.PLAYLIST_COLUMNS`."""
    tracks = (
        dataset.playlist_tracks.sort(["pid", "pos"])
        .group_by("pid", maintain_order=True)
        .agg(pl.col("track_uri").alias("tracks"))
    )
    frame = dataset.playlists.select("pid", "name", "num_followers").join(
        tracks, on="pid", how="left", maintain_order="left"
    )
    return frame.select(
        pl.col("pid").cast(pl.String),
        pl.col("name").fill_null("").cast(pl.String),
        pl.col("num_followers").fill_null(0).cast(pl.Int64),
        pl.col("tracks").fill_null([]).cast(pl.List(pl.String)),
    )


def register_best(
    best: PlaylistCandidate,
    result: PlaylistRunResult,
    registry: Registry,
    progress: Progress | None = None,
) -> None:
    """Bundle the best candidate, evaluate the champion on the same cases, log, gate."""
    say = progress or (lambda _msg: None)
    prepared, config = result.prepared, result.config
    metrics = {**best.metrics(), **best.usage.metrics()}
    params = {**best.spec.params, **config.as_params(), "holdout": prepared.holdout}
    meta = BundleMeta(
        model_type=best.kind,
        params=dict(best.spec.params),
        weighting=WeightConfig(scheme="none"),
        metrics=metrics,
        fit=best.usage.metrics(),
        dataset=prepared.dataset.name,
        data_fingerprint=prepared.dataset.fingerprint,
        split=f"playlists-holdout-{prepared.holdout}-seed-{prepared.seed}",
        trained_at=datetime.now(UTC),
        catalogue=CATALOGUE,
        extra={"continuation": config.as_params()},
    )
    bundle = ModelBundle.build(
        best.model,
        prepared.train,
        prepared.dataset.items(),
        meta,
        playlists=playlists_table(prepared.dataset),
    )
    bundle.item_attributes["artist"] = prepared.artist_names
    comparison: PairedComparison | None = None
    with tempfile.TemporaryDirectory(prefix="setlist-tracks-") as tmp:
        say("evaluating the tracks champion on the same playlists")
        result.champion_report = champion_report(registry, prepared, config, Path(tmp) / "champ")
        if result.champion_report is not None:
            comparison = compare_challenge(
                best.report, result.champion_report, metric=GATE_METRIC, seed=prepared.seed
            )
        folder = Path(tmp) / "bundle"
        bundle.save(folder)
        (folder / "challenge").mkdir()
        for cand in result.candidates:
            cand.report.table.write_csv(folder / "challenge" / f"{cand.kind}.csv")
        say(f"registering {best.kind}")
        best.version = registry.log_model(
            run_name=f"{best.kind}-{prepared.dataset.name}-{CATALOGUE}",
            bundle_dir=folder,
            model_type=best.kind,
            params=params,
            metrics=metrics,
            data={
                "name": prepared.dataset.name,
                "fingerprint": prepared.dataset.fingerprint,
                "train_playlists": prepared.train.shape[0],
                "test_playlists": len(prepared.challenge.cases),
                "tracks": prepared.train.shape[1],
                "train_nnz": prepared.train.nnz,
            },
            fit_seconds=best.usage.seconds,
            tags={"catalogue": CATALOGUE, "split": meta.split or ""},
        )
    best.decision = promote(registry, best.version, comparison=comparison, metric=GATE_METRIC)


def tracks_registry_config(settings: Settings) -> RegistryConfig:
    """The registry of the tracks catalogue: ``{model_name}-tracks`` (see catalogue.py)."""
    base = RegistryConfig.from_settings(settings)
    return replace(base, model_name=f"{settings.model_name}-{CATALOGUE}")


def run_playlists(
    prepared: PlaylistPrepared,
    specs: Sequence[ModelSpec],
    registry: Registry | None,
    progress: Progress | None = None,
    config: ContinuationConfig | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> PlaylistRunResult:
    """Fit and evaluate every candidate, pick the best by R-precision, register it (gated)."""
    say = progress or (lambda _msg: None)
    result = PlaylistRunResult(prepared, config or ContinuationConfig())
    for spec in specs:
        say(f"fitting {spec.kind}")
        model, usage = fit_candidate(spec, prepared)
        say(f"evaluating {spec.kind}")
        continuer = continuer_for(model, prepared, result.config)
        report = evaluate_continuer(continuer, prepared, n_resamples=n_resamples)
        result.candidates.append(PlaylistCandidate(spec, model, usage, report))
    if not result.candidates:
        return result
    result.best = max(result.candidates, key=lambda c: c.r_precision)
    if registry is not None:
        register_best(result.best, result, registry, say)
    return result


def scored_inputs(spec: ModelSpec, prepared: PlaylistPrepared) -> sp.csr_matrix:
    """What a candidate is fitted on (binary counts, weighted as the spec says)."""
    return inputs(spec, prepared.train.csr)


def write_demo_slices(
    folder: Path, n_playlists: int = 600, n_tracks: int = 1_200, seed: int = 0
) -> Path:
    """A small synthetic MPD (slice format) for ``setlist demo`` where no mirror has the MPD.

    Tracks belong to 12 themes (with 8 artists each); a playlist, named after its theme, draws
    10 to 60 tracks mostly from its theme and a few from anywhere, popular tracks first within
    a theme (Zipf-like), so co-occurrence, names and artists carry the signal real playlists
    have. Written as slices of 100 playlists; seeded, so the demo is reproducible.
    """
    import orjson

    themes = ("summer", "chill", "workout", "party", "road trip", "sad", "throwback", "rock",
              "jazz", "country", "focus", "sleep")  # fmt: skip
    rng = np.random.default_rng(seed)
    theme_of = np.arange(n_tracks) % len(themes)
    weight = 1.0 / (1.0 + np.arange(n_tracks) // len(themes))
    folder.mkdir(parents=True, exist_ok=True)
    playlists: list[dict[str, Any]] = []
    for pid in range(n_playlists):
        theme = int(rng.integers(len(themes)))
        own = np.flatnonzero(theme_of == theme)
        p = weight[own] / weight[own].sum()
        size = int(rng.integers(10, 61))
        chosen = list(rng.choice(own, size=min(size, len(own)), replace=False, p=p))
        chosen += list(rng.choice(n_tracks, size=max(1, size // 10), replace=False))
        tracks = [
            {
                "pos": pos,
                "track_uri": f"spotify:track:demo{t:05d}",
                "track_name": f"{themes[theme_of[t]].title()} Song {t}",
                "artist_name": f"{themes[theme_of[t]].title()} Artist {(t // 12) % 8}",
            }
            for pos, t in enumerate(dict.fromkeys(int(t) for t in chosen))
        ]
        name = f"{themes[theme]} {['mix', 'vibes', 'playlist', '2017'][pid % 4]}"
        playlists.append(
            {"pid": pid, "name": name, "num_followers": 1, "num_tracks": len(tracks),
             "tracks": tracks}
        )  # fmt: skip
    for start in range(0, n_playlists, 100):
        part = playlists[start : start + 100]
        stop = start + 99
        doc = {"info": {"generated_by": "setlist demo"}, "playlists": part}
        (folder / f"mpd.slice.{start}-{stop}.json").write_bytes(orjson.dumps(doc))
    return folder


@dataclass
class PlaylistTuning:
    """What :func:`tune_playlists` found: the best blend weight and continuation config."""

    blend_weight: float
    config: ContinuationConfig
    validation_r_precision: float
    trials: int


def validation_split(prepared: PlaylistPrepared, holdout: int) -> PlaylistPrepared:
    """The training playlists alone, split again: ``holdout`` of them become validation cases.

    Tuning looks only at these; the test playlists of ``prepared`` are never seen.
    """
    keep = [int(u) for u in prepared.train.users.ids]
    ds = prepared.dataset
    sub = replace(
        ds,
        playlists=ds.playlists.filter(pl.col("pid").is_in(keep)),
        playlist_tracks=ds.playlist_tracks.filter(pl.col("pid").is_in(keep)),
        store=None,
    )
    return prepare_playlists(sub, None, holdout=holdout, seed=prepared.seed + 1)


def tune_playlists(
    prepared: PlaylistPrepared,
    spec: ModelSpec,
    *,
    trials: int = 12,
    validation: int = 300,
    progress: Progress | None = None,
) -> PlaylistTuning:
    """Optuna (TPE, seeded) over the blend's EASE weight and the continuation's title and
    artist weights, on validation playlists drawn from the training playlists only.

    The blend's members are fitted once on the validation split's training playlists; a trial
    re-weights them (:meth:`~setlist.models.blend.BlendRecommender.from_fitted`) and scores
    the validation cases, so a trial costs seconds, not a refit.
    """
    import optuna

    from setlist.models.blend import BlendRecommender

    say = progress or (lambda _msg: None)
    if spec.kind != "blend":
        raise DataError(f"playlist tuning searches a blend, got {spec.kind!r}", field="models")
    val = validation_split(prepared, min(validation, max(1, prepared.train.shape[0] // 4)))
    say("fitting the blend's members on the validation split")
    blend, _ = fit_candidate(spec, val)
    assert isinstance(blend, BlendRecommender)

    def objective(trial: optuna.Trial) -> float:
        w = trial.suggest_float("blend_weight", 0.3, 0.95)
        config = ContinuationConfig(
            title_weight=trial.suggest_float("title_weight", 0.0, 0.4),
            artist_weight=trial.suggest_float("artist_weight", 0.0, 0.6),
        )
        model = BlendRecommender.from_fitted(blend.models_, [w, 1.0 - w], normalize="max")
        report = evaluate_continuer(continuer_for(model, val, config), val, n_resamples=50)
        say(f"trial {trial.number}: R-precision {category_mean(report, ALL, 'r_precision'):.4f}")
        return category_mean(report, ALL, "r_precision")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=prepared.seed)
    )
    study.enqueue_trial({"blend_weight": 0.7, "title_weight": 0.1, "artist_weight": 0.2})
    study.optimize(objective, n_trials=trials)
    best = study.best_params
    return PlaylistTuning(
        blend_weight=float(best["blend_weight"]),
        config=ContinuationConfig(
            title_weight=float(best["title_weight"]), artist_weight=float(best["artist_weight"])
        ),
        validation_r_precision=float(study.best_value),
        trials=len(study.trials),
    )
