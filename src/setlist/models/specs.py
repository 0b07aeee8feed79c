"""What to train, as the command line says it: model kinds and ``kind.param=value``.

Everything here runs before any data is read, so a bad name or value fails at once with a
:class:`ConfigError` naming the parameter and what it accepts.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from setlist.config import WeightConfig
from setlist.errors import ConfigError, SetlistError
from setlist.models.base import _REGISTRY, Recommender, model_class


@dataclass(frozen=True)
class ModelSpec:
    """One model to fit: its kind, constructor parameters and, for models that take
    confidences (ALS, popularity), the weighting applied to the raw counts first."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    weights: WeightConfig = field(default_factory=WeightConfig)

    @property
    def weighs_itself(self) -> bool:
        return weighs_input(self.kind)

    def build(self) -> Recommender:
        return model_class(self.kind)(**self.params)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "params": dict(self.params)}
        if not self.weighs_itself:
            out["weighting"] = {"scheme": self.weights.scheme, "alpha": self.weights.alpha}
        return out


def weighs_input(kind: str) -> bool:
    """True for models that turn raw counts into confidences themselves (see models.knn)."""
    return model_class(kind).weights_input


def known_kinds() -> list[str]:
    return sorted(_REGISTRY)


def parse_kinds(models: str | Sequence[str]) -> list[str]:
    """``"als,ease"`` -> ["als", "ease"]; unknown names fail, listing the known ones."""
    names = models.split(",") if isinstance(models, str) else list(models)
    kinds = [n.strip() for n in names if n.strip()]
    if not kinds:
        raise ConfigError(f"--models names no model; known models: {', '.join(known_kinds())}")
    for kind in kinds:
        model_class(kind)
    if len(set(kinds)) != len(kinds):
        raise ConfigError(f"--models names a model twice: {','.join(kinds)}", field="models")
    return kinds


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["knn.k=100", "ease.l2=300"]`` -> {"knn": {"k": 100}, "ease": {"l2": 300.0}}.

    Values are JSON where they parse as JSON (numbers, true/false, lists), else strings.
    Unknown kinds or parameter names fail, naming what the model accepts.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        kind, dot, name = key.strip().partition(".")
        if not sep or not dot or not kind or not name:
            raise ConfigError(f"--param {item!r} must look like kind.name=value (e.g. knn.k=100)")
        accepted = accepted_params(kind)
        if name not in accepted:
            raise ConfigError(
                f"--param {item!r}: {kind} has no parameter {name!r}; it accepts "
                f"{', '.join(accepted)}",
                field=f"{kind}.{name}",
            )
        out.setdefault(kind, {})[name] = _value(raw.strip())
    return out


def accepted_params(kind: str) -> list[str]:
    """The constructor parameters of a model kind."""
    signature = inspect.signature(model_class(kind).__init__)
    return [p for p in signature.parameters if p != "self"]


def build_specs(
    kinds: Sequence[str],
    overrides: Mapping[str, Mapping[str, Any]],
    weights: WeightConfig,
    defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[ModelSpec]:
    """Specs for ``kinds`` with defaults then overrides; each is constructed once as a check,
    so an out-of-range value fails here with the model's own message."""
    stray = sorted(set(overrides) - set(kinds))
    if stray:
        raise ConfigError(
            f"--param names {', '.join(stray)}, which --models does not train ({','.join(kinds)})"
        )
    specs = []
    for kind in kinds:
        params = {**(defaults or {}).get(kind, {}), **overrides.get(kind, {})}
        spec = ModelSpec(kind, params, weights)
        try:
            spec.build()
        except SetlistError as exc:
            raise ConfigError(f"{kind}: {exc.message}", **exc.details) from exc
        except TypeError as exc:
            raise ConfigError(f"{kind}: {exc}") from exc
        specs.append(spec)
    return specs


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw
