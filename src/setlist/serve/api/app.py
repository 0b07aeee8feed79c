"""The FastAPI application factory.

``create_app`` builds a fresh app (its own metrics registry, no globals) around one
:class:`setlist.serve.api.service.Service`, its only state attribute. The lifespan loads the
models once, at start-up, in a worker thread: for each catalogue served (artists, and those the
``catalogues`` setting or the bundle folders name), each A/B arm's registry version of the
catalogue's registered model (the champion by default) or the given bundle folder, then watches
the registry for new versions (hot-swap, see :mod:`setlist.serve.runtime.loading`). When nothing
can be loaded the app still starts: ``/health`` answers 200, ``/ready`` and the recommendation
routes answer 503 with ``Retry-After``. A catalogue without a model answers 503 naming it on its
own routes only; ``/ready`` is 200 once any catalogue is loaded.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from setlist import __version__
from setlist.catalogue import CATALOGUE_NAME, DEFAULT_CATALOGUE
from setlist.config import Settings, get_settings
from setlist.errors import ConfigError
from setlist.index import set_search_threads
from setlist.serve.api import openapi
from setlist.serve.api.auth import AuthMiddleware, required_scope
from setlist.serve.api.errors import add_exception_handlers
from setlist.serve.api.guard import one_value_each
from setlist.serve.api.hotpath import HotPathMiddleware
from setlist.serve.api.limits import BodyLimitMiddleware, InFlightLimitMiddleware
from setlist.serve.api.routes import (
    admin,
    buddies,
    catalogue,
    catalogues,
    events,
    health,
    items,
    model,
    moods,
    onboarding,
    organic,
    playlists,
    recommendations,
)
from setlist.serve.api.service import Service
from setlist.serve.runtime.metrics import MetricsMiddleware

# `setlist serve --workers N --bundle [CATALOGUE=]DIR ...`: name=folder entries, os.pathsep apart
WORKER_BUNDLE_ENV = "_SETLIST_WORKER_BUNDLE"

# Every route that reads a JSON body: onboarding and batches, catalogue onboarding, playlists,
# seed buddies.
BODY_LIMITED = ("/v1/recommendations", "/v1/catalogues/", "/v1/playlists", "/v1/buddies")

Bundles = Path | Mapping[str, Path] | None


def create_app(settings: Settings, bundle_dir: Bundles = None) -> FastAPI:
    """A service answering from the registry's champions (or from bundle folders when given).

    ``bundle_dir`` is the artists catalogue's folder, or a mapping of catalogue name to folder;
    catalogues without a folder are served from the registry.
    """
    bundles = (
        {DEFAULT_CATALOGUE: bundle_dir} if isinstance(bundle_dir, Path) else dict(bundle_dir or {})
    )
    service = Service.build(settings, bundles)
    metrics = service.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Requests search one vector each, on this (the event loop's) thread: more OpenMP
        # threads in faiss would only spin between searches, burning a core the service needs.
        set_search_threads(1)
        await run_in_threadpool(service.load)
        await service.feedback.start(service.online)
        yield
        await service.feedback.stop()
        await run_in_threadpool(service.stop)

    app = FastAPI(
        title="setlist",
        version=__version__,
        summary="Music recommendations from listening histories.",
        lifespan=lifespan,
        dependencies=[Depends(one_value_each)],
    )
    app.state.service = service
    app.add_middleware(HotPathMiddleware, owner=app, router=recommendations.router)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        prefixes=BODY_LIMITED,
        metrics=metrics,
    )
    app.add_middleware(InFlightLimitMiddleware, limit=settings.max_in_flight, metrics=metrics)
    app.add_middleware(AuthMiddleware, gate=service.gate, owner=app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    add_exception_handlers(app)
    for router in (
        health.router,
        model.router,
        recommendations.router,
        onboarding.router,
        moods.router,
        items.router,
        events.router,
        catalogue.router,
        buddies.router,
        catalogues.router,
        admin.router,
        playlists.router,
        organic.router,
    ):
        app.include_router(router)
    gate = service.gate
    openapi.install(
        app,
        (lambda m, p: required_scope(m, p, gate.metrics_need_key)) if gate.required else None,
        lambda m, p: gate.address_rate is not None or required_scope(m, p) is not None,
        settings.max_k,
    )
    return app


def worker_app() -> FastAPI:
    """The app of one `setlist serve --workers N` worker (uvicorn imports it by name).

    Workers are fresh processes: the command passes its settings and bundle folder down as
    environment variables, read here once, as ``create_app``'s callers read them.
    """
    settings = get_settings()
    if settings.workers > 1:
        # Each worker folds events into its own history, so each needs every event: its own
        # consumer group on the shared bus, not a share of one group's (`serve_workers`
        # refuses the in-process bus, which cannot cross processes).
        group = f"{settings.events_group}-{os.getpid()}"
        settings = settings.model_copy(update={"events_group": group})
    return create_app(
        settings, parse_bundles(os.environ.get(WORKER_BUNDLE_ENV, "").split(os.pathsep))
    )


def parse_bundles(entries: list[str]) -> dict[str, Path]:
    """``[CATALOGUE=]DIR`` entries as catalogue -> folder (no name: the artists catalogue)."""
    bundles: dict[str, Path] = {}
    for entry in (e for e in entries if e):
        name, sep, folder = entry.partition("=")
        if not sep or not CATALOGUE_NAME.match(name):  # a folder with "=" in its path
            name, folder = DEFAULT_CATALOGUE, entry
        if not folder or name in bundles:
            raise ConfigError(
                f"bundle {entry!r}: use [CATALOGUE=]DIR, each catalogue once",
                field="bundle",
                value=entry,
            )
        bundles[name] = Path(folder)
    return bundles
