"""A blend: several models fitted on the same listeners, their scores normalised and weighted.

Each member is a ``{"kind", "params"}`` spec; members that weigh their input themselves (kNN,
EASE, BPR, two-tower) get the raw counts the blend receives, the others (ALS, popularity) get
them weighted by the member's own ``weighting`` / ``alpha`` (its tuned scheme). Scores are
z-normalised per listener over the catalogue before weighting (``normalize="zscore"``), so members
on different scales (EASE around 0.1, ALS around 1) mix by their weights, not by their units.

The tuner fits members once, caches their validation scores and searches the weights; a blend of
already fitted models is made with :meth:`BlendRecommender.from_fitted`. Artifacts hold every
member's arrays under ``m<i>.`` prefixes, in the one ``.npz`` of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.errors import ArtifactError, ConfigError, ModelError
from setlist.models.base import Recommender, model_class
from setlist.models.knn import InputWeighting, WeightsInput

NORMALIZE = ("zscore", "max", "none")


class BlendRecommender(WeightsInput, Recommender):
    """Weighted sum of normalised member scores."""

    kind = "blend"
    #: A blend's space is the weights over the best members found, searched by tune.blending.
    tunable: ClassVar[bool] = False

    def __init__(
        self,
        members: Sequence[dict[str, Any]] = (),
        weights: Sequence[float] | None = None,
        normalize: str = "zscore",
    ) -> None:
        specs = [_spec(m, i) for i, m in enumerate(members)]
        if not specs:
            raise ConfigError("a blend needs at least one member ({kind, params})", field="members")
        weights = [1.0] * len(specs) if weights is None else [float(w) for w in weights]
        if len(weights) != len(specs) or any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(
                f"weights must be {len(specs)} numbers >= 0 with a positive sum, got {weights}",
                field="weights",
            )
        if normalize not in NORMALIZE:
            raise ConfigError(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
        self.members = specs
        self.weights = weights
        self.normalize = normalize
        self.models_ = [model_class(s["kind"])(**s["params"]) for s in specs]
        self.inputs_ = [
            None if _weighs_itself(m) else InputWeighting(s["weighting"], s["alpha"])
            for s, m in zip(specs, self.models_, strict=True)
        ]
        self.fitted_ = False

    @classmethod
    def from_fitted(
        cls,
        models: Sequence[Recommender],
        weights: Sequence[float],
        inputs: Sequence[InputWeighting | None] | None = None,
        normalize: str = "zscore",
    ) -> BlendRecommender:
        """A blend of models already fitted on the same matrix (``inputs``: the weighting each
        member without its own was fitted with, already fitted)."""
        inputs = list(inputs) if inputs is not None else [None] * len(models)
        members = []
        for model, weighting in zip(models, inputs, strict=True):
            spec: dict[str, Any] = {"kind": model.kind, "params": model.get_params()}
            if weighting is not None:
                spec.update(weighting=weighting.scheme, alpha=weighting.alpha)
            members.append(spec)
        blend = cls(members, weights, normalize)
        blend.models_ = list(models)
        blend.inputs_ = [
            None if _weighs_itself(m) else (w or InputWeighting(s["weighting"], s["alpha"]))
            for m, w, s in zip(models, inputs, blend.members, strict=True)
        ]
        blend._check_catalogues()
        return blend

    def get_params(self) -> dict[str, Any]:
        return {
            "members": [dict(m) for m in self.members],
            "weights": list(self.weights),
            "normalize": self.normalize,
        }

    def fit(self, user_items: sp.csr_matrix) -> Self:
        for model, weighting in zip(self.models_, self.inputs_, strict=True):
            model.fit(user_items if weighting is None else weighting.fit(user_items))
        self._check_catalogues()
        return self

    def _check_catalogues(self) -> None:
        sizes = {m.n_items_ for m in self.models_}
        if len(sizes) != 1:
            raise ModelError(f"blend members rank different catalogues: {sorted(sizes)} items")
        self.fitted_ = True

    @property
    def n_items_(self) -> int:
        if not self.fitted_:
            raise ModelError("BlendRecommender is not fitted; call fit() first")
        return self.models_[0].n_items_

    def _member_input(self, i: int, user_items: sp.csr_matrix) -> sp.csr_matrix:
        weighting = self.inputs_[i]
        return user_items if weighting is None else weighting.transform(user_items)

    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        _ = self.n_items_
        return self.combine(
            [
                m.score(user_rows, self._member_input(i, user_items))
                for i, m in enumerate(self.models_)
            ]
        )

    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        _ = self.n_items_
        return self.combine(
            [
                m.score_histories(self._member_input(i, user_items))
                for i, m in enumerate(self.models_)
            ]
        )

    def combine(self, member_scores: Sequence[FloatArray]) -> FloatArray:
        """The blend of member score blocks (same shape), with this blend's weights."""
        return blend_scores(member_scores, self.weights, self.normalize)

    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        """Similar items of the member with the largest weight (similarities do not blend:
        members return top lists, not comparable full rows)."""
        _ = self.n_items_
        return self.models_[int(np.argmax(self.weights))].similar_items(item_rows, k)

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        _ = self.n_items_
        out: dict[str, npt.NDArray[Any]] = {}
        for i, (model, weighting) in enumerate(zip(self.models_, self.inputs_, strict=True)):
            out.update({f"m{i}.{k}": v for k, v in model._state().items()})
            if weighting is not None:
                out.update({f"m{i}.input.{k}": v for k, v in weighting.state().items()})
        return out

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        for i, (model, weighting) in enumerate(zip(self.models_, self.inputs_, strict=True)):
            own = {k[len(f"m{i}.") :]: v for k, v in arrays.items() if k.startswith(f"m{i}.")}
            if weighting is not None:
                weighting.set_state({k[len("input.") :]: v for k, v in own.items()})
            model._set_state({k: v for k, v in own.items() if not k.startswith("input.")})
        try:
            self._check_catalogues()
        except ModelError as exc:
            raise ArtifactError(str(exc)) from exc


def blend_scores(
    member_scores: Sequence[FloatArray], weights: Sequence[float], normalize: str = "zscore"
) -> FloatArray:
    """Per-row normalised member scores, weighted and summed (float32)."""
    out: FloatArray | None = None
    for scores, weight in zip(member_scores, weights, strict=True):
        if weight == 0:
            continue
        part = _normalised(np.asarray(scores, dtype=np.float32), normalize) * np.float32(weight)
        out = part if out is None else out + part
    if out is None:
        raise ConfigError("every blend weight is 0")
    return out


def _normalised(scores: FloatArray, how: str) -> FloatArray:
    if how == "none":
        return scores
    if how == "max":
        scale = np.abs(scores).max(axis=1, keepdims=True)
        return np.asarray(scores / np.maximum(scale, 1e-12), dtype=np.float32)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return np.asarray((scores - mean) / np.maximum(std, 1e-12), dtype=np.float32)


def _weighs_itself(model: Recommender) -> bool:
    return model.weights_input


def _spec(member: Any, position: int) -> dict[str, Any]:
    if not isinstance(member, dict) or "kind" not in member:
        raise ConfigError(f"blend member {position} must be a dict with 'kind', got {member!r}")
    kind = str(member["kind"])
    if kind == "blend":
        raise ConfigError(f"blend member {position}: a blend cannot contain a blend")
    model_class(kind)  # unknown kinds fail here, naming the known ones
    params = dict(member.get("params") or {})
    return {
        "kind": kind,
        "params": params,
        "weighting": str(member.get("weighting", "log1p")),
        "alpha": float(member.get("alpha", 1.0)),
    }
