"""The stages chained: ingest -> validate -> clean -> split -> train -> evaluate -> register.

Each stage is a plain function over a typed value; :func:`run` strings them together for the
CLI (``setlist train`` and ``setlist demo``) and :mod:`setlist.tune.study` reuses the pieces.
Nothing here reads Settings: callers pass typed sections down.

Every fit is measured (:func:`measure`): wall seconds and the process's peak resident memory
during the fit (Linux resets the high-water mark through ``/proc/self/clear_refs``; elsewhere the
lifetime peak is reported). Registration goes through the promotion gate with paired evidence:
the current champion is evaluated on the same test users as the candidate
(:func:`champion_per_user`), so the gate's Wilcoxon test and bootstrap interval compare like
with like.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp

from setlist.bundle import ModelBundle
from setlist.bundle_meta import BundleMeta
from setlist.config import CleanConfig, SplitConfig, WeightConfig
from setlist.data.clean import aggregate, kcore
from setlist.data.loaders import load
from setlist.data.schema import Dataset
from setlist.data.sources import SourceConfig
from setlist.data.split import Split, fixed_split, split
from setlist.data.validate import ValidationReport, quality_figures
from setlist.errors import ConfigError
from setlist.evaluate.metrics import ndcg_at_k
from setlist.evaluate.protocol import MetricsReport, evaluate, relevant_items
from setlist.evaluate.stats import PairedComparison, compare_paired
from setlist.matrix import IdIndex, InteractionMatrix, build_matrix, weight
from setlist.models.base import Recommender
from setlist.models.specs import ModelSpec
from setlist.registry import ModelVersion, PromotionDecision, Registry
from setlist.registry.gate import promote

if TYPE_CHECKING:
    from setlist.config import IndexConfig

Progress = Callable[[str], None]
OnBadRows = Literal["fail", "quarantine"]
GATE_K = 10  # the gate compares per-user NDCG@10


@dataclass
class Prepared:
    """A cleaned dataset split into train and test matrices over one shared catalogue."""

    dataset: Dataset
    report: ValidationReport
    split: Split
    train: InteractionMatrix
    test: InteractionMatrix
    quality: dict[str, float]
    #: Listeners the k-core filter (or the split) left without training rows, with their
    #: histories over the catalogue: the bundle keeps them so the service folds them in.
    untrained: InteractionMatrix | None = None


@dataclass
class FitUsage:
    """What one fit cost: wall seconds and peak resident memory (MiB) of the process."""

    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    start_rss_mb: float = 0.0

    @property
    def peak_delta_mb(self) -> float:
        return max(0.0, self.peak_rss_mb - self.start_rss_mb)

    def metrics(self) -> dict[str, float]:
        return {
            "fit_seconds": self.seconds,
            "fit_peak_rss_mb": self.peak_rss_mb,
            "fit_peak_delta_mb": self.peak_delta_mb,
        }


@dataclass
class TrainedModel:
    """One model fitted, evaluated and (optionally) registered."""

    spec: ModelSpec
    model: Recommender
    usage: FitUsage
    report: MetricsReport
    version: ModelVersion | None = None
    decision: PromotionDecision | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def params(self) -> dict[str, Any]:
        return self.spec.params

    @property
    def fit_seconds(self) -> float:
        return self.usage.seconds


@dataclass
class RunResult:
    prepared: Prepared
    models: list[TrainedModel] = field(default_factory=list)

    @property
    def champion(self) -> TrainedModel | None:
        """The model the registry's gate promoted last in this run, if any."""
        promoted = [m for m in self.models if m.decision and m.decision.promoted]
        return promoted[-1] if promoted else None


def ingest(
    source: str,
    sources: SourceConfig,
    *,
    on_bad_rows: OnBadRows = "fail",
    quarantine_dir: Path | None = None,
) -> tuple[Dataset, ValidationReport]:
    """Fetch (mirror, cache or download, checksummed) and load a source, validating every row."""
    return load(source, sources, on_bad_rows=on_bad_rows, quarantine_dir=quarantine_dir)


def prepare(
    dataset: Dataset,
    report: ValidationReport,
    clean: CleanConfig,
    split_config: SplitConfig,
    test: pl.DataFrame | None = None,
) -> Prepared:
    """Aggregate duplicates, apply the k-core filter, split, and build both matrices.

    The catalogue is every item of train and test (the full catalogue is ranked, as in
    protocol A); a fixed test file is laid over it, dropping its unknown users.
    """
    aggregated = aggregate(dataset.interactions)
    frame = kcore(aggregated, clean)
    if frame.height == 0:
        raise ConfigError(
            f"no interactions left after the k-core filter (min_user_items={clean.min_user_items},"
            f" min_item_users={clean.min_item_users}) on dataset {dataset.name!r}"
        )
    parts = fixed_split(frame, aggregate(test)) if test is not None else split(frame, split_config)
    users = IdIndex.from_series(parts.train.get_column("user"))
    items = IdIndex.from_series(
        pl.concat([parts.train.get_column("item"), parts.test.get_column("item")])
    )
    train = build_matrix(parts.train, users, items)
    test_matrix = build_matrix(parts.test, users, items)
    quality = quality_figures(frame)
    cleaned = Dataset(dataset.name, frame, dataset.items, dataset.item_tags)
    untrained = untrained_histories(aggregated, users, items)
    return Prepared(cleaned, report, parts, train, test_matrix, quality, untrained)


def untrained_histories(
    interactions: pl.DataFrame, trained: IdIndex, items: IdIndex
) -> InteractionMatrix:
    """The histories, over ``items``, of the listeners of ``interactions`` not in ``trained``.

    A listener with too few items for ``min_user_items`` is still known: serving folds them in
    from this history (and never recommends what they heard) instead of answering a stranger.
    Listeners with no item left in the catalogue are left out: there is nothing to fold in.
    """
    rest = interactions.filter(
        ~pl.col("user").is_in(trained.ids.tolist()), pl.col("item").is_in(items.ids.tolist())
    )
    users = IdIndex(sorted(set(rest.get_column("user").to_list())))
    return build_matrix(rest, users, items)


def _rss_mb(field_name: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


@contextmanager
def measure() -> Iterator[FitUsage]:
    """Wall time and peak RSS of the block (fills the yielded :class:`FitUsage` on exit)."""
    usage = FitUsage(start_rss_mb=_rss_mb("VmRSS") or 0.0)
    reset = False
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM, the peak RSS, to the current RSS
        reset = True
    except OSError:
        pass
    started = time.perf_counter()
    try:
        yield usage
    finally:
        usage.seconds = time.perf_counter() - started
        peak = _rss_mb("VmHWM") if reset else None
        if peak is None:  # lifetime peak: kB on Linux, bytes on macOS
            scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
        usage.peak_rss_mb = peak


def inputs(spec: ModelSpec, csr: sp.csr_matrix) -> sp.csr_matrix:
    """What the model is fitted and scored on: raw counts for models that weigh their own
    input, the spec's confidence weighting otherwise."""
    return csr if spec.weighs_itself else weight(csr, spec.weights)


def fit(spec: ModelSpec, train: InteractionMatrix) -> tuple[Recommender, FitUsage]:
    """Fit one model; returns it and what the fit cost (weighting included)."""
    return fit_matrix(spec, train.csr)


def fit_matrix(spec: ModelSpec, raw: sp.csr_matrix) -> tuple[Recommender, FitUsage]:
    """:func:`fit` on a bare users x items matrix of raw counts."""
    model = spec.build()
    with measure() as usage:
        model.fit(inputs(spec, raw))
    return model, usage


def train_one(
    spec: ModelSpec, prepared: Prepared, progress: Progress | None = None
) -> TrainedModel:
    """Fit on the training matrix and evaluate on the held-out test set."""
    say = progress or (lambda _msg: None)
    say(f"fitting {spec.kind}")
    model, usage = fit(spec, prepared.train)
    say(f"evaluating {spec.kind}")
    report = evaluate(model, inputs(spec, prepared.train.csr), prepared.test.csr)
    return TrainedModel(spec, model, usage, report)


def train_and_register(
    spec: ModelSpec,
    prepared: Prepared,
    registry: Registry | None,
    progress: Progress | None = None,
    index_config: IndexConfig | None = None,
) -> TrainedModel:
    """Fit, evaluate, and register through the promotion gate (with paired evidence)."""
    trained = train_one(spec, prepared, progress)
    if registry is not None:
        (progress or (lambda _msg: None))(f"registering {spec.kind}")
        register_and_gate(trained, prepared, registry, index_config=index_config)
    return trained


def register_and_gate(
    trained: TrainedModel,
    prepared: Prepared,
    registry: Registry,
    tags: dict[str, str] | None = None,
    index_config: IndexConfig | None = None,
) -> None:
    """Log the bundle as a new version, evaluate the champion on the same split, run the gate."""
    spec = trained.spec
    weighting = (
        WeightConfig(scheme="linear", alpha=1.0)  # identity: the model weighs raw counts itself
        if spec.weighs_itself
        else WeightConfig(scheme=spec.weights.scheme, alpha=spec.weights.alpha)
    )
    meta = BundleMeta(
        model_type=spec.kind,
        params=dict(spec.params),
        weighting=weighting,
        metrics=dict(trained.report.metrics),
        fit=trained.usage.metrics(),
        dataset=prepared.dataset.name,
        data_fingerprint=prepared.dataset.fingerprint(),
        split=prepared.split.strategy,
        trained_at=datetime.now(UTC),
    )
    bundle = ModelBundle.build(
        trained.model,
        prepared.train,
        prepared.dataset.items,
        meta,
        item_tags=prepared.dataset.item_tags,
        index_config=index_config,
        untrained=prepared.untrained,
    )
    with tempfile.TemporaryDirectory(prefix="setlist-bundle-") as tmp:
        comparison = champion_comparison(registry, trained.report, prepared, Path(tmp) / "champ")
        bundle.save(Path(tmp) / "bundle")
        trained.version = registry.log_model(
            run_name=f"{spec.kind}-{prepared.dataset.name}",
            bundle_dir=Path(tmp) / "bundle",
            model_type=spec.kind,
            params={
                **spec.params,
                "weighting.scheme": weighting.scheme,
                "weighting.alpha": weighting.alpha,
            },
            metrics={**trained.report.metrics, **trained.usage.metrics()},
            data=_data_info(prepared),
            fit_seconds=trained.usage.seconds,
            tags={"split": prepared.split.strategy, **(tags or {})},
        )
    trained.decision = promote(registry, trained.version, comparison=comparison)


def champion_comparison(
    registry: Registry, report: MetricsReport, prepared: Prepared, folder: Path
) -> PairedComparison | None:
    """Candidate vs current champion on the candidate's test users; None without a champion."""
    loaded = registry.load_champion(folder)
    if loaded is None:
        return None
    _, bundle = loaded
    champion = champion_per_user(bundle, prepared.train, prepared.test, report.user_rows)
    return compare_paired(report.per_user[f"ndcg@{GATE_K}"], champion)


def champion_per_user(
    bundle: ModelBundle,
    train: InteractionMatrix,
    test: InteractionMatrix,
    user_rows: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Per-user NDCG@10 of a bundled model on these users of this split (see
    :func:`bundle_ranked`): the champion's side of the gate's paired comparison."""
    relevant = relevant_items(train.csr, test.csr)[user_rows]
    return ndcg_at_k(bundle_ranked(bundle, train, user_rows, GATE_K), relevant, GATE_K)


def bundle_ranked(
    bundle: ModelBundle,
    train: InteractionMatrix,
    user_rows: npt.NDArray[np.int64],
    k: int,
    batch: int = 4096,
) -> npt.NDArray[np.int64]:
    """Top-k of a bundled model for these users of a split, as item rows of the split's
    catalogue: histories are the split's, mapped by external id.

    Users the bundle knows are ranked as fitted users, others are folded in from their history;
    items the bundle does not know cannot be recommended by it (they stay relevant, as misses).

    This is an evaluation ranking of the raw model, not an answer: it does not go through
    ``ModelState.answer`` on purpose. The gate compares a candidate model with the champion
    (and ``setlist evaluate-version`` scores one) on the same footing as the offline metrics
    of training, which rank the model alone; the business rules (blocked items, per-tag cap,
    new-item slot) depend on the serving settings, not on the model, and would make a
    model's score change with them.
    """
    to_bundle = bundle.items.rows(train.items.ids.tolist())
    from_bundle = train.items.rows(bundle.items.ids.tolist())
    histories = _remap_columns(train.csr[user_rows], to_bundle, len(bundle.items))
    histories = _bundle_inputs(bundle, histories)
    known_rows = bundle.users.rows(train.users.ids[user_rows].tolist())
    ranked = np.full((len(user_rows), k), -1, dtype=np.int64)
    for start in range(0, len(user_rows), batch):
        part = slice(start, start + batch)
        rows, hist = known_rows[part], histories[part]
        known = rows >= 0
        out = np.full((len(rows), k), -1, dtype=np.int64)
        if known.any():
            out[known] = bundle.model.recommend(rows[known], hist[known], k=k)[0]
        if (~known).any():
            out[~known] = bundle.model.recommend_histories(hist[~known], k=k)[0]
        ranked[part] = np.where(out >= 0, from_bundle[np.maximum(out, 0)], -1)
    return ranked


def _remap_columns(csr: sp.csr_matrix, columns: npt.NDArray[np.int64], n: int) -> sp.csr_matrix:
    coo = csr.tocoo()
    target = columns[coo.col]
    keep = target >= 0
    return sp.csr_matrix(
        (coo.data[keep], (coo.row[keep], target[keep])), shape=(csr.shape[0], n), dtype=np.float32
    )


def _bundle_inputs(bundle: ModelBundle, raw: sp.csr_matrix) -> sp.csr_matrix:
    """Raw counts weighted as the bundle's model was trained (recorded in its metadata)."""
    recorded = bundle.meta.weighting
    return raw if recorded is None else weight(raw, recorded)


def _data_info(prepared: Prepared) -> dict[str, Any]:
    return {
        "name": prepared.dataset.name,
        "fingerprint": prepared.dataset.fingerprint(),
        "rows_read": prepared.report.rows_read,
        "rows_quarantined": prepared.report.rows_quarantined,
        "train_nnz": prepared.train.nnz,
        "test_nnz": prepared.test.nnz,
        **{f"quality.{k}": v for k, v in prepared.quality.items()},
    }


def run(
    prepared: Prepared,
    specs: Sequence[ModelSpec],
    registry: Registry | None,
    progress: Progress | None = None,
    index_config: IndexConfig | None = None,
) -> RunResult:
    """Train, evaluate and register each model in turn (popularity first, as the baseline)."""
    result = RunResult(prepared)
    for spec in specs:
        result.models.append(
            train_and_register(spec, prepared, registry, progress, index_config=index_config)
        )
    return result
