"""One retraining: snapshot the events, merge them into the data, fit the champion's family,
and put the candidate through the promotion gate against the champion.

The gate's evidence is what listeners do *now*: the test set is a seeded share
(``recent_test_fraction``) of the (user, artist) pairs that listeners discovered on their own
in the latest window of events: pairs the base data did not have, that they engaged with
(listen of 30 s or more, like, playlist add), and that no model showed them in that window.
Leaving out what was shown matters: a listen of a recommended artist is partly the champion's
own doing (it chose what to show), so testing on it would favour the champion; organic
discoveries favour neither side, and the champion never saw them. The candidate trains on
everything else (base data plus all other events, :func:`setlist.events.training.merge_events`).
With fewer than the gate's minimum of test users there, the candidate falls back to the
configured split of the merged data.

The family is the champion's: its model kind, parameters and weighting, read from the
champion's bundle (as tuned by ``setlist tune`` or set by ``setlist train``); without a
champion, the given default spec.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from setlist.bundle import ModelBundle
from setlist.config import CleanConfig, IndexConfig, SplitConfig, WeightConfig
from setlist.data.schema import INTERACTION_SCHEMA, Dataset, conform
from setlist.data.validate import ValidationReport
from setlist.evaluate.protocol import evaluate
from setlist.events.training import MergeReport, event_weights, merge_events
from setlist.events.weights import FeedbackWeights
from setlist.models.specs import ModelSpec
from setlist.pipeline import (
    Prepared,
    TrainedModel,
    fit_matrix,
    inputs,
    prepare,
    register_and_gate,
    train_one,
)
from setlist.registry import PromotionDecision, Registry
from setlist.registry.gate import MIN_USERS

log = logging.getLogger(__name__)

Transform = Callable[[sp.csr_matrix], sp.csr_matrix]


@dataclass(frozen=True)
class RetrainConfig:
    """What a retraining uses besides the data: cleaning, split, the held-out share, index."""

    clean: CleanConfig
    split: SplitConfig
    index: IndexConfig | None = None
    recent_test_fraction: float = 0.5


@dataclass
class RetrainResult:
    """A fitted, registered candidate and the gate's decision about it."""

    trained: TrainedModel
    decision: PromotionDecision
    merge: MergeReport
    test_source: str  # "recent" (discoveries of the latest window) or the split's strategy
    test_users: int
    snapshot: Path

    @property
    def promoted(self) -> bool:
        return self.decision.promoted


def champion_spec(bundle: ModelBundle) -> ModelSpec:
    """The champion's model family: kind, constructor parameters and input weighting."""
    meta = bundle.meta
    return ModelSpec(meta.model_type or "", dict(meta.params), meta.weighting or WeightConfig())


def recent_discoveries(
    events: pl.DataFrame,
    base: Dataset,
    since_us: int,
    fraction: float,
    seed: int,
) -> pl.DataFrame:
    """A seeded ``fraction`` of each listener's organic discoveries since ``since_us``.

    Discoveries: pairs absent from the base data whose engagement weight in that window is
    above 0, never disliked, and never shown (no impression of the pair in the window).
    Interactions schema (user, item, weight, timestamp).
    """
    window = events.filter(pl.col("ts_us") >= since_us)
    shown = (
        window.filter(pl.col("type") == "impression")
        .select(user=pl.col("user_id"), item=pl.col("item_id"))
        .unique()
    )
    recent = event_weights(window, FeedbackWeights())
    disliked = recent.filter(pl.col("disliked")).select("user", "item").unique()
    pairs = (
        recent.filter(pl.col("weight") != 0.0)
        .group_by("user", "item")
        .agg(pl.col("weight").sum(), pl.col("timestamp").min())
        .filter(pl.col("weight") > 0.0)
        .join(disliked, on=["user", "item"], how="anti")
        .join(shown, on=["user", "item"], how="anti")
        .join(base.interactions.select("user", "item").unique(), on=["user", "item"], how="anti")
        .sort("user", "item")
    )
    keys = np.random.default_rng(seed).random(pairs.height)
    chosen = pairs.with_columns(_k=pl.Series(keys, dtype=pl.Float64)).filter(
        pl.col("_k") < fraction
    )
    return conform(chosen.drop("_k"), INTERACTION_SCHEMA)


def snapshot_events(events: pl.DataFrame, folder: Path, until_us: int) -> Path:
    """The events a retraining reads, frozen as Parquet (logged with the decision)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"events-until-{until_us}.parquet"
    events.write_parquet(path)
    return path


def retrain(
    *,
    base: Dataset,
    report: ValidationReport,
    events: pl.DataFrame,
    registry: Registry,
    default_spec: ModelSpec,
    config: RetrainConfig,
    now_us: int,
    window_s: float,
    snapshot_dir: Path,
    tags: dict[str, str] | None = None,
    transform: Transform | None = None,
    champion: ModelBundle | None = None,
) -> RetrainResult:
    """Snapshot, merge, fit the champion's family, register and gate (see the module doc).

    ``transform`` changes the matrix the candidate is fitted on (never the histories and test
    set it is judged by): the gate drill (``setlist retrain --drill shuffle``) shuffles it to
    prove that a worse model is refused.
    """
    events = events.filter(pl.col("ts_us") < now_us)
    snapshot = snapshot_events(events, snapshot_dir, now_us)
    merged, merge = merge_events(base, events)
    since = now_us - int(window_s * 1_000_000)
    test = recent_discoveries(events, base, since, config.recent_test_fraction, config.split.seed)
    test_users = test.get_column("user").n_unique() if test.height else 0
    fixed = test if test_users >= MIN_USERS else None
    prepared = prepare(merged, report, config.clean, config.split, fixed)
    spec = champion_spec(champion) if champion is not None else default_spec
    trained = train_one(spec, prepared) if transform is None else _drill(spec, prepared, transform)
    run_tags = {**(tags or {}), "loop.snapshot": snapshot.name}
    register_and_gate(trained, prepared, registry, tags=run_tags, index_config=config.index)
    assert trained.decision is not None  # register_and_gate always decides
    source = "recent" if fixed is not None else prepared.split.strategy
    evaluated = int((prepared.test.csr.getnnz(axis=1) > 0).sum())
    log.info("retrained %s on %s test: %s", spec.kind, source, trained.decision.reason)
    return RetrainResult(trained, trained.decision, merge, source, evaluated, snapshot)


def shuffle_items(seed: int = 0) -> Transform:
    """The training matrix with its items shuffled: a deliberately worse model's data (each
    listener keeps their number of artists and plays, but of random artists)."""

    def transform(csr: sp.csr_matrix) -> sp.csr_matrix:
        shuffled = csr.copy()
        shuffled.indices = np.random.default_rng(seed).permutation(csr.shape[1])[csr.indices]
        shuffled.sort_indices()
        return shuffled

    return transform


def _drill(spec: ModelSpec, prepared: Prepared, transform: Transform) -> TrainedModel:
    """Fit on transformed training data; evaluate on the real histories and test set, as the
    gate will."""
    model, usage = fit_matrix(spec, transform(prepared.train.csr))
    report = evaluate(model, inputs(spec, prepared.train.csr), prepared.test.csr)
    return TrainedModel(spec, model, usage, report)


def describe(result: RetrainResult) -> dict[str, Any]:
    """Figures of a retraining for the decision's MLflow run."""
    d = result.decision
    out: dict[str, Any] = {
        "candidate_version": d.candidate.version,
        "candidate_value": d.candidate_value,
        "test_source": result.test_source,
        "test_users": result.test_users,
        "events": result.merge.events,
        "pairs_added": result.merge.pairs_added,
    }
    if d.comparison is not None:
        out.update(p_value=d.comparison.p_value, mean_diff=d.comparison.diff.mean)
    return out
