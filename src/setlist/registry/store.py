"""An MLflow-backed model store: log a bundle as a run, register it, move aliases, promote.

Layout in MLflow:

- one **run** per trained model in the experiment ``config.experiment``: params (the model's
  hyperparameters, ``model_type``, ``data.*`` strings), metrics (evaluation figures,
  ``fit_seconds``, ``data.*`` numbers), tags, and the bundle folder as artifacts under ``model/``;
- one **model version** of ``config.model_name`` per run, whose tags repeat the model type, params,
  metrics and data figures (``setlist.*`` JSON tags keep the exact names and values, ``metric.*`` /
  ``data.*`` tags are for people reading the MLflow UI), so listing versions needs no run lookups;
- the alias ``champion`` names the version the service loads; the promotion gate
  (:mod:`setlist.registry.gate`) is the only place that moves it on merit, and records its
  decision on the candidate's run and version.

No ``mlflow.pyfunc`` or other pickle-based flavour is used, on purpose: a version's artifacts are
the bundle's ``.npz`` + JSON files, loaded with ``allow_pickle=False`` and checked against hashes.
A model file from outside is data, never code. A SHA-256 manifest of the whole bundle folder is
stored as a version tag at registration and checked again after every download.

MLflow is imported inside the methods that need it (the import takes seconds), so importing this
module stays cheap; the service pays for it once, at start-up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from setlist.arrays import sha256_file
from setlist.bundle import ModelBundle
from setlist.errors import ArtifactError, NotFoundError, RegistryError

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion
    from mlflow.tracking import MlflowClient

    from setlist.config import Settings

log = logging.getLogger(__name__)

CHAMPION = "champion"
ARTIFACT_PATH = "model"
DEFAULT_METRIC = "ndcg@10"

# Version tags owned by setlist (JSON values keep names MLflow would not accept as keys, like "@").
TAG_MODEL_TYPE = "setlist.model_type"
TAG_PARAMS = "setlist.params"
TAG_METRICS = "setlist.metrics"
TAG_DATA = "setlist.data"
TAG_MANIFEST = "setlist.artifact_sha256"

_BAD_KEY_CHARS = re.compile(r"[^\w./\- ]")
_BATCH = 100  # MLflow accepts at most 100 params + tags per log_batch call


@dataclass(frozen=True)
class RegistryConfig:
    """Where the registry lives and what it is called."""

    tracking_uri: str
    artifact_root: Path
    experiment: str
    model_name: str

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryConfig:
        return cls(
            tracking_uri=settings.tracking_uri,
            artifact_root=settings.artifact_root,
            experiment=settings.experiment,
            model_name=settings.model_name,
        )


@dataclass
class ModelVersion:
    """One registered version, read from its version tags (no run lookup)."""

    name: str
    version: str
    run_id: str
    aliases: list[str]
    model_type: str
    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]
    created_at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def data_fingerprint(self) -> str | None:
        value = self.data.get("fingerprint")
        return None if value is None else str(value)

    @property
    def is_champion(self) -> bool:
        return CHAMPION in self.aliases


class Registry:
    """Model versions of one registered model in one MLflow tracking store."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        _quiet_mlflow()
        _ensure_sqlite_folder(config.tracking_uri)
        from mlflow.tracking import MlflowClient

        self._client: MlflowClient = MlflowClient(
            tracking_uri=config.tracking_uri, registry_uri=config.tracking_uri
        )
        self.experiment_id = self._ensure_experiment()

    @property
    def uri(self) -> str:
        return self.config.tracking_uri

    # ---------------------------------------------------------------- writing

    def log_model(
        self,
        *,
        run_name: str,
        bundle_dir: Path,
        model_type: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        data: Mapping[str, Any],
        fit_seconds: float,
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Log one training run with the bundle as artifacts, and register it as a new version."""
        bundle_dir = Path(bundle_dir)
        if not (bundle_dir / "bundle.json").is_file():
            raise ArtifactError(f"{bundle_dir} is not a model bundle folder (no bundle.json)")
        manifest = manifest_sha256(bundle_dir)
        user_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        metric_values = {str(k): float(v) for k, v in metrics.items()}
        run_id = self._log_run(
            run_name, bundle_dir, model_type, params, metric_values, data, fit_seconds, user_tags
        )
        version_tags = {
            **user_tags,
            TAG_MODEL_TYPE: model_type,
            TAG_PARAMS: _dumps(params),
            TAG_METRICS: _dumps(metric_values),
            TAG_DATA: _dumps(data),
            TAG_MANIFEST: manifest,
            "fit_seconds": repr(float(fit_seconds)),
        }
        version_tags.update({f"metric.{_key(k)}": repr(v) for k, v in metric_values.items()})
        version_tags.update({f"data.{_key(k)}": str(v) for k, v in data.items()})
        with self._errors(f"registering run {run_id} as {self.config.model_name!r}"):
            self._ensure_registered_model()
            run = self._client.get_run(run_id)
            mv = self._client.create_model_version(
                self.config.model_name,
                source=f"{run.info.artifact_uri}/{ARTIFACT_PATH}",
                run_id=run_id,
                tags=version_tags,
            )
        return self._convert(mv, [])

    def _log_run(
        self,
        run_name: str,
        bundle_dir: Path,
        model_type: str,
        params: Mapping[str, Any],
        metrics: dict[str, float],
        data: Mapping[str, Any],
        fit_seconds: float,
        tags: dict[str, str],
    ) -> str:
        run_params = {"model_type": model_type, **{_key(k): _text(v) for k, v in params.items()}}
        run_metrics = {_key(k): v for k, v in metrics.items()}
        run_metrics["fit_seconds"] = float(fit_seconds)
        for key, value in data.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                run_metrics[f"data.{_key(key)}"] = float(value)
            else:
                run_params[f"data.{_key(key)}"] = _text(value)
        return self._write_run(
            run_name,
            run_params,
            run_metrics,
            tags,
            lambda run_id: self._client.log_artifacts(run_id, str(bundle_dir), ARTIFACT_PATH),
        )

    def log_run(
        self,
        run_name: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        artifacts: Sequence[Path] = (),
    ) -> str:
        """Log a run that registers nothing (a drift report, a loop decision); returns its id.

        Non-finite metrics are left out (MLflow stores them, but they mean "not measured").
        """

        def log_files(run_id: str) -> None:
            for path in artifacts:
                self._client.log_artifact(run_id, str(path))

        return self._write_run(
            run_name,
            {_key(k): _text(v) for k, v in (params or {}).items()},
            {_key(k): float(v) for k, v in (metrics or {}).items() if math.isfinite(float(v))},
            {_key(k): str(v)[:5000] for k, v in (tags or {}).items()},
            log_files,
        )

    def _write_run(
        self,
        run_name: str,
        params: Mapping[str, str],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        artifacts: Callable[[str], None],
    ) -> str:
        """Create a run, log params, tags and metrics in batches, then its artifacts; a run
        that fails half way is marked FAILED."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        with self._errors(f"logging run {run_name!r} to experiment {self.config.experiment!r}"):
            run = self._client.create_run(self.experiment_id, run_name=run_name)
            run_id: str = run.info.run_id
            try:
                items: list[Any] = [Param(k, v) for k, v in params.items()]
                items += [RunTag(k, v) for k, v in tags.items()]
                for start in range(0, len(items), _BATCH):
                    chunk = items[start : start + _BATCH]
                    self._client.log_batch(
                        run_id,
                        params=[x for x in chunk if isinstance(x, Param)],
                        tags=[x for x in chunk if isinstance(x, RunTag)],
                    )
                metric_list = [Metric(k, v, now, 0) for k, v in metrics.items()]
                for start in range(0, len(metric_list), 1000):
                    self._client.log_batch(run_id, metrics=metric_list[start : start + 1000])
                artifacts(run_id)
            except BaseException:
                self._client.set_terminated(run_id, status="FAILED")
                raise
            self._client.set_terminated(run_id, status="FINISHED")
        return run_id

    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (which must exist)."""
        mv = self.get(version)
        with self._errors(f"setting alias {alias!r} to version {mv.version}"):
            self._client.set_registered_model_alias(self.config.model_name, alias, mv.version)

    def annotate(
        self, version: ModelVersion, tags: Mapping[str, str], metrics: Mapping[str, float]
    ) -> None:
        """Add tags and metrics to a version's run, and the tags to the version itself."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        with self._errors(f"annotating run {version.run_id} of version {version.version}"):
            self._client.log_batch(
                version.run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                tags=[RunTag(k, v) for k, v in tags.items()],
            )
            for key, value in tags.items():
                self._client.set_model_version_tag(
                    self.config.model_name, version.version, key, value
                )

    # ---------------------------------------------------------------- reading

    def champion(self) -> ModelVersion | None:
        """The version aliased ``champion``, or None when there is none (or no model yet)."""
        aliases = self._aliases()
        version = aliases.get(CHAMPION)
        return None if version is None else self.get(version)

    def get(self, version: str) -> ModelVersion:
        """One version, by number (``"3"``) or by alias (``"champion"``)."""
        name = self.config.model_name
        what = f"model {name!r} version {version!r} in {self.uri}"
        aliases = self._aliases()
        number = str(version) if str(version).isdigit() else aliases.get(str(version))
        if number is None:
            raise NotFoundError(f"{what} not found (no such alias)", version=str(version))
        with self._errors(what):
            mv = self._client.get_model_version(name, number)
        return self._convert(mv, [a for a, v in aliases.items() if v == str(mv.version)])

    def list_versions(self) -> list[ModelVersion]:
        """Every version of the model, newest first."""
        name = self.config.model_name
        aliases = self._aliases()
        found: list[MlflowModelVersion] = []
        token: str | None = None
        with self._errors(f"listing versions of {name!r}"):
            while True:
                page = self._client.search_model_versions(
                    f"name = '{_quote(name)}'", page_token=token
                )
                found.extend(page)
                token = page.token
                if not token:
                    break
        found.sort(key=lambda mv: int(mv.version), reverse=True)
        return [
            self._convert(mv, [a for a, v in aliases.items() if v == str(mv.version)])
            for mv in found
        ]

    def download(self, version_or_alias: str, dest: Path) -> Path:
        """Download a version's bundle under ``dest`` and check its manifest; returns the folder."""
        mv = self.get(version_or_alias)
        target = Path(dest) / f"{mv.name}-v{mv.version}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        with self._errors(f"downloading artifacts of {mv.name!r} version {mv.version}"):
            local = self._client.download_artifacts(mv.run_id, ARTIFACT_PATH, str(target))
        folder = Path(local)
        expected = mv.tags.get(TAG_MANIFEST)
        if expected is not None and manifest_sha256(folder) != expected:
            raise ArtifactError(
                f"{folder}: files of {mv.name!r} version {mv.version} do not match the SHA-256 "
                "recorded at registration (changed or truncated)"
            )
        return folder

    def load_champion(self, dest_dir: Path) -> tuple[ModelVersion, ModelBundle] | None:
        """Download and load the champion's bundle; None when there is no champion."""
        champion = self.champion()
        if champion is None:
            return None
        folder = self.download(champion.version, dest_dir)
        return champion, ModelBundle.load(folder)

    # ---------------------------------------------------------------- plumbing

    def _ensure_experiment(self) -> str:
        name = self.config.experiment
        with self._errors(f"opening experiment {name!r}"):
            exp = self._client.get_experiment_by_name(name)
            if exp is None:
                location = None
                if _is_local(self.config.tracking_uri):
                    root = self.config.artifact_root.expanduser().resolve()
                    root.mkdir(parents=True, exist_ok=True)
                    folder = re.sub(r"[^\w.-]", "_", name).strip(".") or "experiment"
                    location = (root / folder).as_uri()
                experiment_id: str = self._client.create_experiment(
                    name, artifact_location=location
                )
                return experiment_id
            if exp.lifecycle_stage == "deleted":
                self._client.restore_experiment(exp.experiment_id)
            return str(exp.experiment_id)

    def _ensure_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self._client.create_registered_model(self.config.model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _aliases(self) -> dict[str, str]:
        """alias -> version number, for the registered model ({} when it does not exist yet)."""
        name = self.config.model_name
        try:
            with self._errors(f"reading registered model {name!r}"):
                model = self._client.get_registered_model(name)
        except NotFoundError:
            return {}
        return {str(alias): str(version) for alias, version in model.aliases.items()}

    def _convert(self, mv: MlflowModelVersion, aliases: list[str]) -> ModelVersion:
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        metrics = _loads(tags.get(TAG_METRICS))
        return ModelVersion(
            name=str(mv.name),
            version=str(mv.version),
            run_id=str(mv.run_id or ""),
            aliases=sorted(aliases),
            model_type=tags.get(TAG_MODEL_TYPE, "unknown"),
            params=_loads(tags.get(TAG_PARAMS)),
            metrics={str(k): float(v) for k, v in metrics.items() if _is_number(v)},
            tags=tags,
            created_at=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, tz=UTC),
            data=_loads(tags.get(TAG_DATA)),
        )

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn MLflow and transport failures into RegistryError / NotFoundError."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(f"{what}: not found ({exc.message})") from exc
            raise RegistryError(f"{what} failed at {self.uri}: {exc.message}") from exc
        except OSError as exc:  # requests' errors are OSErrors too
            raise RegistryError(f"{what} failed at {self.uri}: {exc}") from exc


def manifest_sha256(folder: Path) -> str:
    """One SHA-256 over every file's relative path and content hash, in sorted order."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise ArtifactError(f"{folder} holds no files")
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _quiet_mlflow() -> None:
    """Silence MLflow's start-up chatter (schema migrations, progress bars)."""
    for name in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def _ensure_sqlite_folder(uri: str) -> None:
    if not uri.startswith("sqlite:///"):
        return
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    if path and path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot create the folder of MLflow store {uri}: {exc}") from exc


def _key(name: object) -> str:
    """A name MLflow accepts as a param/metric/tag key ("ndcg@10" -> "ndcg_at_10")."""
    return _BAD_KEY_CHARS.sub("_", str(name).replace("@", "_at_"))[:250]


def _text(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text[:6000]


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), default=str, sort_keys=True)


def _loads(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
