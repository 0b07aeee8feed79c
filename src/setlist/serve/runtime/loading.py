"""Loading the arms' models at start-up and keeping them fresh (hot-swap) while serving.

Served from a bundle folder, the service has one arm, ``local``, and nothing to watch. Served
from the registry, each A/B arm loads its ref (alias or version) and a :class:`HotSwapper`
watches them. ``app.state.model`` always names the state of the primary arm (or the first ready
one): the routes without a user (model info, similar items, moods, readiness) answer from it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from setlist.config import Settings
from setlist.serve.answer.state import ModelState
from setlist.serve.runtime.abtest import Arm, Arms, ArmSpec, parse_arms
from setlist.serve.runtime.hotswap import HotSwapper
from setlist.serve.runtime.metrics import ServiceMetrics
from setlist.serve.runtime.versions import load_state

LOCAL_ARM = "local"


def install_arms(app: FastAPI, settings: Settings, bundle_dir: Path | None) -> None:
    """Before start-up: the arms (not loaded yet), so that a bad arm setting fails at once."""
    specs = (
        [ArmSpec(LOCAL_ARM, str(bundle_dir), 1.0)] if bundle_dir else parse_arms(settings.ab_arms)
    )
    loading = ModelState(problem="the model is still loading")
    app.state.arms = Arms([Arm(spec, loading) for spec in specs], settings.ab_salt)
    app.state.swapper = None


def load_models(app: FastAPI, settings: Settings, bundle_dir: Path | None) -> None:
    """Load every arm (in a worker thread, at start-up); never raises."""
    arms: Arms = app.state.arms
    metrics: ServiceMetrics = app.state.metrics
    if bundle_dir is not None:
        state = load_state(settings, bundle_dir)
        state.online = app.state.online
        arms.primary.state = state
        metrics.set_arm_model(LOCAL_ARM, state.info)
        app.state.model = state
        return
    swapper = HotSwapper(
        settings, arms, metrics, app.state.online, on_swap=lambda _arm: sync_primary(app)
    )
    swapper.load_all()
    for arm in arms.arms:
        if not arm.ready:
            metrics.set_arm_model(arm.name, None)
    sync_primary(app)
    swapper.start(settings.swap_interval_s)
    app.state.swapper = swapper


def sync_primary(app: FastAPI) -> None:
    arms: Arms = app.state.arms
    app.state.model = arms.ready_arm().state


def stop_models(app: FastAPI) -> None:
    swapper = getattr(app.state, "swapper", None)
    if isinstance(swapper, HotSwapper):
        swapper.stop()
