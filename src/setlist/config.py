"""Settings, read once at the edge (CLI, app factory) and passed down as typed sections.

Every field is an environment variable with the prefix ``SETLIST_`` (``SETLIST_HOME``, ...),
except the MLflow tracking URI, which uses MLflow's own ``MLFLOW_TRACKING_URI``.
Nothing here does work at import time; call :func:`get_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Weighting = Literal["none", "linear", "log1p", "bm25"]
ExploreMode = Literal["none", "epsilon", "plackett_luce"]
IndexKind = Literal["auto", "exact", "hnsw", "ivf"]
AnnKind = Literal["hnsw", "ivf"]
AuthMode = Literal["off", "on", "auto"]
Trainer = Literal["local", "ray"]
ModelRuntime = Literal["numpy", "onnx"]


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


@dataclass(frozen=True)
class EventsConfig:
    """Where feedback events are stored and published, and how far ahead a timestamp may be."""

    store_url: str
    bus_url: str = "memory://"
    consumer_group: str = "online"
    max_future_s: float = 300.0
    online_updates: bool = True


@dataclass(frozen=True)
class ExploreConfig:
    """The serving policy: deterministic top-k, or exploration with real propensities."""

    mode: ExploreMode = "none"
    epsilon: float = 0.1
    temperature: float = 1.0
    pool: int = 50


@dataclass(frozen=True)
class ListenerConfig:
    """The index over listeners that finds taste buddies (:mod:`setlist.index.listeners`).

    ``dims`` truncated-SVD dimensions of the taste vectors (0: no listener index, buddies by
    exact search); ``kind`` the index over them; ``candidates`` the first re-ranking depth tried
    (doubled until recall@10 against the exact pairing reaches the target).
    """

    dims: int = 128
    kind: IndexKind = "hnsw"
    candidates: int = 50


@dataclass(frozen=True)
class IndexConfig:
    """The vector indexes built with a model: which kind, and the recall they must reach."""

    kind: IndexKind = "auto"
    ann: AnnKind = "hnsw"
    exact_max_items: int = 50_000
    min_recall: float = 0.95
    recall_margin: float = 0.01
    recall_queries: int = 300
    seed: int = 0
    listeners: ListenerConfig = field(default_factory=ListenerConfig)


@dataclass(frozen=True)
class DriftConfig:
    """Windows and thresholds of the drift checks (:mod:`setlist.monitor.drift`).

    A data check fires only on a p-value under its alpha AND an effect size over its floor:
    windows of thousands of events make a p-value alone fire on differences nobody acts on.
    """

    window_s: float = 3600.0
    min_events: int = 100
    ks_alpha: float = 0.01
    ks_min_d: float = 0.1
    psi_threshold: float = 0.2
    psi_alpha: float = 0.01
    psi_bins: int = 10
    chi2_alpha: float = 0.01
    chi2_min_v: float = 0.15
    new_user_rate: float = 0.2
    new_item_rate: float = 0.1
    pca_error_ratio: float = 1.5
    pca_variance: float = 0.9
    pca_alpha: float = 0.01
    perf_alpha: float = 0.05
    perf_min_drop: float = 0.02
    bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        from setlist.errors import ConfigError

        for name, low, high in _DRIFT_RANGES:
            value = getattr(self, name)
            if not low <= value <= high:  # also refuses NaN
                raise ConfigError(
                    f"drift {name} must be in [{low:g}, {high:g}], got {value!r}",
                    field=f"drift_{name}",
                )


_DRIFT_RANGES: tuple[tuple[str, float, float], ...] = (
    ("window_s", 1.0, 366 * 86_400.0),
    ("min_events", 1, 10**9),
    ("ks_alpha", 1e-12, 0.5),
    ("ks_min_d", 0.0, 1.0),
    ("psi_threshold", 0.0, 100.0),
    ("psi_alpha", 1e-12, 0.5),
    ("psi_bins", 2, 1000),
    ("chi2_alpha", 1e-12, 0.5),
    ("chi2_min_v", 0.0, 1.0),
    ("new_user_rate", 0.0, 1.0),
    ("new_item_rate", 0.0, 1.0),
    ("pca_error_ratio", 1.0, 1e6),
    ("pca_variance", 0.01, 1.0),
    ("pca_alpha", 1e-12, 0.5),
    ("perf_alpha", 1e-6, 0.5),
    ("perf_min_drop", 0.0, 1.0),
    ("bootstrap", 10, 1_000_000),
)


@dataclass(frozen=True)
class LoopConfig:
    """How often the retraining loop looks, retrains and watches a promotion (seconds)."""

    interval_s: float = 60.0
    schedule_s: float = 86_400.0
    cooldown_s: float = 3600.0
    probation_s: float = 3600.0


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
    catalogues: str = Field(
        default="artists",
        description="Catalogues served, name[=registered-model],...; artists is always listed "
        "(from model_name) but a missing champion only makes its routes 503, others default to "
        "model_name-name; `setlist serve` adds every known catalogue that has a champion.",
    )
    dataset: str = Field(default="hetrec-lastfm-2k", description="Default dataset.")
    min_user_items: int = Field(default=5, ge=1, description="Keep users with this many items.")
    min_item_users: int = Field(default=3, ge=1, description="Keep items with this many users.")
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="Per-user test share.")
    seed: int = Field(default=0, description="Seed for splits and models.")
    playlist_holdout: int = Field(
        default=500, ge=1, description="Playlists held out as challenge test cases (by pid)."
    )
    weighting: Weighting = Field(default="log1p", description="Confidence weighting scheme.")
    alpha: float = Field(default=5.0, gt=0, description="Confidence scale for the weighting.")
    factors: int = Field(default=128, ge=1, le=4096, description="ALS latent factors.")
    iterations: int = Field(default=15, ge=1, le=1000, description="ALS iterations.")
    regularization: float = Field(default=0.1, ge=0, description="ALS L2 regularization.")
    two_tower_trainer: Trainer = Field(
        default="local",
        description="Where two_tower trains: local (in process) or ray (Ray Train).",
    )
    two_tower_workers: int = Field(
        default=2, ge=1, le=1024, description="Ray Train data-parallel workers for two_tower."
    )
    two_tower_max_failures: int = Field(
        default=2, ge=-1, description="Worker failures a Ray Train run recovers from; -1: no limit."
    )
    model_runtime: ModelRuntime = Field(
        default="numpy",
        description="Request-time listener tower of two_tower: numpy or onnx (onnxruntime).",
    )
    host: str = Field(default="127.0.0.1", description="Address the API binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API binds to.")
    workers: int = Field(
        default=1, ge=1, le=64, description="API worker processes; metrics add up over them."
    )
    max_k: int = Field(default=1000, ge=1, description="Largest k a request may ask for.")
    events_store_url: str | None = Field(
        default=None,
        description="Event store: sqlite:///PATH or postgresql://...; default SQLite under home.",
    )
    events_bus_url: str = Field(
        default="memory://",
        description="Event bus: memory://, redis://HOST:PORT/DB?stream=... or kafka://HOST:PORT.",
    )
    events_group: str = Field(
        default="online", min_length=1, description="Consumer group of the online updater."
    )
    events_max_future_s: float = Field(
        default=300.0, ge=0, description="How far ahead of the server clock an event's ts may be."
    )
    online_updates: bool = Field(
        default=True, description="Fold acknowledged events into recommendations at once."
    )
    explore_mode: ExploreMode = Field(
        default="none", description="Serving policy: none, epsilon or plackett_luce."
    )
    explore_epsilon: float = Field(
        default=0.1, ge=0, le=1, description="Share of epsilon-greedy answers drawn at random."
    )
    explore_temperature: float = Field(
        default=1.0, gt=0, description="Plackett-Luce temperature over standardised scores."
    )
    explore_pool: int = Field(
        default=50, ge=1, le=10_000, description="Ranked items exploration may draw from."
    )
    index_kind: IndexKind = Field(
        default="auto", description="Vector index: auto (by catalogue size), exact, hnsw, ivf."
    )
    index_ann: AnnKind = Field(default="hnsw", description="ANN kind auto picks: hnsw or ivf.")
    index_exact_max_items: int = Field(
        default=50_000, ge=0, description="Largest catalogue auto serves by exact search."
    )
    index_min_recall: float = Field(
        default=0.95, gt=0, le=1, description="Build fails when ANN recall@10 is below this."
    )
    listeners_dims: int = Field(
        default=128,
        ge=0,
        le=1024,
        description="SVD dimensions of the listener index (taste buddies); 0: exact search.",
    )
    listeners_index_kind: IndexKind = Field(
        default="hnsw", description="Index over listeners: hnsw, ivf, exact or auto."
    )
    rank_max_per_group: int = Field(
        default=0, ge=0, le=1000, description="Most items per tag cluster in an answer; 0: off."
    )
    rank_new_item_slot: int = Field(
        default=0, ge=0, le=1000, description="Position given to the best new item; 0: off."
    )
    rank_new_item_max_listeners: int = Field(
        default=2, ge=0, description="An item heard by at most this many listeners is new."
    )
    rank_blocked_items: str = Field(
        default="", description="Item ids never recommended (comma-separated)."
    )
    rank_blocked_tags: str = Field(
        default="", description="Items carrying any of these tags are never recommended."
    )
    mood_weight: float = Field(
        default=0.5, ge=0, le=1, description="Share of the mood in a ?mood= blend with taste."
    )
    fallback_chain: str = Field(
        default="personalized,popular",
        description="Degradation chain, tried in order; 503 with Retry-After when exhausted.",
    )
    ab_arms: str = Field(
        default="",
        description="A/B arms name=alias-or-version:weight,...; empty: one arm on champion.",
    )
    ab_salt: str = Field(default="setlist", description="Salt of the user -> arm hash.")
    swap_interval_s: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between registry alias checks (and organic version checks); "
        "0: no hot-swap.",
    )
    coverage_period_s: float = Field(
        default=3600.0, gt=0, description="Period over which served-catalogue coverage is counted."
    )
    max_batch: int = Field(
        default=1000, ge=1, le=100_000, description="Most users in one batch request."
    )
    max_exclude: int = Field(
        default=1000, ge=0, description="Most ids in one request's exclude list."
    )
    max_body_bytes: int = Field(
        default=1 << 20, ge=1024, description="Largest request body accepted (bytes)."
    )
    gc_freeze: bool = Field(
        default=True,
        description="After every model load, collect once and freeze the heap (gc.freeze): "
        "no full GC pass walks the loaded models. Off: start-ups cost no collection (the tests).",
    )
    max_in_flight: int = Field(
        default=32, ge=0, description="Requests one worker admits at once; beyond: 503. 0: off."
    )
    auth: AuthMode = Field(
        default="auto",
        description="API keys: on, off, or auto (required unless the API binds to loopback).",
    )
    auth_pepper: SecretStr | None = Field(
        default=None, description="Secret key of the API keys' hash (the same on every replica)."
    )
    auth_metrics: bool = Field(
        default=False, description="/metrics needs a key with the read scope when auth is on."
    )
    auth_cache_s: float = Field(
        default=5.0, ge=0, le=300, description="Seconds a key lookup is reused (revocation delay)."
    )
    api_key: SecretStr | None = Field(
        default=None, description="Key the app, simulate and the loop send to the API."
    )
    rate_limit: str = Field(
        default="100/minute", description="Requests per client address without a key; empty: off."
    )
    rate_limit_key: str = Field(
        default="1000/minute", description="A new key's quota unless --rate says; events count."
    )
    rate_limit_storage: str | None = Field(
        default=None,
        description="Rate-limit counters: memory:// or redis://...; default memory for one "
        "worker, the events bus's Redis for several.",
    )
    loop_interval_s: float = Field(
        default=60.0, gt=0, description="Seconds between two ticks of `setlist loop`."
    )
    loop_schedule_s: float = Field(
        default=86_400.0, ge=0, description="Retrain this long after the last retraining; 0: off."
    )
    loop_cooldown_s: float = Field(
        default=3600.0,
        ge=0,
        description="No drift-triggered retraining sooner than this after one.",
    )
    loop_probation_s: float = Field(
        default=3600.0, ge=0, description="How long a new champion's live figures are watched."
    )
    loop_recent_test_fraction: float = Field(
        default=0.5, gt=0, lt=1, description="Share of the latest window's discoveries held out."
    )
    loop_organic_min_feedback: int = Field(
        default=50,
        ge=1,
        description="Playlist actions (follow, play, skip) newer than the serving organic "
        "version that make the loop retrain the organic ranker.",
    )
    loop_metrics_port: int = Field(
        default=9101, ge=1, le=65535, description="Port of the loop worker's /metrics."
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster the Ray commands join (auto, ray://HOST:10001); none: local Ray.",
    )
    ui_api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The HTTP API the Streamlit app (`setlist ui`) talks to.",
    )
    drift_window_s: float = Field(
        default=3600.0, ge=1, description="Seconds in a drift window; reference: the one before."
    )
    drift_min_events: int = Field(
        default=100, ge=1, description="Fewer engagement events in either window: no drift verdict."
    )
    drift_ks_alpha: float = Field(
        default=0.01, gt=0, le=0.5, description="Per-user activity KS test: p must be below this."
    )
    drift_ks_min_d: float = Field(
        default=0.1, ge=0, le=1, description="Per-user activity KS test: D must reach this."
    )
    drift_psi_threshold: float = Field(
        default=0.2, ge=0, description="Item popularity PSI must reach this."
    )
    drift_psi_alpha: float = Field(
        default=0.01, gt=0, le=0.5, description="Item popularity PSI: p must be below this."
    )
    drift_psi_bins: int = Field(
        default=10, ge=2, le=1000, description="Equal-mass bins of items by reference popularity."
    )
    drift_chi2_alpha: float = Field(
        default=0.01, gt=0, le=0.5, description="Item popularity chi-square: p must be below this."
    )
    drift_chi2_min_v: float = Field(
        default=0.15, ge=0, le=1, description="Item popularity chi-square: V must reach this."
    )
    drift_new_user_rate: float = Field(
        default=0.2, ge=0, le=1, description="Share of engagement from users the model lacks."
    )
    drift_new_item_rate: float = Field(
        default=0.1, ge=0, le=1, description="Share of engagement on items the model lacks."
    )
    drift_pca_error_ratio: float = Field(
        default=1.5, ge=1, description="User-vector PCA error, current / reference, that is drift."
    )
    drift_pca_variance: float = Field(
        default=0.9, gt=0, le=1, description="Variance share the user-vector PCA keeps."
    )
    drift_pca_alpha: float = Field(
        default=0.01, gt=0, le=0.5, description="User-vector PCA: p must be below this."
    )
    drift_perf_alpha: float = Field(
        default=0.05, gt=0, le=0.5, description="1 - confidence of the listen-through interval."
    )
    drift_perf_min_drop: float = Field(
        default=0.02, ge=0, le=1, description="Listen-through drop the whole interval must exceed."
    )
    drift_bootstrap: int = Field(
        default=1000, ge=10, le=1_000_000, description="Bootstrap resamples of listen-through."
    )

    organic_dir: Path | None = Field(
        default=None,
        description="Folder of the organic playlist ranker's versions (`setlist organic train` "
        "writes, the API loads the newest); default home/organic.",
    )

    top_picks_path: Path | None = Field(
        default=None,
        description="The `setlist top-picks` table the API serves organic playlists from while "
        "fresh; default home/top_picks.parquet.",
    )
    top_picks_max_age_s: float = Field(
        default=8 * 86_400.0,
        gt=0,
        description="Age past which the top-picks table is stale (computed on request instead).",
    )

    @property
    def top_picks_file(self) -> Path:
        return self.top_picks_path or self.home / "top_picks.parquet"

    @property
    def organic_path(self) -> Path:
        """Where the organic playlist ranker's versions live."""
        return self.organic_dir or self.home / "organic"

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

    @property
    def datasets_dir(self) -> Path:
        """Where read datasets are stored as Parquet (the MPD's playlist tables)."""
        return self.home / "datasets"

    def clean(self) -> CleanConfig:
        return CleanConfig(self.min_user_items, self.min_item_users)

    def split(self) -> SplitConfig:
        return SplitConfig(self.test_fraction, self.seed)

    def weights(self) -> WeightConfig:
        return WeightConfig(scheme=self.weighting, alpha=self.alpha)

    def events(self) -> EventsConfig:
        store = self.events_store_url or f"sqlite:///{(self.home / 'events.db').resolve()}"
        return EventsConfig(
            store_url=store,
            bus_url=self.events_bus_url,
            consumer_group=self.events_group,
            max_future_s=self.events_max_future_s,
            online_updates=self.online_updates,
        )

    def explore(self) -> ExploreConfig:
        return ExploreConfig(
            mode=self.explore_mode,
            epsilon=self.explore_epsilon,
            temperature=self.explore_temperature,
            pool=self.explore_pool,
        )

    def loop(self) -> LoopConfig:
        return LoopConfig(
            interval_s=self.loop_interval_s,
            schedule_s=self.loop_schedule_s,
            cooldown_s=self.loop_cooldown_s,
            probation_s=self.loop_probation_s,
        )

    def index(self) -> IndexConfig:
        return IndexConfig(
            kind=self.index_kind,
            ann=self.index_ann,
            exact_max_items=self.index_exact_max_items,
            min_recall=self.index_min_recall,
            seed=self.seed,
            listeners=ListenerConfig(dims=self.listeners_dims, kind=self.listeners_index_kind),
        )

    def drift(self) -> DriftConfig:
        return DriftConfig(
            window_s=self.drift_window_s,
            min_events=self.drift_min_events,
            ks_alpha=self.drift_ks_alpha,
            ks_min_d=self.drift_ks_min_d,
            psi_threshold=self.drift_psi_threshold,
            psi_alpha=self.drift_psi_alpha,
            psi_bins=self.drift_psi_bins,
            chi2_alpha=self.drift_chi2_alpha,
            chi2_min_v=self.drift_chi2_min_v,
            new_user_rate=self.drift_new_user_rate,
            new_item_rate=self.drift_new_item_rate,
            pca_error_ratio=self.drift_pca_error_ratio,
            pca_variance=self.drift_pca_variance,
            pca_alpha=self.drift_pca_alpha,
            perf_alpha=self.drift_perf_alpha,
            perf_min_drop=self.drift_perf_min_drop,
            bootstrap=self.drift_bootstrap,
            seed=self.seed,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (environment read on first call)."""
    return Settings()
