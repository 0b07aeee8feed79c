"""Model management for operators and the loop, behind the ``admin`` scope: promote a version
to an alias, roll the champion back, reload the models.

Each action, and each refused attempt, is written to the audit trail (who by key name, what,
when, from where, outcome). With keys off (the keyless laptop demo, bound to loopback) the actor
is ``anonymous``. The registry calls block: the routes run in the threadpool.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from setlist.errors import ConfigError, SetlistError
from setlist.events.keys import ApiKey
from setlist.registry import Registry, RegistryConfig
from setlist.serve.api.auth import STATE_KEY
from setlist.serve.api.deps import CatalogueName, ServiceDep
from setlist.serve.api.schemas import ErrorPublic
from setlist.serve.api.service import Service
from setlist.serve.runtime.loading import CatalogueServing

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}
PREVIOUS_TAG = "gate.champion_before"  # set by the promotion gate on each promoted version


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=32, pattern=r"^[0-9]+$")
    alias: str = Field(
        default="champion", min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$"
    )


class AliasPublic(BaseModel):
    catalogue: str
    alias: str
    version: str
    previous: str | None = Field(description="The version the alias pointed at before.")
    swapped: int = Field(description="Arms of this worker that now serve a new version.")


class AuditEntryPublic(BaseModel):
    at: str
    actor: str = Field(description="A key's name, cli:USER, or anonymous.")
    action: str
    target: str | None
    source: str | None = Field(description="The client address, or cli.")
    outcome: str


class AuditPublic(BaseModel):
    entries: list[AuditEntryPublic] = Field(description="Newest first.")


class ReloadPublic(BaseModel):
    swapped: dict[str, int] = Field(description="Per catalogue: arms that loaded a new version.")


@router.post("/catalogues/{catalogue}/promote", responses=_ERRORS)
def promote(
    catalogue: CatalogueName, body: PromoteIn, request: Request, service: ServiceDep
) -> AliasPublic:
    """Point an alias (champion by default) of a catalogue's model at a version; then reload."""
    action = f"promote {body.alias}={body.version}"
    return _audited(
        request, service, catalogue, action, lambda s: _set(s, body.alias, body.version)
    )


@router.post("/catalogues/{catalogue}/rollback", responses=_ERRORS)
def rollback(catalogue: CatalogueName, request: Request, service: ServiceDep) -> AliasPublic:
    """Point champion back at the version it replaced (recorded by the promotion gate)."""

    def back(serving: CatalogueServing) -> AliasPublic:
        registry = _registry(serving)
        champion = registry.champion()
        previous = champion.tags.get(PREVIOUS_TAG) if champion else None
        if champion is None or not previous:
            raise ConfigError(
                f"catalogue {serving.name!r}: no previous champion recorded to roll back to",
                field="catalogue",
                value=serving.name,
            )
        return _set(serving, "champion", previous, registry)

    return _audited(request, service, catalogue, "rollback", back)


@router.post("/reload", responses=_ERRORS)
def reload(request: Request, service: ServiceDep) -> ReloadPublic:
    """Check the registry now (this worker) instead of at the next hot-swap interval."""
    swapped = {
        name: serving.swapper.check_once() if serving.swapper is not None else 0
        for name, serving in service.catalogues.items()
    }
    _audit(request, service, "admin.reload", None, f"ok: swapped {swapped}")
    return ReloadPublic(swapped=swapped)


@router.get("/audit", responses=_ERRORS)
def audit(service: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditPublic:
    """The audit trail, newest first: keys created and revoked, admin actions and refusals."""
    entries = service.gate.keys().audit_log(limit)
    return AuditPublic(entries=[AuditEntryPublic(**e.public()) for e in entries])


def _set(
    serving: CatalogueServing, alias: str, version: str, registry: Registry | None = None
) -> AliasPublic:
    registry = registry or _registry(serving)
    before = next((v.version for v in registry.list_versions() if alias in v.aliases), None)
    registry.set_alias(alias, version)
    swapped = serving.swapper.check_once() if serving.swapper is not None else 0
    return AliasPublic(
        catalogue=serving.name, alias=alias, version=version, previous=before, swapped=swapped
    )


def _registry(serving: CatalogueServing) -> Registry:
    if serving.local:
        raise ConfigError(
            f"catalogue {serving.name!r} is served from a bundle folder, not the registry",
            field="catalogue",
            value=serving.name,
        )
    return Registry(RegistryConfig.from_settings(serving.settings))


def _audited(
    request: Request, service: Service, catalogue: str, action: str, act: Any
) -> AliasPublic:
    try:
        serving = service.catalogue(catalogue)
        result: AliasPublic = act(serving)
    except SetlistError as exc:
        _audit(request, service, f"admin.{action.split()[0]}", catalogue, f"failed: {exc.message}")
        raise
    outcome = f"ok: {result.alias} {result.previous} -> {result.version}"
    _audit(request, service, f"admin.{action.split()[0]}", catalogue, outcome)
    return result


def _audit(
    request: Request, service: Service, action: str, target: str | None, outcome: str
) -> None:
    record = request.scope.get("state", {}).get(STATE_KEY)
    actor = record.name if isinstance(record, ApiKey) else "anonymous"
    source = request.client.host if request.client else None
    service.gate.audit(actor, action, target, source or "unknown", outcome)
