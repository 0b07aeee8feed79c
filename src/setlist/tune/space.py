"""One search space per model, written define-by-run for Optuna and reused as is by Ray Tune.

Ranges are where the reference figures of docs/TARGETS.md and the EASE / kNN literature put the
good values: EASE's l2 spans 1..10^4 on log scale (binary input prefers ~100, log1p-weighted input
~2000), kNN's neighbourhood 10..500, ALS factors 32..256. A parameter the user fixed with
``--param kind.name=value`` is not searched. Every space also carries a rough cost model
(:func:`estimate_seconds`), used to refuse a budget that cannot run one trial and to avoid
starting a trial that cannot finish in the time left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import scipy.sparse as sp

from setlist.config import WeightConfig, Weighting
from setlist.models.specs import ModelSpec

if TYPE_CHECKING:
    import optuna

#: Models with an iteration count: their trials report a one-third-fidelity value first, which
#: the pruner may cut (the iteration parameter and its name).
ITERATIVE = {"als": "iterations", "bpr": "iterations", "two_tower": "epochs"}


def suggest(
    trial: optuna.trial.BaseTrial,
    kind: str,
    fixed: Mapping[str, Any],
    seed: int = 0,
    weights: WeightConfig | None = None,
) -> ModelSpec:
    """The spec of one trial of ``kind``; ``fixed`` parameters are taken as given, and so is
    ``weights`` (the confidence weighting of ALS / popularity) when not None."""
    params: dict[str, Any] = {}

    def pick(name: str, sample: Any) -> None:
        params[name] = fixed[name] if name in fixed else sample(f"{kind}.{name}")

    if kind == "als":
        pick("factors", lambda n: trial.suggest_categorical(n, [32, 64, 128, 256]))
        pick("regularization", lambda n: trial.suggest_float(n, 1e-3, 100.0, log=True))
        pick("iterations", lambda n: trial.suggest_int(n, 5, 30))
        if weights is None:
            scheme = trial.suggest_categorical("als.weighting", ["log1p", "bm25", "linear"])
            alpha = trial.suggest_float("als.alpha", 0.05, 50.0, log=True)
            weights = WeightConfig(scheme=cast(Weighting, scheme), alpha=alpha)
        params["seed"] = seed
    elif kind == "ease":
        pick("l2", lambda n: trial.suggest_float(n, 1.0, 1e4, log=True))
        pick("weighting", lambda n: trial.suggest_categorical(n, ["none", "log1p"]))
        pick("min_item_users", lambda n: trial.suggest_categorical(n, [2, 3, 5]))
    elif kind == "knn":
        pick("k", lambda n: trial.suggest_int(n, 10, 500, log=True))
        pick("similarity", lambda n: trial.suggest_categorical(n, ["cosine", "bm25"]))
        pick("shrink", lambda n: trial.suggest_float(n, 0.0, 50.0))
        pick("weighting", lambda n: trial.suggest_categorical(n, ["none", "log1p", "bm25"]))
    elif kind == "bpr":
        pick("factors", lambda n: trial.suggest_categorical(n, [32, 64, 128]))
        pick("learning_rate", lambda n: trial.suggest_float(n, 1e-3, 0.1, log=True))
        pick("regularization", lambda n: trial.suggest_float(n, 1e-4, 0.1, log=True))
        pick("iterations", lambda n: trial.suggest_int(n, 20, 200, log=True))
        params["seed"] = seed
    elif kind == "two_tower":
        pick("dim", lambda n: trial.suggest_categorical(n, [32, 64, 128]))
        pick("hidden", lambda n: trial.suggest_categorical(n, [128, 256, 512]))
        pick("epochs", lambda n: trial.suggest_int(n, 10, 60))
        pick("learning_rate", lambda n: trial.suggest_float(n, 1e-3, 1e-2, log=True))
        pick("dropout", lambda n: trial.suggest_float(n, 0.2, 0.7))
        pick("weighting", lambda n: trial.suggest_categorical(n, ["none", "log1p"]))
        params["seed"] = seed
    for name, value in fixed.items():
        params.setdefault(name, value)
    return ModelSpec(kind, params, weights or WeightConfig())


def at_fidelity(spec: ModelSpec, share: float) -> ModelSpec | None:
    """The same spec with ``share`` of its iterations (None for a non-iterative model)."""
    name = ITERATIVE.get(spec.kind)
    if name is None:
        return None
    full = int(spec.params.get(name, 15))
    low = max(1, int(round(full * share)))
    if low >= full:
        return None
    return ModelSpec(spec.kind, {**spec.params, name: low}, spec.weights)


def estimate_seconds(spec: ModelSpec, train: sp.csr_matrix) -> float:
    """A rough, deliberately generous fit-time estimate on 2 cores (for budget checks)."""
    n_users, n_items = int(train.shape[0]), int(train.shape[1])
    nnz = max(int(train.nnz), 1)
    p = spec.params
    if spec.kind == "popularity":
        return 1e-8 * nnz
    if spec.kind == "als":
        return 4e-9 * nnz * int(p.get("factors", 128)) * int(p.get("iterations", 15)) + 0.2
    if spec.kind == "bpr":
        return 3e-9 * nnz * int(p.get("factors", 128)) * int(p.get("iterations", 100)) + 0.2
    if spec.kind == "knn":
        per_user = nnz / max(n_users, 1)
        return 2e-8 * nnz * per_user + 0.2
    if spec.kind == "ease":
        users_per_item = np.bincount(sp.csr_matrix(train).indices, minlength=n_items)
        kept = min(
            int((users_per_item >= int(p.get("min_item_users", 1))).sum()),
            int(p.get("max_items", 20_000)),
        )
        return float(kept**3 / 2e10 + 0.2)
    if spec.kind == "two_tower":
        steps = int(p.get("epochs", 30)) * n_users
        return 6e-10 * steps * n_items * (int(p.get("hidden", 256)) + int(p.get("dim", 64))) + 1
    return 1.0


def cheapest_trial_seconds(kinds: list[str], train: sp.csr_matrix) -> tuple[str, float]:
    """The kind whose smallest configuration is fastest, and its estimated seconds."""
    smallest = {
        "popularity": {},
        "als": {"factors": 32, "iterations": 5},
        "bpr": {"factors": 32, "iterations": 20},
        "knn": {},
        "ease": {"min_item_users": 5},
        "two_tower": {"epochs": 10, "hidden": 128, "dim": 32},
    }
    costs = {
        k: estimate_seconds(ModelSpec(k, smallest.get(k, {})), train) for k in kinds if k != "blend"
    }
    kind = min(costs, key=lambda k: costs[k])
    return kind, costs[kind]
