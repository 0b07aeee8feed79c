"""The stages chained: ingest -> validate -> clean -> split -> train -> evaluate -> register.

Each stage is a plain function over a typed value; :func:`run` strings them together for the
CLI (``setlist train`` and ``setlist demo``). Nothing here reads Settings: callers pass typed
sections down.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from setlist.config import CleanConfig, SplitConfig, WeightConfig
from setlist.data.clean import aggregate, kcore
from setlist.data.loaders import load
from setlist.data.schema import Dataset
from setlist.data.sources import SourceConfig
from setlist.data.split import Split, fixed_split, split
from setlist.data.validate import ValidationReport, quality_figures
from setlist.errors import ConfigError
from setlist.evaluate.protocol import MetricsReport, evaluate
from setlist.matrix import IdIndex, InteractionMatrix, build_matrix, weight
from setlist.models.base import Recommender, model_class
from setlist.models.bundle import ModelBundle
from setlist.registry import ModelVersion, PromotionDecision, Registry

Progress = Callable[[str], None]
OnBadRows = Literal["fail", "quarantine"]


@dataclass
class Prepared:
    """A cleaned dataset split into train and test matrices over one shared catalogue."""

    dataset: Dataset
    report: ValidationReport
    split: Split
    train: InteractionMatrix
    test: InteractionMatrix
    quality: dict[str, float]


@dataclass
class TrainedModel:
    """One model fitted, evaluated and (optionally) registered."""

    kind: str
    params: dict[str, Any]
    model: Recommender
    fit_seconds: float
    report: MetricsReport
    version: ModelVersion | None = None
    decision: PromotionDecision | None = None


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
    frame = kcore(aggregate(dataset.interactions), clean)
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
    return Prepared(cleaned, report, parts, train, test_matrix, quality)


def fit(
    kind: str, params: dict[str, Any], train: InteractionMatrix, weights: WeightConfig
) -> tuple[Recommender, float]:
    """Fit one model on confidence-weighted training data; returns it and its fit seconds."""
    model = model_class(kind)(**params)
    confidences = weight(train.csr, weights)
    started = time.perf_counter()
    model.fit(confidences)
    return model, time.perf_counter() - started


def train_and_register(
    kind: str,
    params: dict[str, Any],
    prepared: Prepared,
    weights: WeightConfig,
    registry: Registry | None,
    progress: Progress | None = None,
) -> TrainedModel:
    """Fit, evaluate on the held-out test set, and register through the promotion gate."""
    say = progress or (lambda _msg: None)
    say(f"fitting {kind}")
    model, seconds = fit(kind, params, prepared.train, weights)
    say(f"evaluating {kind}")
    report = evaluate(model, weight(prepared.train.csr, weights), prepared.test.csr)
    trained = TrainedModel(kind, params, model, seconds, report)
    if registry is None:
        return trained
    say(f"registering {kind}")
    meta = {
        "model_type": kind,
        "params": params,
        "weighting": weights.__dict__,
        "metrics": report.metrics,
        "dataset": prepared.dataset.name,
        "data_fingerprint": prepared.dataset.fingerprint(),
        "split": prepared.split.strategy,
        "trained_at": datetime.now(UTC).isoformat(),
    }
    bundle = ModelBundle.build(model, prepared.train, prepared.dataset.items, meta)
    with tempfile.TemporaryDirectory(prefix="setlist-bundle-") as tmp:
        bundle.save(Path(tmp))
        trained.version = registry.log_model(
            run_name=f"{kind}-{prepared.dataset.name}",
            bundle_dir=Path(tmp),
            model_type=kind,
            params={**params, **{f"weighting.{k}": v for k, v in weights.__dict__.items()}},
            metrics=report.metrics,
            data=_data_info(prepared),
            fit_seconds=seconds,
            tags={"split": prepared.split.strategy},
        )
    trained.decision = registry.promote_if_better(trained.version)
    return trained


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
    models: Sequence[tuple[str, dict[str, Any]]],
    weights: WeightConfig,
    registry: Registry | None,
    progress: Progress | None = None,
) -> RunResult:
    """Train, evaluate and register each model in turn (popularity first, as the baseline)."""
    result = RunResult(prepared)
    for kind, params in models:
        result.models.append(
            train_and_register(kind, params, prepared, weights, registry, progress)
        )
    return result
