"""The service as one typed object: everything the routes reach, built once by ``create_app``.

The app keeps it as its only attribute (``app.state.service``); routes get it through
:data:`setlist.serve.api.deps.ServiceDep`, the hot route reads it directly (dependencies cost
per request). It lives in the HTTP face because it holds the face's own parts (the turns of
inline answers) beside the running service's (catalogues, metrics, events).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette

from setlist.catalogue import DEFAULT_CATALOGUE, served_catalogues
from setlist.config import Settings
from setlist.errors import NotFoundError
from setlist.serve.answer.explore import ExplorationPolicy
from setlist.serve.answer.online import InMemoryOnlineHistory
from setlist.serve.api.auth import Gate
from setlist.serve.api.limits import Turns
from setlist.serve.runtime import heap
from setlist.serve.runtime.feedback import Feedback
from setlist.serve.runtime.loading import CatalogueServing
from setlist.serve.runtime.metrics import ServiceMetrics
from setlist.serve.runtime.organic import OrganicServing


@dataclass
class Service:
    settings: Settings
    metrics: ServiceMetrics
    online: InMemoryOnlineHistory
    turns: Turns  # inline answers: about 2 ms of them per event-loop turn
    explore: ExplorationPolicy
    feedback: Feedback
    catalogues: dict[str, CatalogueServing]  # by name, artists first
    gate: Gate  # API keys, scopes and rate limits
    organic: OrganicServing  # organic playlists over the artists catalogue

    @classmethod
    def build(cls, settings: Settings, bundles: Mapping[str, Path]) -> Service:
        """The service before start-up: nothing loaded yet, every setting checked.

        ``bundles`` serves those catalogues from bundle folders (a catalogue named there is
        served even when the ``catalogues`` setting does not list it); the others are served
        from the registry.
        """
        metrics = ServiceMetrics(settings.coverage_period_s)
        specs = served_catalogues(settings, also=bundles)
        catalogues = {
            c.name: CatalogueServing.install(c, settings, bundles.get(c.name)) for c in specs
        }
        metrics.set_arms(
            sorted({arm.name for serving in catalogues.values() for arm in serving.arms.arms})
        )
        return cls(
            settings=settings,
            metrics=metrics,
            online=InMemoryOnlineHistory(),
            turns=Turns(),
            explore=ExplorationPolicy(settings.explore()),
            feedback=Feedback(settings, metrics),
            catalogues=catalogues,
            gate=Gate(settings, metrics),
            organic=OrganicServing(
                settings.organic_path,
                settings.top_picks_file,
                settings.top_picks_max_age_s,
                settings.gc_freeze,
            ),
        )

    @property
    def artists(self) -> CatalogueServing:
        """The catalogue the routes without ``/catalogues/{name}`` answer from."""
        return self.catalogues[DEFAULT_CATALOGUE]

    def catalogue(self, name: str) -> CatalogueServing:
        serving = self.catalogues.get(name)
        if serving is None:
            raise NotFoundError(
                f"unknown catalogue {name!r}; this service serves {sorted(self.catalogues)}",
                field="catalogue",
                value=name,
            )
        return serving

    def load(self) -> None:
        """Load every catalogue's models (in a worker thread, at start-up); never raises."""
        for serving in self.catalogues.values():
            # Events name artists today: only the artists catalogue folds them in online.
            online = self.online if serving.name == DEFAULT_CATALOGUE else None
            serving.load(self.metrics, online)
        if DEFAULT_CATALOGUE in self.catalogues:
            self.organic.load(self.artists.model.bundle)
            self.organic.watch(self.settings.swap_interval_s, lambda: self.artists.model.bundle)
        heap.settle(self.settings.gc_freeze)  # the loaded models out of the collector's way

    def stop(self) -> None:
        for serving in self.catalogues.values():
            serving.stop()
        self.organic.stop()
        self.gate.close()


def service_of(app: Starlette) -> Service:
    """The app's service (the app's only state attribute, set by ``create_app``)."""
    service = app.state.service
    if not isinstance(service, Service):
        raise TypeError(f"app.state.service is {type(service).__name__}, not Service")
    return service
