"""A trial's model spec, drawn from the search space its model kind declares.

Each model class declares its own ranges (:meth:`Recommender.search_space`), fidelity parameter,
cost estimate and cheapest configuration; this module is the generic loop that turns them into
specs for Optuna and, replayed as is, for Ray Tune. A parameter the user fixed with
``--param kind.name=value`` is not searched. The cost model is used to refuse a budget that cannot
run one trial and to avoid starting a trial that cannot finish in the time left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import scipy.sparse as sp

from setlist.config import WeightConfig
from setlist.models.base import model_class
from setlist.models.space import SearchSpace
from setlist.models.specs import ModelSpec

if TYPE_CHECKING:
    import optuna


def suggest(
    trial: optuna.trial.BaseTrial,
    kind: str,
    fixed: Mapping[str, Any],
    seed: int = 0,
    weights: WeightConfig | None = None,
) -> ModelSpec:
    """The spec of one trial of ``kind``; ``fixed`` parameters are taken as given, and so is
    ``weights`` (the confidence weighting of models that take confidences) when not None."""
    space = SearchSpace(trial, kind, fixed, seed, weights)
    model_class(kind).search_space(space)
    params, chosen = space.result()
    return ModelSpec(kind, params, chosen)


def fidelity_param(kind: str) -> str | None:
    """The iteration parameter of ``kind`` that a low-fidelity trial shortens (None: none)."""
    return model_class(kind).fidelity_param


def at_fidelity(spec: ModelSpec, share: float) -> ModelSpec | None:
    """The same spec with ``share`` of its iterations (None for a non-iterative model)."""
    name = fidelity_param(spec.kind)
    if name is None:
        return None
    full = int(spec.params.get(name, 15))
    low = max(1, int(round(full * share)))
    if low >= full:
        return None
    return ModelSpec(spec.kind, {**spec.params, name: low}, spec.weights)


def estimate_seconds(spec: ModelSpec, train: sp.csr_matrix) -> float:
    """A rough, deliberately generous fit-time estimate on 2 cores (for budget checks)."""
    return model_class(spec.kind).estimate_seconds(spec.params, train)


def cheapest_trial_seconds(kinds: list[str], train: sp.csr_matrix) -> tuple[str, float]:
    """The kind whose smallest configuration is fastest, and its estimated seconds."""
    costs = {
        k: model_class(k).estimate_seconds(model_class(k).smallest_params(), train)
        for k in kinds
        if model_class(k).tunable
    }
    kind = min(costs, key=lambda k: costs[k])
    return kind, costs[kind]
