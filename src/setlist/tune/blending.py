"""The blend phase: TPE over the weights of the best model of each kind, on cached scores.

Members are the best trial of up to three kinds (the best kinds by validation NDCG@10). The
strongest member's weight is fixed at 1 (a blend is invariant to the scale of its weights), the
others range over [0, 1.5]. Each evaluation combines z-normalised cached validation scores, so
a blend trial costs a ranking, not a fit, and the phase gets ``blend_share`` of the budget.
Kinds whose scores could not be cached (validation block over the cache limit) are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from setlist.models.specs import ModelSpec
from setlist.pipeline import FitUsage
from setlist.tune.tracking import StudyTracker
from setlist.tune.trials import TrialResult, TrialRunner

if TYPE_CHECKING:
    from setlist.tune.study import Clock, TuneConfig

MAX_MEMBERS = 3
MAX_TRIALS = 100


def blend_spec(members: list[ModelSpec], weights: list[float]) -> ModelSpec:
    """The ``blend`` spec of fitted-member specs and their weights."""
    specs: list[dict[str, Any]] = []
    for m in members:
        spec: dict[str, Any] = {"kind": m.kind, "params": dict(m.params)}
        if not m.weighs_itself:
            spec.update(weighting=m.weights.scheme, alpha=m.weights.alpha)
        specs.append(spec)
    return ModelSpec("blend", {"members": specs, "weights": [float(w) for w in weights]})


def search_blend(
    runner: TrialRunner,
    config: TuneConfig,
    clock: Clock,
    tracker: StudyTracker | None,
    say: Callable[[str], None],
) -> tuple[ModelSpec, float] | None:
    """The best blend found (spec, validation NDCG@10), or None when fewer than two members."""
    import optuna

    cached = [c for c in runner.best.values() if c.scores is not None]
    cached.sort(key=lambda c: c.value, reverse=True)
    members = cached[:MAX_MEMBERS]
    if len(members) < 2:
        say("blend: fewer than two models with cached scores; skipped")
        return None
    kinds = [m.spec.kind for m in members]
    refit = 1.5 * sum(m.usage.seconds for m in members) + 10.0
    sampler = optuna.samplers.TPESampler(seed=config.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    # Start from each member alone with the strongest, and an even mix.
    study.enqueue_trial({f"w.{k}": 0.5 for k in kinds[1:]})
    best: tuple[list[float], float] | None = None
    for number in range(MAX_TRIALS):
        if clock.left() < refit or (config.max_trials is not None and number >= config.max_trials):
            break
        trial = study.ask()
        weights = [1.0] + [trial.suggest_float(f"w.{k}", 0.0, 1.5) for k in kinds[1:]]
        value = runner.blend_value(kinds, weights)
        study.tell(trial, value)
        if best is None or value > best[1]:
            best = (weights, value)
        _track(tracker, number, blend_spec([m.spec for m in members], weights), value)
    if best is None:
        return None
    say(f"blend of {'+'.join(kinds)}: validation ndcg@10 {best[1]:.4f} (weights {best[0]})")
    return blend_spec([m.spec for m in members], best[0]), best[1]


def _track(tracker: StudyTracker | None, number: int, spec: ModelSpec, value: float) -> None:
    if tracker is None:
        return
    result = TrialResult(number, spec, value, FitUsage())
    params = {
        "model": "blend",
        "blend.members": "+".join(m["kind"] for m in spec.params["members"]),
        "blend.weights": spec.params["weights"],
    }
    result.run_id = tracker.trial(
        f"blend-{number}",
        params,
        {"validation_ndcg_at_10": value},
        "FINISHED",
        {"setlist.trial_state": "complete"},
    )
