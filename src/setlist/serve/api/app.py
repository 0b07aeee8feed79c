"""The FastAPI application factory.

``create_app`` builds a fresh app (its own metrics registry, no globals); the lifespan loads the
models once, at start-up, in a worker thread: each A/B arm's registry version (the champion by
default) or the given bundle folder, then watches the registry for new versions (hot-swap, see
:mod:`setlist.serve.runtime.loading`). When nothing can be loaded the app still starts: ``/health``
answers 200, ``/ready`` and the recommendation routes answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from setlist import __version__
from setlist.config import Settings, get_settings
from setlist.index import set_search_threads
from setlist.serve.answer.online import InMemoryOnlineHistory
from setlist.serve.answer.state import ModelState
from setlist.serve.api.errors import add_exception_handlers
from setlist.serve.api.hotpath import HotPathMiddleware
from setlist.serve.api.limits import BodyLimitMiddleware, InFlightLimitMiddleware, Turns
from setlist.serve.api.routes import (
    catalogue,
    events,
    health,
    items,
    model,
    moods,
    onboarding,
    recommendations,
)
from setlist.serve.runtime import feedback
from setlist.serve.runtime.loading import install_arms, load_models, stop_models
from setlist.serve.runtime.metrics import MetricsMiddleware, ServiceMetrics

WORKER_BUNDLE_ENV = "_SETLIST_WORKER_BUNDLE"  # `setlist serve --workers N --bundle DIR`


def create_app(settings: Settings, bundle_dir: Path | None = None) -> FastAPI:
    """A service answering from the registry's champion (or from ``bundle_dir`` when given)."""
    metrics = ServiceMetrics(settings.coverage_period_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Requests search one vector each, on this (the event loop's) thread: more OpenMP
        # threads in faiss would only spin between searches, burning a core the service needs.
        set_search_threads(1)
        await run_in_threadpool(load_models, app, settings, bundle_dir)
        await feedback.start(app, settings)
        yield
        await feedback.stop(app)
        await run_in_threadpool(stop_models, app)

    app = FastAPI(
        title="setlist",
        version=__version__,
        summary="Music recommendations from listening histories.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.online = InMemoryOnlineHistory()
    app.state.turns = Turns()  # inline answers: about 2 ms of them per event-loop turn
    app.state.model = ModelState(problem="the model is still loading")
    install_arms(app, settings, bundle_dir)
    metrics.set_arms([arm.name for arm in app.state.arms.arms])
    feedback.install(app, settings)
    app.add_middleware(HotPathMiddleware, owner=app, router=recommendations.router)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, prefix="/v1/recommendations"
    )
    app.add_middleware(InFlightLimitMiddleware, limit=settings.max_in_flight, metrics=metrics)
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
    ):
        app.include_router(router)
    return app


def worker_app() -> FastAPI:
    """The app of one `setlist serve --workers N` worker (uvicorn imports it by name).

    Workers are fresh processes: the command passes its settings and bundle folder down as
    environment variables, read here once, as ``create_app``'s callers read them.
    """
    bundle = os.environ.get(WORKER_BUNDLE_ENV)
    settings = get_settings()
    if settings.workers > 1:
        # Each worker folds events into its own history, so each needs every event: its own
        # consumer group on the shared bus, not a share of one group's (`serve_workers`
        # refuses the in-process bus, which cannot cross processes).
        group = f"{settings.events_group}-{os.getpid()}"
        settings = settings.model_copy(update={"events_group": group})
    return create_app(settings, Path(bundle) if bundle else None)
