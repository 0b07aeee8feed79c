"""A model version read into a :class:`ModelState`: from a bundle folder or the registry."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from setlist.bundle import ModelBundle
from setlist.catalogue import DEFAULT_CATALOGUE
from setlist.config import Settings
from setlist.errors import ArtifactError, NotFoundError
from setlist.registry import Registry, RegistryConfig
from setlist.serve.answer.state import ModelInfo, ModelState
from setlist.serve.runtime.settings import fallback_chain, ranking_config

log = logging.getLogger(__name__)


def load_state(
    settings: Settings, bundle_dir: Path | None = None, catalogue: str = DEFAULT_CATALOGUE
) -> ModelState:
    """The state to serve: the given bundle folder, else the registry's champion.

    Never raises: whatever goes wrong is logged and kept as the state's ``problem``, so the
    service still starts (``/health`` answers, ``/ready`` says why it is not ready).
    """
    try:
        if bundle_dir is not None:
            bundle = ModelBundle.load(bundle_dir)
            check_catalogue(bundle, catalogue)
            state = state_for(settings, bundle, ModelInfo.from_bundle(bundle))
        else:
            state = load_version(settings, "champion")
    except Exception as exc:  # start-up must survive any loading failure
        log.exception("no model loaded")
        return ModelState(problem=f"loading failed: {exc}")
    if state.info is not None:
        log.info("serving %s version %s", state.info.model_type, state.info.version)
    return state


def load_version(settings: Settings, ref: str, registry: Registry | None = None) -> ModelState:
    """Download, check and load a registered version by alias or number (raises on failure)."""
    registry = registry or Registry(RegistryConfig.from_settings(settings))
    try:
        version = registry.get(ref)
    except NotFoundError:
        where = f"{settings.model_name!r} at {settings.tracking_uri}"
        if ref == "champion":
            return ModelState(problem=f"the registry has no champion for {where}")
        return ModelState(problem=f"the registry has no version or alias {ref!r} for {where}")
    # The bundle is read fully into memory, so the downloaded files can go at once.
    with tempfile.TemporaryDirectory(prefix="setlist-serve-") as tmp:
        folder = registry.download(version.version, Path(tmp))
        bundle = ModelBundle.load(folder)
    return state_for(settings, bundle, ModelInfo.from_version(version, bundle))


def check_catalogue(bundle: ModelBundle, catalogue: str) -> None:
    """Refuse a bundle trained for another catalogue (one without the record passes)."""
    if bundle.catalogue not in (None, catalogue):
        raise ArtifactError(
            f"the bundle was trained for catalogue {bundle.catalogue!r}, not {catalogue!r}",
            field="catalogue",
            value=bundle.catalogue,
        )


def state_for(settings: Settings, bundle: ModelBundle, info: ModelInfo) -> ModelState:
    """A state over a loaded bundle with the service's settings applied."""
    bundle.model.use_runtime(settings.model_runtime)
    return ModelState(
        bundle,
        info,
        ranking=ranking_config(settings),
        mood_weight=settings.mood_weight,
        chain=fallback_chain(settings),
    )
