"""The Recommender contract shared by every model, and its artifact format.

Contract (after scikit-learn and implicit's ``RecommenderBase``): the constructor only stores
hyperparameters; ``fit(user_items) -> self`` takes a users x items CSR of confidences; learned state
ends in ``_``; ``recommend`` ranks the whole catalogue; ``save``/``load`` write arrays to ``.npz``
and metadata to JSON with the arrays' SHA-256, and load without pickle, checking that hash.
"""

from __future__ import annotations

import inspect
import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray, sha256_file, top_k
from setlist.errors import ArtifactError, ConfigError, ModelError

if TYPE_CHECKING:
    from setlist.config import Settings
    from setlist.models.space import SearchSpace

ARTIFACT_FORMAT = 1
_REGISTRY: dict[str, type[Recommender]] = {}


class Recommender(ABC):
    """A fitted-or-not recommender over a fixed catalogue of ``n_items_`` rows."""

    kind: ClassVar[str]
    #: Declared capabilities, read by the pipeline and the service instead of probing attributes.
    #: ``weights_input``: the model turns raw counts into confidences itself (hand it counts).
    weights_input: ClassVar[bool] = False
    #: ``can_fold_in``: :meth:`fold_in` maps a history to a user vector in :meth:`vectors` space.
    can_fold_in: ClassVar[bool] = False
    #: The parameter counting iterations (or epochs): a tuning trial first fits a share of it,
    #: which the pruner may cut. None: the model has no such parameter.
    fidelity_param: ClassVar[str | None] = None
    #: False for a kind the tuner does not sample by itself (a blend is searched over members).
    tunable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _REGISTRY[cls.kind] = cls

    # --- what the kind declares for tuning and training (its module is the one place) ---------

    @classmethod
    def search_space(cls, space: SearchSpace) -> None:
        """Declare the ranges a tuning trial samples (``space.real("l2", 1, 1e4, log=True)``).

        The default searches nothing: a trial then fits the kind with its fixed parameters.
        """
        del space  # nothing to sample

    @classmethod
    def estimate_seconds(cls, params: Mapping[str, Any], train: sp.csr_matrix) -> float:
        """A rough, deliberately generous fit-time estimate on 2 cores (for budget checks)."""
        return 1.0

    @classmethod
    def smallest_params(cls) -> dict[str, Any]:
        """The cheapest configuration of the space: a budget that cannot fit it is refused."""
        return {}

    @classmethod
    def defaults(cls, settings: Settings) -> dict[str, Any]:
        """Parameters ``setlist train`` uses unless ``--param`` overrides them: the seed, for
        a model that takes one."""
        taken = inspect.signature(cls.__init__).parameters
        return {"seed": settings.seed} if "seed" in taken else {}

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters, JSON-serialisable, enough to rebuild an unfitted copy."""

    @abstractmethod
    def fit(self, user_items: sp.csr_matrix) -> Self:
        """Learn from a users x items CSR matrix of confidences."""

    @abstractmethod
    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        """Dense scores, shape (len(user_rows), n_items_), for those users' ``user_items`` rows."""

    @abstractmethod
    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        """For each item row, the k most similar other items (rows, scores)."""

    @abstractmethod
    def _state(self) -> dict[str, npt.NDArray[Any]]:
        """The learned arrays to save."""

    @abstractmethod
    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Restore learned arrays (already checked for hash)."""

    @property
    @abstractmethod
    def n_items_(self) -> int:
        """Catalogue size the model was fitted on."""

    @abstractmethod
    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        """Dense scores for users the model never saw, from their histories alone (fold-in).

        One row per row of ``user_items`` (confidences over this model's catalogue). Used for
        onboarding new listeners and for reflecting fresh listens without refitting.
        """

    def vectors(self) -> tuple[FloatArray, FloatArray] | None:
        """(user vectors, item vectors) when scores are their dot product, else None.

        Factor models override it; the service then searches a vector index instead of scoring
        the whole catalogue, and the drift monitor watches the item vectors.
        """
        return None

    def fold_in(self, user_items: sp.csr_matrix) -> FloatArray:
        """User vectors for histories the model never saw (only where ``can_fold_in``)."""
        raise ModelError(f"a {self.kind!r} model has no user vectors to fold a history into")

    def use_runtime(self, runtime: str) -> None:
        """Serve request-time work with ``runtime`` (``SETLIST_MODEL_RUNTIME``): numpy, or onnx
        for a model with an exported graph. The default serves numpy only and ignores onnx."""
        del runtime  # no graph to run: numpy it is

    def prepare_explain(self) -> object:
        """Precompute what :meth:`explain` needs, so the first request does not pay for it.

        The default has nothing to prepare; a model whose explanations need a table overrides it.
        """
        return None

    def explain(
        self, user_items: sp.csr_matrix, item_rows: IntArray, n: int = 3
    ) -> tuple[IntArray, FloatArray]:
        """Which heard items made each of ``item_rows`` score as it does, for one listener.

        ``user_items`` is that listener's history (1 x n_items confidences). Returns, per item
        row, the ``n`` heard item rows that contributed most (positive contributions only, best
        first) and their contributions, padded with -1 / 0. The default attributes nothing: a
        model that cannot split its score over the history says so rather than invent a reason.
        """
        rows = np.asarray(item_rows, dtype=np.int64)
        return np.full((len(rows), n), -1, dtype=np.int64), np.zeros((len(rows), n), np.float32)

    def recommend(
        self,
        user_rows: IntArray,
        user_items: sp.csr_matrix,
        k: int = 10,
        exclude_seen: bool = True,
    ) -> tuple[IntArray, FloatArray]:
        """Top-k item rows and scores for each user row, over the full catalogue.

        ``user_items`` has one row per entry of ``user_rows`` (the users' histories); with
        ``exclude_seen`` those items are never returned. Rows are padded with -1 / -inf when
        fewer than k items remain.
        """
        user_rows = np.asarray(user_rows, dtype=np.int64)
        if user_items.shape[0] != len(user_rows):
            raise ModelError(
                f"user_items has {user_items.shape[0]} rows for {len(user_rows)} users"
            )
        return self._rank(
            lambda a, b: self.score(user_rows[a:b], user_items[a:b]), user_items, k, exclude_seen
        )

    def recommend_histories(
        self, user_items: sp.csr_matrix, k: int = 10, exclude_seen: bool = True
    ) -> tuple[IntArray, FloatArray]:
        """Top-k for users known only by their histories (see :meth:`score_histories`)."""
        if user_items.shape[1] != self.n_items_:
            raise ModelError(
                f"histories have {user_items.shape[1]} item columns, model has {self.n_items_}"
            )
        return self._rank(
            lambda a, b: self.score_histories(user_items[a:b]), user_items, k, exclude_seen
        )

    def _rank(
        self,
        scorer: Callable[[int, int], FloatArray],
        user_items: sp.csr_matrix,
        k: int,
        exclude_seen: bool,
    ) -> tuple[IntArray, FloatArray]:
        k = int(k)
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        n = user_items.shape[0]
        ids = np.full((n, k), -1, dtype=np.int64)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        batch = max(1, (1 << 24) // max(self.n_items_, 1))
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            block = np.array(scorer(start, stop), dtype=np.float32)
            if exclude_seen:
                sub = user_items[start:stop].tocoo()
                block[sub.row, sub.col] = -np.inf
            ids[start:stop], scores[start:stop] = top_k(block, k)
        ids[~np.isfinite(scores)] = -1
        return ids, scores

    def save(self, path: Path) -> None:
        """Write ``model.npz`` and ``model.json`` into the folder ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        arrays = self._state()
        npz = path / "model.npz"
        np.savez(npz, **arrays)  # type: ignore[arg-type]
        meta = {
            "format": ARTIFACT_FORMAT,
            "kind": self.kind,
            "params": self.get_params(),
            "shapes": {name: list(a.shape) for name, a in arrays.items()},
            "sha256": sha256_file(npz),
        }
        (path / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> Self:
        """Load a model saved by :meth:`save`, refusing a changed, truncated or foreign file."""
        model = load_model(path)
        if not isinstance(model, cls):
            raise ArtifactError(f"{path} holds a {model.kind!r} model, not {cls.kind!r}")
        return model


def model_class(kind: str) -> type[Recommender]:
    """The model class registered under ``kind`` (``als``, ``popularity``, ...)."""
    try:
        return _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown model {kind!r}; known models: {known}") from None


def load_model(path: Path) -> Recommender:
    """Load any saved model; its class comes from ``model.json``."""
    meta_path, npz = path / "model.json", path / "model.npz"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read model metadata {meta_path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{meta_path}: not a format-{ARTIFACT_FORMAT} model artifact")
    if not npz.exists() or sha256_file(npz) != meta.get("sha256"):
        raise ArtifactError(f"{npz}: SHA-256 does not match {meta_path} (changed or truncated)")
    try:
        # A kind or parameters the code does not know make a broken artifact, not a bad setting.
        model = model_class(str(meta.get("kind")))(**meta["params"])
        shapes = dict(meta["shapes"])
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{meta_path}: cannot rebuild the model: {exc}") from exc
    try:
        with np.load(npz, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # A truncated zip raises BadZipFile, which is neither OSError nor ValueError.
        raise ArtifactError(f"cannot read {npz}: {exc}") from exc
    for name, shape in shapes.items():
        if name not in arrays or list(arrays[name].shape) != shape:
            raise ArtifactError(f"{npz}: array {name!r} missing or not of shape {shape}")
    try:
        model._set_state(arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{npz}: arrays do not fit a {model.kind!r} model: {exc}") from exc
    return model
