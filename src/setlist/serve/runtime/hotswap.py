"""Hot-swap: watch the registry aliases of the A/B arms and swap in new versions safely.

A background thread checks every ``swap_interval_s`` seconds which version each arm's ref
(alias or version) names. A new version is downloaded (manifest SHA-256 checked), loaded (each
file's SHA-256, array shapes, index dimension), and verified with a warm-up recommendation, all
off the request path; only then is the arm's state replaced, by one reference assignment, so a
request that already holds the old state finishes on it. A version that fails any step is
refused: logged, counted in ``setlist_model_swaps_total{outcome="refused"}``, remembered (not
retried until the alias moves again), and the old model keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from setlist.catalogue import DEFAULT_CATALOGUE
from setlist.config import Settings
from setlist.errors import ArtifactError, NotFoundError, SetlistError
from setlist.registry import Registry, RegistryConfig
from setlist.serve.answer.online import OnlineHistory
from setlist.serve.answer.state import ModelState
from setlist.serve.runtime import heap
from setlist.serve.runtime.abtest import Arm, Arms
from setlist.serve.runtime.metrics import ServiceMetrics
from setlist.serve.runtime.periodic import Every
from setlist.serve.runtime.versions import check_catalogue, load_version

log = logging.getLogger(__name__)


def verify(state: ModelState, catalogue: str = DEFAULT_CATALOGUE) -> None:
    """Refuse a state that cannot answer: it must be ready, trained for the catalogue served and
    answer a warm-up query."""
    bundle, _ = state.require()
    check_catalogue(bundle, catalogue)
    if len(bundle.users) > 0:
        user = str(bundle.users.ids[0])
        recs = state.recommend(user, 10)
        if not recs.items:
            raise ArtifactError(f"warm-up query for {user!r} returned no items")


class HotSwapper:
    """Loads new versions of the arms' refs and swaps them in (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        arms: Arms,
        metrics: ServiceMetrics,
        online: OnlineHistory | None = None,
        on_swap: Callable[[Arm], None] | None = None,
        catalogue: str = DEFAULT_CATALOGUE,
    ) -> None:
        # ``settings.model_name`` is the catalogue's registered model (one swapper per catalogue).
        self.settings = settings
        self.catalogue = catalogue
        self.arms = arms
        self.metrics = metrics
        self.online = online
        self.on_swap = on_swap
        self.refused: dict[str, set[str]] = {arm.name: set() for arm in arms.arms}
        self._registry: Registry | None = None
        self._every = Every("setlist-hotswap", "hot-swap check", self.check_once)

    def load_all(self) -> None:
        """Load every arm once (start-up); failures leave that arm not ready."""
        self.check_once()

    def check_once(self) -> int:
        """One pass over the arms; returns how many were swapped."""
        swapped = 0
        for arm in self.arms.arms:
            if self._every.stopped.is_set():
                break
            swapped += self._check(arm)
        return swapped

    def _check(self, arm: Arm) -> int:
        try:
            registry = self._registry_client()
            version = registry.get(arm.spec.ref).version
        except NotFoundError:
            if not arm.ready:
                where = f"{self.settings.model_name!r} at {self.settings.tracking_uri}"
                arm.state = ModelState(problem=f"the registry has no {arm.spec.ref} for {where}")
            return 0
        except SetlistError as exc:
            log.warning("registry check for arm %s failed: %s", arm.name, exc)
            self._registry = None  # reconnect next time
            if not arm.ready:
                arm.state = ModelState(problem=f"registry unavailable: {exc}")
            return 0
        current = arm.state.info.version if arm.state.info is not None else None
        if version == current or version in self.refused[arm.name]:
            return 0
        try:
            state = load_version(self.settings, version, registry)
            verify(state, self.catalogue)
        except Exception as exc:  # any failure refuses the version; the old one keeps serving
            log.error("refused version %s for arm %s: %s", version, arm.name, exc)
            self.refused[arm.name].add(version)
            self.metrics.swaps.labels(arm.name, "refused", self.catalogue).inc()
            if not arm.ready:
                arm.state = ModelState(problem=f"version {version} refused: {exc}")
            return 0
        state.online = self.online
        arm.state = state  # the swap: one reference assignment
        self.metrics.swaps.labels(arm.name, "swapped", self.catalogue).inc()
        self.metrics.set_arm_model(arm.name, state.info, self.catalogue)
        log.info("arm %s now serves version %s (was %s)", arm.name, version, current)
        if self.on_swap is not None:
            self.on_swap(arm)
        heap.settle(self.settings.gc_freeze)  # the old version collectable, the new one frozen
        return 1

    def _registry_client(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(RegistryConfig.from_settings(self.settings))
        return self._registry

    def start(self, interval_s: float) -> None:
        """Check every ``interval_s`` seconds in a daemon thread until :meth:`stop`."""
        self._every.start(interval_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._every.stop(timeout_s)
