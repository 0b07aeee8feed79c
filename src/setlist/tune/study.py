"""A tuning study under a wall-clock budget: search, blend, refit the winner, gate it.

1. **Search** (Optuna TPE, or Ray Tune with the same space): each trial picks a model kind and
   its parameters (:mod:`setlist.tune.space`), fits on the fitting part of the training split and
   is scored on the validation users (:mod:`setlist.tune.trials`). Iterative models first report a
   one-third-fidelity value, which the median pruner may cut. A trial is not started when its
   kind's median fit time no longer fits in the time left.
2. **Blend** (when ``blend`` is among the models): TPE over the weights of a blend of the best
   model of each kind (up to three), on their cached validation scores.
3. **Final**: the best validated candidate is refitted on the whole training part and evaluated
   on the test set (the honest figure), then registered and put through the promotion gate.

The budget covers all three: the search stops early enough to leave the blend its share and the
final refit about 1.5 times the fit time of the members it will refit. Every trial is a nested
MLflow run under the study's run.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from setlist.config import WeightConfig
from setlist.errors import ConfigError, SetlistError
from setlist.models.base import model_class
from setlist.models.specs import ModelSpec
from setlist.pipeline import Prepared, TrainedModel, register_and_gate, train_one
from setlist.registry.store import Registry
from setlist.tune.space import at_fidelity, cheapest_trial_seconds, fidelity_param, suggest
from setlist.tune.tracking import StudyTracker
from setlist.tune.trials import TrialResult, TrialRunner, tuning_split

log = logging.getLogger(__name__)
BACKENDS = ("optuna", "ray")
FIDELITY = 1 / 3
MAX_BLEND_MEMBERS = 3
BLEND_MAX_S = 30.0  # a blend trial is a ranking over cached scores: a second or less
REGISTER_S = 10.0  # evaluating the refit, the champion, saving and logging the bundle


@dataclass(frozen=True)
class TuneConfig:
    """What to search and for how long."""

    kinds: tuple[str, ...]
    budget_s: float
    backend: str = "optuna"
    max_trials: int | None = None
    seed: int = 0
    validation_fraction: float = 0.2
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    weights: WeightConfig | None = None  # ALS / popularity weighting; searched when None
    ray_address: str | None = None
    blend_share: float = 0.12
    prune: bool = True

    @property
    def base_kinds(self) -> list[str]:
        """The kinds a trial samples directly (the blend is searched over their best)."""
        return [k for k in self.kinds if model_class(k).tunable]


def check_config(config: TuneConfig) -> None:
    """Refuse a configuration that cannot work, before any data is read."""
    if config.backend not in BACKENDS:
        raise ConfigError(f"--backend must be optuna or ray, got {config.backend!r}")
    if not config.base_kinds:
        raise ConfigError("--models needs at least one model besides blend")
    if "blend" in config.kinds and len(config.base_kinds) < 2:
        raise ConfigError("--models: blend needs at least two other models to blend")
    if config.max_trials is not None and config.max_trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {config.max_trials}")
    if not 0 < config.validation_fraction < 1:
        raise ConfigError(
            f"--validation-fraction must be in (0, 1), got {config.validation_fraction}"
        )


def check_budget(config: TuneConfig, prepared: Prepared) -> None:
    """Refuse a budget shorter than the cheapest trial's estimated fit on this data."""
    kind, need = cheapest_trial_seconds(config.base_kinds, prepared.train.csr)
    if need > config.budget_s:
        raise ConfigError(
            f"--budget {config.budget_s:g}s cannot run one trial: the cheapest ({kind}) needs "
            f"about {need:.0f}s on this data; accepted range is >= {math.ceil(need)}s",
            field="budget",
        )


@dataclass
class StudyResult:
    trials: list[TrialResult]
    best_spec: ModelSpec
    best_value: float
    final: TrainedModel
    seconds: float
    parent_run_id: str | None = None


class Clock:
    """The study's deadline: ``budget_s`` from ``start`` (monotonic; default now)."""

    def __init__(self, budget_s: float, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self.budget_s = budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.budget_s - self.elapsed()


def run_study(
    prepared: Prepared,
    config: TuneConfig,
    registry: Registry | None,
    say: Callable[[str], None] = lambda _m: None,
    started: float | None = None,
) -> StudyResult:
    """The whole study (see the module docstring); registers and gates the winner.

    ``started`` (``time.monotonic()``) is when the budget began, e.g. before the data was read.
    """
    check_config(config)
    check_budget(config, prepared)
    clock = Clock(config.budget_s, started)
    data = tuning_split(prepared, config.validation_fraction, config.seed)
    tracker = None
    if registry is not None:
        tracker = StudyTracker(registry, f"tune-{prepared.dataset.name}", _study_params(config))
    try:
        result = _search_and_refit(prepared, config, TrialRunner(data), clock, tracker, say)
    except BaseException:
        if tracker is not None:
            tracker.finish({}, {"setlist.error": "the study stopped early"}, status="FAILED")
        raise
    if tracker is not None:
        result.parent_run_id = tracker.parent_id
        tracker.finish(_final_metrics(result), {"setlist.best_kind": result.best_spec.kind})
    if registry is not None:
        say("registering the winner and running the promotion gate")
        tags = {"setlist.study_run": result.parent_run_id or "", "setlist.tuned": "true"}
        register_and_gate(result.final, prepared, registry, tags=tags)
    result.seconds = clock.elapsed()
    return result


def _search_and_refit(
    prepared: Prepared,
    config: TuneConfig,
    runner: TrialRunner,
    clock: Clock,
    tracker: StudyTracker | None,
    say: Callable[[str], None],
) -> StudyResult:
    search = _search_optuna if config.backend == "optuna" else _search_ray
    trials = search(runner, config, clock, tracker, say)
    blend = _blend_phase(runner, config, clock, tracker, say) if "blend" in config.kinds else None
    best_spec, best_value = _choose(runner, blend)
    say(f"refitting the winner ({best_spec.kind}) on the whole training part")
    final = train_one(best_spec, prepared)
    return StudyResult(trials, best_spec, best_value, final, clock.elapsed())


def _study_params(config: TuneConfig) -> dict[str, Any]:
    return {
        "models": ",".join(config.kinds),
        "budget_s": config.budget_s,
        "backend": config.backend,
        "seed": config.seed,
        "validation_fraction": config.validation_fraction,
        "fixed": config.fixed,
    }


def _final_metrics(result: StudyResult) -> dict[str, float]:
    out = {"best_validation_ndcg_at_10": result.best_value, "trials": float(len(result.trials))}
    out.update({f"test_{k}": v for k, v in result.final.report.metrics.items()})
    out.update(result.final.usage.metrics())
    return out


def reserve_seconds(runner: TrialRunner, config: TuneConfig) -> float:
    """Time kept for the blend phase and the final refit (1.5x the slowest best fits)."""
    fits = sorted((c.usage.seconds for c in runner.best.values()), reverse=True)
    refit = 1.5 * sum(fits[:MAX_BLEND_MEMBERS]) + REGISTER_S
    blend = (
        min(config.blend_share * config.budget_s, BLEND_MAX_S) if "blend" in config.kinds else 0.0
    )
    return refit + blend


def _objective_factory(
    runner: TrialRunner,
    config: TuneConfig,
    clock: Clock,
    tracker: StudyTracker | None,
    trials: list[TrialResult],
) -> Callable[[Any], float]:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        kind = trial.suggest_categorical("model", config.base_kinds)
        spec = suggest(trial, kind, config.fixed.get(kind, {}), config.seed, config.weights)
        result = TrialResult(trial.number, spec, float("nan"), _no_usage())
        trials.append(result)
        try:
            return _run_trial(trial, runner, config, clock, result)
        except optuna.TrialPruned as exc:
            result.state, result.note = "pruned", str(exc)
            raise
        except SetlistError as exc:
            result.state, result.note = "failed", exc.message
            raise
        finally:
            _track(tracker, result)

    return objective


def _run_trial(
    trial: Any, runner: TrialRunner, config: TuneConfig, clock: Clock, result: TrialResult
) -> float:
    import optuna

    spec = result.spec
    expected = runner.expected_seconds(spec.kind) or 0.0
    if expected > clock.left() - reserve_seconds(runner, config):
        raise optuna.TrialPruned(f"no time left for a {spec.kind} fit (~{expected:.0f}s)")
    low = at_fidelity(spec, FIDELITY) if config.prune else None
    if low is not None:
        value, _ = runner.run(low, final=False)
        trial.report(value, 0)
        if trial.should_prune():
            raise optuna.TrialPruned(f"{fidelity_param(spec.kind)} at 1/3: ndcg@10 {value:.4f}")
    value, usage = runner.run(spec)
    result.value, result.usage = value, usage
    trial.report(value, 1)
    return value


def _search_optuna(
    runner: TrialRunner,
    config: TuneConfig,
    clock: Clock,
    tracker: StudyTracker | None,
    say: Callable[[str], None],
) -> list[TrialResult]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # multivariate/group are "experimental" in Optuna's terms
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=config.seed, multivariate=True, group=True)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    trials: list[TrialResult] = []
    objective = _objective_factory(runner, config, clock, tracker, trials)

    def stop_when_out_of_time(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        done = [t for t in trials if t.state == "complete"]
        if done:
            best = max(done, key=lambda t: t.value)
            say(f"trial {frozen.number}: best so far {best.spec.kind} ndcg@10 {best.value:.4f}")
        left = clock.left() - reserve_seconds(runner, config)
        expected = [runner.expected_seconds(k) for k in config.base_kinds]
        if left <= 0 or all(e is not None and e > left for e in expected):
            study.stop()

    study.optimize(
        objective,
        n_trials=config.max_trials,
        timeout=max(clock.left() - reserve_seconds(runner, config), 0.001),
        catch=(SetlistError,),
        callbacks=[stop_when_out_of_time],
        gc_after_trial=True,
    )
    if not any(t.state == "complete" for t in trials):
        raise ConfigError(
            f"no trial finished within --budget {config.budget_s:g}s; give it more time"
        )
    return trials


def _search_ray(
    runner: TrialRunner,
    config: TuneConfig,
    clock: Clock,
    tracker: StudyTracker | None,
    say: Callable[[str], None],
) -> list[TrialResult]:
    from setlist.tune.ray_backend import search_ray

    return search_ray(runner, config, clock, tracker, say)


def _blend_phase(
    runner: TrialRunner,
    config: TuneConfig,
    clock: Clock,
    tracker: StudyTracker | None,
    say: Callable[[str], None],
) -> tuple[ModelSpec, float] | None:
    from setlist.tune.blending import search_blend

    return search_blend(runner, config, clock, tracker, say)


def _choose(runner: TrialRunner, blend: tuple[ModelSpec, float] | None) -> tuple[ModelSpec, float]:
    if not runner.best:
        raise ConfigError("no trial finished, so there is no model to refit; give it more time")
    best = max(runner.best.values(), key=lambda c: c.value)
    if blend is not None and blend[1] > best.value:
        return blend
    return best.spec, best.value


def _no_usage() -> Any:
    from setlist.pipeline import FitUsage

    return FitUsage()


def _track(tracker: StudyTracker | None, result: TrialResult) -> None:
    if tracker is None:
        return
    status = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}[result.state]
    metrics = dict(result.usage.metrics())
    if result.state == "complete":
        metrics["validation_ndcg_at_10"] = result.value
    params = {"model": result.spec.kind, **flatten(result.spec)}
    tags = {"setlist.trial_state": result.state, "setlist.note": result.note}
    result.run_id = tracker.trial(
        f"trial-{result.number}-{result.spec.kind}", params, metrics, status, tags
    )


def flatten(spec: ModelSpec) -> dict[str, Any]:
    """A spec as flat MLflow params (``ease.l2``, ``als.weighting`` ...)."""
    out = {f"{spec.kind}.{k}": v for k, v in spec.params.items()}
    if not spec.weighs_itself:
        out[f"{spec.kind}.weighting"] = spec.weights.scheme
        out[f"{spec.kind}.alpha"] = spec.weights.alpha
    return out
