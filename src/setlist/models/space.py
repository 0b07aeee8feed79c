"""One trial's view of a model kind's search space, so each kind declares its ranges itself.

A model class describes its space in :meth:`Recommender.search_space` by calling the methods
here (``space.real("l2", 1.0, 1e4, log=True)``); this object turns each call into an Optuna
suggestion named ``kind.name``, or takes the value the user fixed with ``--param kind.name=v``
instead. The tuner (Optuna or Ray Tune, which replays it on a ``FixedTrial``) stays a generic
loop over the registry: adding a model kind never touches it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from setlist.config import WeightConfig, Weighting

if TYPE_CHECKING:
    import optuna


class SearchSpace:
    """Collects one trial's parameters for ``kind``: fixed ones as given, the rest sampled."""

    def __init__(
        self,
        trial: optuna.trial.BaseTrial,
        kind: str,
        fixed: Mapping[str, Any],
        seed: int = 0,
        weights: WeightConfig | None = None,
    ) -> None:
        self.trial = trial
        self.kind = kind
        self.fixed = fixed
        self.seed_value = seed
        #: The confidence weighting of the trial (None until given or sampled by :meth:`weighting`).
        self.weights = weights
        self.params: dict[str, Any] = {}

    def choice(self, name: str, choices: Sequence[Any]) -> None:
        self._pick(name, lambda n: self.trial.suggest_categorical(n, list(choices)))

    def real(self, name: str, low: float, high: float, log: bool = False) -> None:
        self._pick(name, lambda n: self.trial.suggest_float(n, low, high, log=log))

    def integer(self, name: str, low: int, high: int, log: bool = False) -> None:
        self._pick(name, lambda n: self.trial.suggest_int(n, low, high, log=log))

    def seed(self) -> None:
        """The study's seed, for models that take one (never searched)."""
        self.params["seed"] = self.seed_value

    def weighting(self, schemes: Sequence[Weighting], alpha: tuple[float, float]) -> None:
        """Sample the input weighting (scheme, log-scale alpha) unless the study fixed it."""
        if self.weights is not None:
            return
        scheme = self.trial.suggest_categorical(f"{self.kind}.weighting", list(schemes))
        value = self.trial.suggest_float(f"{self.kind}.alpha", alpha[0], alpha[1], log=True)
        self.weights = WeightConfig(scheme=cast(Weighting, scheme), alpha=value)

    def result(self) -> tuple[dict[str, Any], WeightConfig]:
        """The trial's parameters (fixed ones the space does not name included) and weighting."""
        params = dict(self.params)
        for name, value in self.fixed.items():
            params.setdefault(name, value)
        return params, self.weights or WeightConfig()

    def _pick(self, name: str, sample: Any) -> None:
        self.params[name] = (
            self.fixed[name] if name in self.fixed else sample(f"{self.kind}.{name}")
        )
