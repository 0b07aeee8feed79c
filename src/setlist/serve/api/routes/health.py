"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from setlist.errors import UnavailableError
from setlist.serve.api.deps import MetricsDep, ServiceDep
from setlist.serve.api.present import catalogue_public
from setlist.serve.api.schemas import ErrorPublic, HealthPublic, ReadyPublic

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> HealthPublic:
    """Liveness: the process answers (whether or not a model is loaded)."""
    return HealthPublic(status="ok")


@router.get("/ready", responses={503: {"model": ErrorPublic}})
def ready(service: ServiceDep) -> ReadyPublic:
    """Readiness: 200 once some catalogue's model is loaded (artists first: its version is the
    ``model_version``), else 503; lists every catalogue with its own state.

    A catalogue without a champion does not hold the others back: a tracks-only service is
    ready with tracks loaded, its artists routes answering 503 naming ``artists``.
    """
    servings = list(service.catalogues.values())
    state = next((c.model for c in servings if c.model.ready), service.artists.model)
    service.metrics.readiness(state.ready)
    if not state.ready:
        problems = "; ".join(c.model.problem for c in servings)
        raise UnavailableError(f"no model is loaded: {problems}")
    _, info = state.require()
    return ReadyPublic(
        status="ready",
        model_version=info.version,
        catalogues=[catalogue_public(c) for c in service.catalogues.values()],
    )


@router.get("/metrics", response_class=Response, include_in_schema=False)
def metrics(service: MetricsDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(service.render(), media_type=CONTENT_TYPE_LATEST)
