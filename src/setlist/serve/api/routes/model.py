"""The model being served."""

from __future__ import annotations

import math

from fastapi import APIRouter

from setlist.serve.api.deps import ServiceDep
from setlist.serve.api.present import catalogue_public
from setlist.serve.api.schemas import ErrorPublic, ModelPublic

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", responses={503: {"model": ErrorPublic}})
def get_model(service: ServiceDep) -> ModelPublic:
    """The artists model's version, type, hyperparameters, metrics and training data, and
    every catalogue served with the model it answers from."""
    _, info = service.artists.model.require()
    return ModelPublic(
        version=info.version,
        model_type=info.model_type,
        params=info.params,
        metrics={k: (v if math.isfinite(v) else None) for k, v in info.metrics.items()},
        data_fingerprint=info.data_fingerprint,
        trained_at=info.trained_at,
        catalogues=[catalogue_public(c) for c in service.catalogues.values()],
    )
