"""Each catalogue's models: loaded at start-up and kept fresh (hot-swap) while serving.

Every catalogue the service serves is a :class:`CatalogueServing`: its own registered model,
A/B arms and hot-swapper. Served from a bundle folder, a catalogue has one arm, ``local``, and
nothing to watch. Served from the registry, each A/B arm loads its ref (alias or version) of the
catalogue's registered model and a :class:`HotSwapper` watches them. ``model`` always names the
state of the primary arm (or the first ready one): the routes without a user (model info,
similar items, moods, readiness) answer from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from setlist.catalogue import Catalogue
from setlist.config import Settings
from setlist.serve.answer.online import OnlineHistory
from setlist.serve.answer.state import ModelState
from setlist.serve.runtime.abtest import Arm, Arms, ArmSpec, parse_arms
from setlist.serve.runtime.hotswap import HotSwapper
from setlist.serve.runtime.metrics import ServiceMetrics
from setlist.serve.runtime.versions import load_state

LOCAL_ARM = "local"


@dataclass
class CatalogueServing:
    """One catalogue as served: its spec, settings, arms, primary state and hot-swapper.

    ``settings.model_name`` is the catalogue's registered model, so that the registry calls
    made with these settings (loading, hot-swap, the versions view) read the right model.
    """

    catalogue: Catalogue
    settings: Settings
    arms: Arms
    bundle_dir: Path | None = None
    model: ModelState = field(default_factory=lambda: ModelState(problem="not loaded yet"))
    swapper: HotSwapper | None = None

    @property
    def name(self) -> str:
        return self.catalogue.name

    @property
    def local(self) -> bool:
        """Served from a bundle folder (no registry)."""
        return self.bundle_dir is not None

    @classmethod
    def install(
        cls, catalogue: Catalogue, settings: Settings, bundle_dir: Path | None
    ) -> CatalogueServing:
        """Before start-up: the arms (not loaded yet), so that a bad arm setting fails at once."""
        specs = (
            [ArmSpec(LOCAL_ARM, str(bundle_dir), 1.0)]
            if bundle_dir
            else parse_arms(settings.ab_arms)
        )
        own = settings.model_copy(update={"model_name": catalogue.registered_model})
        loading = ModelState(problem=f"the {catalogue.name!r} catalogue's model is still loading")
        arms = Arms([Arm(spec, loading) for spec in specs], settings.ab_salt)
        return cls(catalogue, own, arms, bundle_dir, loading)

    def load(self, metrics: ServiceMetrics, online: OnlineHistory | None) -> None:
        """Load every arm (in a worker thread, at start-up); never raises."""
        if self.bundle_dir is not None:
            state = load_state(self.settings, self.bundle_dir, self.name)
            self._name_problem(state)
            state.online = online
            self.arms.primary.state = state
            metrics.set_arm_model(LOCAL_ARM, state.info, self.name)
            self.model = state
            return
        swapper = HotSwapper(
            self.settings,
            self.arms,
            metrics,
            online,
            on_swap=lambda _arm: self.sync_primary(),
            catalogue=self.name,
        )
        swapper.load_all()
        for arm in self.arms.arms:
            if not arm.ready:
                metrics.set_arm_model(arm.name, None, self.name)
        self.sync_primary()
        swapper.start(self.settings.swap_interval_s)
        self.swapper = swapper

    def sync_primary(self) -> None:
        self.model = self.arms.ready_arm().state
        self._name_problem(self.model)

    def _name_problem(self, state: ModelState) -> None:
        """A catalogue without a model says which catalogue it is in its 503s (its own routes
        answer 503; the other catalogues, and readiness, do not wait for it)."""
        prefix = f"the {self.name!r} catalogue"
        if not state.ready and not state.problem.startswith(prefix):
            state.problem = f"{prefix} has no model: {state.problem}"

    def stop(self) -> None:
        if self.swapper is not None:
            self.swapper.stop()
