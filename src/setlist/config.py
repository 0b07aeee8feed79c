"""Settings, read once at the edge (CLI, app factory) and passed down as typed sections.

Every field is an environment variable with the prefix ``SETLIST_`` (``SETLIST_HOME``, ...),
except the MLflow tracking URI, which uses MLflow's own ``MLFLOW_TRACKING_URI``.
Nothing here does work at import time; call :func:`get_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Weighting = Literal["none", "linear", "log1p", "bm25"]


@dataclass(frozen=True)
class CleanConfig:
    """Iterative k-core filter thresholds."""

    min_user_items: int = 5
    min_item_users: int = 3


@dataclass(frozen=True)
class SplitConfig:
    """How a dataset is divided into train and test."""

    test_fraction: float = 0.2
    seed: int = 0


@dataclass(frozen=True)
class WeightConfig:
    """Confidence weighting applied to play counts before fitting."""

    scheme: Weighting = "log1p"
    alpha: float = 5.0
    bm25_k1: float = 1.2
    bm25_b: float = 0.75


class Settings(BaseSettings):
    """All settings of setlist. The README's configuration table lists each one."""

    model_config = SettingsConfigDict(env_prefix="SETLIST_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".setlist",
        description="Working folder: data cache, MLflow store, model artifacts, quarantine files.",
    )
    data_mirror: Path | None = Field(
        default=None, description="Local mirror folder of the datasets (layout of shared/data)."
    )
    download: bool = Field(
        default=True, description="Allow downloads from the official source when no mirror has it."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "SETLIST_MLFLOW_TRACKING_URI"),
        description="MLflow tracking server; default is a SQLite store under home.",
    )
    experiment: str = Field(default="setlist", description="MLflow experiment name.")
    model_name: str = Field(default="setlist", description="MLflow registered model name.")
    dataset: str = Field(default="hetrec-lastfm-2k", description="Default dataset.")
    min_user_items: int = Field(default=5, ge=1, description="Keep users with this many items.")
    min_item_users: int = Field(default=3, ge=1, description="Keep items with this many users.")
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="Per-user test share.")
    seed: int = Field(default=0, description="Seed for splits and models.")
    weighting: Weighting = Field(default="log1p", description="Confidence weighting scheme.")
    alpha: float = Field(default=5.0, gt=0, description="Confidence scale for the weighting.")
    factors: int = Field(default=128, ge=1, le=4096, description="ALS latent factors.")
    iterations: int = Field(default=15, ge=1, le=1000, description="ALS iterations.")
    regularization: float = Field(default=0.1, ge=0, description="ALS L2 regularization.")
    host: str = Field(default="127.0.0.1", description="Address the API binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API binds to.")
    max_k: int = Field(default=1000, ge=1, description="Largest k a request may ask for.")

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI in force (explicit, else SQLite under home)."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def cache_dir(self) -> Path:
        return self.home / "data"

    def clean(self) -> CleanConfig:
        return CleanConfig(self.min_user_items, self.min_item_users)

    def split(self) -> SplitConfig:
        return SplitConfig(self.test_fraction, self.seed)

    def weights(self) -> WeightConfig:
        return WeightConfig(scheme=self.weighting, alpha=self.alpha)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (environment read on first call)."""
    return Settings()
