"""MLflow runs of a study: one parent run, one nested (child) run per trial.

Nesting is MLflow's own convention: a child carries the tag ``mlflow.parentRunId``. Runs are
written through ``MlflowClient`` into the registry's experiment, so the study, its trials and the
registered winner sit side by side in the MLflow UI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from setlist.registry.store import Registry

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

_PARAM_BATCH = 100


class StudyTracker:
    """Writes a study's parent run and its trials' nested runs."""

    def __init__(self, registry: Registry, run_name: str, params: Mapping[str, Any]) -> None:
        from mlflow.tracking import MlflowClient

        self._client: MlflowClient = MlflowClient(tracking_uri=registry.uri)
        self.experiment_id = registry.experiment_id
        run = self._client.create_run(self.experiment_id, run_name=run_name)
        self.parent_id: str = run.info.run_id
        self._log(self.parent_id, params, {}, {"setlist.kind": "study"})

    def trial(
        self,
        name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        status: str = "FINISHED",
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Log one finished (or pruned: ``KILLED``, failed: ``FAILED``) trial as a child run."""
        run = self._client.create_run(
            self.experiment_id,
            run_name=name,
            tags={"mlflow.parentRunId": self.parent_id, "setlist.kind": "trial"},
        )
        run_id: str = run.info.run_id
        self._log(run_id, params, metrics, dict(tags or {}))
        self._client.set_terminated(run_id, status=status)
        return run_id

    def finish(
        self,
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        artifacts: Path | None = None,
        status: str = "FINISHED",
    ) -> None:
        self._log(self.parent_id, {}, metrics, dict(tags))
        if artifacts is not None:
            self._client.log_artifacts(self.parent_id, str(artifacts), "study")
        self._client.set_terminated(self.parent_id, status=status)

    def log_artifact(self, run_id: str, path: Path, folder: str) -> None:
        self._client.log_artifact(run_id, str(path), folder)

    def _log(
        self,
        run_id: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        plist = [Param(_key(k), _text(v)) for k, v in params.items()]
        for start in range(0, len(plist), _PARAM_BATCH):
            self._client.log_batch(run_id, params=plist[start : start + _PARAM_BATCH])
        self._client.log_batch(
            run_id,
            metrics=[Metric(_key(k), float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()],
        )


def _key(name: str) -> str:
    return str(name).replace("@", "_at_")[:250]


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:6000]
