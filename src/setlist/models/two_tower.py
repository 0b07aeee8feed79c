"""A two-tower model (PyTorch, CPU) served like a factor model: user . item vectors.

The network and its sampled-softmax training (in-batch negatives, logQ correction, sparse item
embeddings, optional item features) are in :mod:`setlist.models.two_tower_net`; here is the
Recommender around it. Scores are ``listener_vector . item_vector + item_bias``, exposed by
:meth:`vectors` as ``[listener, 1] . [item, bias]``, so the service searches the vector index
(recall-checked like ALS's) and folds a new listener in from their history (``can_fold_in``):
the listener tower needs only the history.

Scoring needs no PyTorch: the learned arrays are saved as ``.npz`` and the forward pass is numpy.
The listener tower exports to ONNX (:meth:`export_onnx`, served by onnxruntime when
``SETLIST_MODEL_RUNTIME=onnx``) and TorchScript (:meth:`export_torchscript`); tests check both
against numpy within 1e-5.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray, top_k
from setlist.errors import ArtifactError, ConfigError, ModelError
from setlist.models.base import Recommender
from setlist.models.knn import WeightsInput

if TYPE_CHECKING:
    import torch

    from setlist.config import Settings
    from setlist.models.space import SearchSpace

_PARAMS = ("w_in", "b_in", "w_out", "b_out", "item_embeddings", "item_bias", "user_vectors")
RUNTIMES = ("numpy", "onnx")
TRAINERS = ("local", "ray")


class TwoTowerRecommender(WeightsInput, Recommender):
    """History-encoder listener tower x item tower, trained with a sampled softmax."""

    kind = "two_tower"
    fidelity_param: ClassVar[str | None] = "epochs"
    can_fold_in: ClassVar[bool] = True

    @classmethod
    def search_space(cls, space: SearchSpace) -> None:
        space.choice("dim", [32, 64, 128])
        space.choice("hidden", [128, 256, 512])
        space.integer("epochs", 5, 40)
        space.real("learning_rate", 1e-3, 3e-2, log=True)
        space.real("dropout", 0.0, 0.6)
        space.choice("weighting", ["none", "log1p"])
        space.seed()

    @classmethod
    def estimate_seconds(cls, params: Mapping[str, Any], train: sp.csr_matrix) -> float:
        batch = int(params.get("batch_size", 512))
        width = int(params.get("hidden", 256)) + int(params.get("dim", 64))
        # Measured on HetRec protocol A (2 busy cores): ~1.3e-4 s per pair at width 320, batch 512.
        per_pair = 3e-7 * width + 1e-7 * batch
        return int(params.get("epochs", 20)) * int(train.nnz) * per_pair + 1

    @classmethod
    def smallest_params(cls) -> dict[str, Any]:
        return {"epochs": 5, "hidden": 128, "dim": 32}

    def __init__(
        self,
        dim: int = 64,
        hidden: int = 256,
        epochs: int = 20,
        batch_size: int = 512,
        learning_rate: float = 0.005,
        dropout: float = 0.3,
        seed: int = 0,
        threads: int = 0,
        weighting: str = "log1p",
        alpha: float = 1.0,
        trainer: str = "local",
        workers: int = 2,
        max_failures: int = 2,
    ) -> None:
        _check_ranges(dim, hidden, epochs, batch_size, learning_rate, dropout)
        if trainer not in TRAINERS:
            raise ConfigError(
                f"trainer must be one of {TRAINERS}, got {trainer!r}", field="trainer"
            )
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}", field="workers")
        self.trainer = str(trainer)
        self.workers = int(workers)
        self.max_failures = int(max_failures)
        self.dim = int(dim)
        self.hidden = int(hidden)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.dropout = float(dropout)
        self.seed = int(seed)
        self.threads = int(threads)
        self._init_weighting(weighting, alpha)
        self.params_: dict[str, FloatArray] | None = None
        self.losses_: list[float] = []
        self._onnx: Any = None  # an onnxruntime session once use_runtime("onnx")

    def get_params(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "hidden": self.hidden,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "dropout": self.dropout,
            "seed": self.seed,
            "threads": self.threads,
            **self._weighting_params(),
            "trainer": self.trainer,
            "workers": self.workers,
            "max_failures": self.max_failures,
        }

    @classmethod
    def defaults(cls, settings: Settings) -> dict[str, Any]:
        """The seed, and where to train (``SETLIST_TWO_TOWER_TRAINER``, workers, failures)."""
        return {
            "seed": settings.seed,
            "trainer": settings.two_tower_trainer,
            "workers": settings.two_tower_workers,
            "max_failures": settings.two_tower_max_failures,
        }

    def fit(self, user_items: sp.csr_matrix, item_features: sp.csr_matrix | None = None) -> Self:
        """Train on raw counts; ``item_features`` (items x features, e.g. artist tags or a
        track's artist) adds a feature bag to the item tower when given. With ``trainer="ray"``
        the fit runs on Ray Train (:mod:`setlist.models.two_tower_ray`, settings from the
        environment, the cluster at ``SETLIST_RAY_ADDRESS`` where set)."""
        import torch

        if self.trainer == "ray":
            from setlist.config import get_settings
            from setlist.models.two_tower_ray import train_on_ray

            settings = get_settings()
            train_on_ray(
                self,
                user_items,
                settings,
                item_features=item_features,
                workers=self.workers,
                max_failures=self.max_failures,
                address=settings.ray_address,  # SETLIST_RAY_ADDRESS: a cluster, else local
            )
            return self

        from setlist.models.two_tower_net import (
            TrainingData,
            build_net,
            export_arrays,
            optimisers,
            run_epoch,
        )

        data = TrainingData.build(self.input_.fit(user_items), _checked(item_features, user_items))
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads or 1)  # small batches: one thread beats a busy pool
        try:
            net = build_net(user_items.shape[1], data.n_features, self.hidden, self.dim, self.seed)
            opts = optimisers(net, self.learning_rate)
            self.losses_ = [
                run_epoch(net, opts, data, e, self.seed, self.batch_size, self.dropout)
                for e in range(self.epochs)
            ]
            self.set_arrays(export_arrays(net, data), user_items)
        finally:
            torch.set_num_threads(before)
        return self

    def set_arrays(self, arrays: Mapping[str, FloatArray], user_items: sp.csr_matrix) -> None:
        """Take trained tower arrays (from either trainer) and the training listeners' vectors."""
        self.params_ = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        self.params_.pop("user_vectors", None)
        self.params_["user_vectors"] = self.fold_in(user_items)

    def _weights(self) -> dict[str, FloatArray]:
        if self.params_ is None:
            raise ModelError("TwoTowerRecommender is not fitted; call fit() first")
        return self.params_

    @property
    def n_items_(self) -> int:
        return int(self._weights()["item_bias"].shape[0])

    # --- serving: numpy, or onnxruntime when configured --------------------------------------

    def fold_in(self, user_items: sp.csr_matrix) -> FloatArray:
        """The listener tower: raw counts -> ``[vector, 1]`` per row (see :meth:`vectors`)."""
        x = _normalised(self.input_.transform(user_items))
        if self._onnx is not None:
            users = np.vstack([self._onnx_row(x, r) for r in range(x.shape[0])])
        else:
            users = self._tower(x)
        return np.hstack([users, np.ones((len(users), 1), np.float32)])

    def _tower(self, x: sp.csr_matrix) -> FloatArray:
        p = self._weights()
        hidden = np.tanh(np.asarray(x @ p["w_in"], dtype=np.float32) + p["b_in"])
        return np.asarray(hidden @ p["w_out"].T + p["b_out"], dtype=np.float32)

    def _onnx_row(self, x: sp.csr_matrix, row: int) -> FloatArray:
        lo, hi = x.indptr[row], x.indptr[row + 1]
        if lo == hi:  # the graph takes at least one heard item
            return self._tower(x[row])
        feeds = {
            "items": x.indices[lo:hi].astype(np.int64),
            "weights": x.data[lo:hi].astype(np.float32),
        }
        (vector,) = self._onnx.run(["user_vector"], feeds)
        return np.asarray(vector[:, :-1], dtype=np.float32)  # fold_in appends the 1

    def vectors(self) -> tuple[FloatArray, FloatArray] | None:
        """``[listener, 1]`` and ``[item, bias]``: their dot product is the score."""
        if self.params_ is None:
            return None
        p = self.params_
        return p["user_vectors"], np.hstack([p["item_embeddings"], p["item_bias"][:, None]])

    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        return self.score_histories(user_items)

    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        p = self._weights()
        items = np.hstack([p["item_embeddings"], p["item_bias"][:, None]])
        return np.asarray(self.fold_in(user_items) @ items.T, dtype=np.float32)

    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        items = self._weights()["item_embeddings"]
        normed = items / np.maximum(np.linalg.norm(items, axis=1), 1e-12)[:, None]
        rows = np.asarray(item_rows, dtype=np.int64)
        block = (normed[rows] @ normed.T).astype(np.float32)
        block[np.arange(len(rows)), rows] = -np.inf
        return top_k(block, k)

    def use_runtime(self, runtime: str) -> None:
        """Fold listeners in with numpy (default) or onnxruntime over the exported graph."""
        if runtime not in RUNTIMES:
            raise ConfigError(
                f"runtime must be one of {RUNTIMES}, got {runtime!r}", field="runtime"
            )
        if runtime == "numpy":
            self._onnx = None
            return
        import onnxruntime as ort

        proto = self._onnx_program().model_proto.SerializeToString()
        self._onnx = ort.InferenceSession(proto, providers=["CPUExecutionProvider"])

    # --- export ---------------------------------------------------------------------------------

    def torch_module(self) -> torch.nn.Module:
        """The listener tower for one listener: (item rows, normalised weights) -> [vector, 1]."""
        import torch

        p = {
            k: torch.from_numpy(v.copy()) for k, v in self._weights().items() if k != "user_vectors"
        }

        class ListenerTower(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.w_in = torch.nn.Parameter(p["w_in"], requires_grad=False)
                self.b_in = torch.nn.Parameter(p["b_in"], requires_grad=False)
                self.w_out = torch.nn.Parameter(p["w_out"], requires_grad=False)
                self.b_out = torch.nn.Parameter(p["b_out"], requires_grad=False)

            def forward(self, items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
                bag = (self.w_in[items] * weights[:, None]).sum(dim=0, keepdim=True)
                hidden = torch.tanh(bag + self.b_in)
                vector = hidden @ self.w_out.T + self.b_out
                return torch.cat([vector, torch.ones_like(vector[:, :1])], dim=1)

        return ListenerTower().eval()

    def model_input(self, user_items: sp.csr_matrix) -> tuple[IntArray, FloatArray]:
        """What the exported tower takes for one listener (a 1-row history): heard item rows
        and their weighted, L2-normalised confidences."""
        x = _normalised(self.input_.transform(user_items[:1]))
        return x.indices.astype(np.int64), x.data.astype(np.float32)

    def _example(self) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        n = min(3, self.n_items_)
        return torch.arange(n, dtype=torch.int64), torch.full((n,), 1.0 / np.sqrt(n))

    def _onnx_program(self) -> Any:
        import torch

        heard = torch.export.Dim("heard", min=1)
        program = torch.onnx.export(
            self.torch_module(),
            self._example(),
            input_names=["items", "weights"],
            output_names=["user_vector"],
            dynamic_shapes=({0: heard}, {0: heard}),
            dynamo=True,
            verbose=False,
        )
        if program is None:
            raise ModelError("torch.onnx.export returned no program")
        return program

    def export_onnx(self, path: Path) -> Path:
        """Write the listener tower as ONNX: inputs ``items`` [n] int64 and ``weights`` [n]
        (see :meth:`model_input`), output ``user_vector`` [1, dim + 1]."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._onnx_program().save(str(path))
        return path

    def export_torchscript(self, path: Path) -> Path:
        """Write the listener tower as TorchScript (same inputs and output as the ONNX graph)."""
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        traced = torch.jit.trace(self.torch_module(), self._example())  # type: ignore[no-untyped-call]
        traced.save(str(path))
        return path

    def export(self, folder: Path) -> dict[str, float]:
        """Both exports into ``folder`` (``listener_tower.onnx`` and ``.pt``), timed."""
        seconds = {}
        for name, write in (("onnx", self.export_onnx), ("pt", self.export_torchscript)):
            started = time.perf_counter()
            write(folder / f"listener_tower.{name}")
            seconds[name] = time.perf_counter() - started
        return seconds

    # --- artifact -------------------------------------------------------------------------------

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {**self._weights(), **self.input_.state()}

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        p = {name: arrays[name].astype(np.float32) for name in _PARAMS}
        n = p["item_bias"].shape[0]
        expected = {
            "w_in": (n, self.hidden),
            "b_in": (self.hidden,),
            "w_out": (self.dim, self.hidden),
            "b_out": (self.dim,),
            "item_embeddings": (n, self.dim),
        }
        for name, shape in expected.items():
            if p[name].shape != shape:
                raise ArtifactError(f"{name} has shape {p[name].shape}, expected {shape}")
        if p["user_vectors"].ndim != 2 or p["user_vectors"].shape[1] != self.dim + 1:
            raise ArtifactError(f"user_vectors has shape {p['user_vectors'].shape}")
        self.params_ = p
        self.input_.set_state(arrays)


def _checked(features: sp.csr_matrix | None, user_items: sp.csr_matrix) -> sp.csr_matrix | None:
    if features is not None and features.shape[0] != user_items.shape[1]:
        raise ModelError(
            f"item_features has {features.shape[0]} rows for {user_items.shape[1]} items"
        )
    return features


def _check_ranges(
    dim: int, hidden: int, epochs: int, batch_size: int, learning_rate: float, dropout: float
) -> None:
    checks = [
        ("dim", dim, 1 <= dim <= 4096, "[1, 4096]"),
        ("hidden", hidden, 1 <= hidden <= 16384, "[1, 16384]"),
        ("epochs", epochs, 1 <= epochs <= 10_000, "[1, 10000]"),
        ("batch_size", batch_size, 2 <= batch_size <= 1_000_000, "[2, 1000000]"),
        ("learning_rate", learning_rate, learning_rate > 0, "> 0"),
        ("dropout", dropout, 0 <= dropout < 1, "[0, 1)"),
    ]
    for name, value, ok, accepted in checks:
        if not ok:
            raise ConfigError(f"{name} must be in {accepted}, got {value}", field=name)


def _normalised(x: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ x, dtype=np.float32)
