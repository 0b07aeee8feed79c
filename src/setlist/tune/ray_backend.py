"""The same search on Ray Tune: Optuna's TPE as Ray's searcher, ASHA for the 1/3-fidelity cut.

Ray starts locally with ``ray.init(num_cpus=2, include_dashboard=False)`` on 127.0.0.1, or joins
an existing cluster (``--ray-address``, ``SETLIST_RAY_ADDRESS``; :mod:`setlist.data.ray_cluster`).
The define-by-run space is the one Optuna uses
(:func:`setlist.tune.space.suggest`); inside a worker the sampled flat config is turned back into a
spec by replaying ``suggest`` on an ``optuna.trial.FixedTrial``. The tuning split travels once,
through Ray's object store (``tune.with_parameters``). Trials are logged to MLflow from the driver
as they come back, and each kind's best is refitted in the driver afterwards so that the blend
phase has its validation scores.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from setlist.errors import ConfigError, SetlistError
from setlist.models.specs import ModelSpec
from setlist.pipeline import FitUsage
from setlist.tune.space import at_fidelity, suggest
from setlist.tune.tracking import StudyTracker
from setlist.tune.trials import TrialData, TrialResult, TrialRunner

if TYPE_CHECKING:
    from setlist.tune.study import Clock, TuneConfig

METRIC = "ndcg"


def spec_from_config(flat: dict[str, Any], config: TuneConfig) -> ModelSpec:
    """Rebuild the spec a define-by-run sample describes (same code path as Optuna's)."""
    import optuna

    fixed_trial = optuna.trial.FixedTrial(flat)
    kind = str(flat["model"])
    return suggest(fixed_trial, kind, config.fixed.get(kind, {}), config.seed, config.weights)


class Space:
    """The define-by-run space as a picklable callable (Ray checkpoints its searcher)."""

    def __init__(self, config: TuneConfig) -> None:
        self.config = config

    def __call__(self, trial: Any) -> None:
        c = self.config
        kind = trial.suggest_categorical("model", c.base_kinds)
        suggest(trial, kind, c.fixed.get(kind, {}), c.seed, c.weights)


def search_ray(
    runner: TrialRunner,
    config: TuneConfig,
    clock: Clock,
    tracker: StudyTracker | None,
    say: Callable[[str], None],
) -> list[TrialResult]:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from setlist.data.ray_cluster import start_ray

    started_here = start_ray(config.ray_address, cpus=2)
    try:
        from setlist.tune.study import reserve_seconds

        searcher = OptunaSearch(space=Space(config), metric=METRIC, mode="max", seed=config.seed)
        scheduler = ASHAScheduler(metric=METRIC, mode="max", max_t=2, grace_period=1)
        trainable = tune.with_parameters(_trainable, data=runner.data, config_=config)
        budget = max(clock.left() - reserve_seconds(runner, config) - 5.0, 1.0)
        with tempfile.TemporaryDirectory(prefix="setlist-ray-") as storage:
            tuner = tune.Tuner(
                tune.with_resources(trainable, {"cpu": 1}),
                tune_config=tune.TuneConfig(
                    search_alg=searcher,
                    scheduler=scheduler,
                    num_samples=config.max_trials or 10_000,
                    time_budget_s=budget,
                    max_concurrent_trials=2,
                ),
                run_config=tune.RunConfig(storage_path=storage, verbose=0),
            )
            grid = tuner.fit()
            trials = _collect(grid, config, tracker)
    finally:
        if started_here:
            ray.shutdown()
    _refit_best(runner, trials, say)
    return trials


def _trainable(flat: dict[str, Any], data: TrialData, config_: TuneConfig) -> None:
    from ray import tune

    spec = spec_from_config(flat, config_)
    runner = TrialRunner(data)
    low = at_fidelity(spec, 1 / 3) if config_.prune else None
    if low is not None:
        value, _ = runner.run(low, final=False)
        tune.report({METRIC: value, "final": 0.0})
    value, usage = runner.run(spec, final=False)
    tune.report({METRIC: value, "final": 1.0, **usage.metrics()})


def _collect(grid: Any, config: TuneConfig, tracker: StudyTracker | None) -> list[TrialResult]:
    from setlist.tune.study import _track

    trials: list[TrialResult] = []
    for number, result in enumerate(grid):
        flat = {k: v for k, v in (result.config or {}).items()}
        if "model" not in flat:
            continue
        spec = spec_from_config(flat, config)
        metrics = result.metrics or {}
        usage = FitUsage(
            seconds=float(metrics.get("fit_seconds", 0.0)),
            peak_rss_mb=float(metrics.get("fit_peak_rss_mb", 0.0)),
        )
        trial = TrialResult(number, spec, float("nan"), usage)
        if result.error is not None:
            trial.state, trial.note = "failed", str(result.error)[:500]
        elif metrics.get("final") == 1.0:
            trial.value = float(metrics[METRIC])
        else:
            trial.state, trial.note = "pruned", "ASHA stopped it at 1/3 fidelity"
        _track(tracker, trial)
        trials.append(trial)
    return trials


def _refit_best(runner: TrialRunner, trials: list[TrialResult], say: Callable[[str], None]) -> None:
    """Refit each kind's best trial in the driver (scores cached for the blend phase)."""
    done = [t for t in trials if t.state == "complete"]
    if not done:
        raise ConfigError("no Ray trial finished within the budget; give it more time")
    best: dict[str, TrialResult] = {}
    for t in done:
        if t.spec.kind not in best or t.value > best[t.spec.kind].value:
            best[t.spec.kind] = t
    for kind, t in best.items():
        say(f"ray: refitting the best {kind} (validation ndcg@10 {t.value:.4f}) in the driver")
        try:
            runner.run(t.spec)
        except SetlistError as exc:
            say(f"ray: refit of {kind} failed: {exc.message}")
