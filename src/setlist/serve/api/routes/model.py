"""The model being served."""

from __future__ import annotations

import math

from fastapi import APIRouter

from setlist.serve.api.deps import StateDep
from setlist.serve.api.schemas import ErrorPublic, ModelPublic

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", responses={503: {"model": ErrorPublic}})
def get_model(state: StateDep) -> ModelPublic:
    """The loaded model's version, type, hyperparameters, metrics and training data."""
    _, info = state.require()
    return ModelPublic(
        version=info.version,
        model_type=info.model_type,
        params=info.params,
        metrics={k: (v if math.isfinite(v) else None) for k, v in info.metrics.items()},
        data_fingerprint=info.data_fingerprint,
        trained_at=info.trained_at,
    )
