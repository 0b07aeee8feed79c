"""The FastAPI application factory.

``create_app`` builds a fresh app (its own metrics registry, no globals); the lifespan loads the
model once, at start-up, in a worker thread: the registry's champion, or the given bundle folder.
When nothing can be loaded the app still starts: ``/health`` answers 200, ``/ready`` and the
recommendation routes answer 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from setlist import __version__
from setlist.config import Settings
from setlist.serve.errors import add_exception_handlers
from setlist.serve.metrics import MetricsMiddleware, ServiceMetrics
from setlist.serve.online import InMemoryOnlineHistory
from setlist.serve.routes import health, items, model, recommendations
from setlist.serve.state import ModelState, load_state


def create_app(settings: Settings, bundle_dir: Path | None = None) -> FastAPI:
    """A service answering from the registry's champion (or from ``bundle_dir`` when given)."""
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(load_state, settings, bundle_dir)
        state.online = app.state.online
        app.state.model = state
        metrics.set_model(state.info)
        yield

    app = FastAPI(
        title="setlist",
        version=__version__,
        summary="Music recommendations from listening histories.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.online = InMemoryOnlineHistory()
    app.state.model = ModelState(problem="the model is still loading")
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    add_exception_handlers(app)
    for router in (health.router, model.router, recommendations.router, items.router):
        app.include_router(router)
    return app
