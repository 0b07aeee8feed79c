"""A two-tower model in PyTorch (CPU): a listener tower over the history, an item tower over ids.

- listener tower: the weighted history, L2-normalised, through ``tanh(x W_in + b_in) W_out +
  b_out`` (a bag-of-items encoder, as in YouTube's candidate generator), so a listener the model
  never saw is folded in exactly: the tower only needs their history;
- item tower: an embedding and a bias per item;
- score: the dot product of the two, plus the item bias.

Training is a denoising objective over the full catalogue (Mult-DAE, Liang et al. 2018): each
batch hides a random ``dropout`` share of every history and the multinomial log-likelihood of the
whole history under the softmax of the scores is maximised, with Adam. The catalogue-wide softmax
is exact, not sampled, which is affordable up to tens of thousands of items on a CPU.

Scoring needs no PyTorch: the learned arrays are saved as ``.npz`` and the forward pass is numpy.
:meth:`TwoTowerRecommender.export_onnx` writes the same forward pass as an ONNX graph (history in,
scores out) for onnxruntime; a test checks its scores against PyTorch's within 1e-5.
"""

from __future__ import annotations

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

    from setlist.models.space import SearchSpace

_PARAMS = ("w_in", "b_in", "w_out", "b_out", "item_embeddings", "item_bias")


class TwoTowerRecommender(WeightsInput, Recommender):
    """History-encoder listener tower x item-embedding tower, trained with a full softmax."""

    kind = "two_tower"
    fidelity_param: ClassVar[str | None] = "epochs"

    @classmethod
    def search_space(cls, space: SearchSpace) -> None:
        space.choice("dim", [32, 64, 128])
        space.choice("hidden", [128, 256, 512])
        space.integer("epochs", 10, 60)
        space.real("learning_rate", 1e-3, 1e-2, log=True)
        space.real("dropout", 0.2, 0.7)
        space.choice("weighting", ["none", "log1p"])
        space.seed()

    @classmethod
    def estimate_seconds(cls, params: Mapping[str, Any], train: sp.csr_matrix) -> float:
        steps = int(params.get("epochs", 30)) * int(train.shape[0])
        width = int(params.get("hidden", 256)) + int(params.get("dim", 64))
        return 6e-10 * steps * int(train.shape[1]) * width + 1

    @classmethod
    def smallest_params(cls) -> dict[str, Any]:
        return {"epochs": 10, "hidden": 128, "dim": 32}

    def __init__(
        self,
        dim: int = 64,
        hidden: int = 256,
        epochs: int = 30,
        batch_size: int = 256,
        learning_rate: float = 0.003,
        weight_decay: float = 0.0,
        dropout: float = 0.5,
        seed: int = 0,
        threads: int = 0,
        weighting: str = "log1p",
        alpha: float = 1.0,
    ) -> None:
        _check_ranges(dim, hidden, epochs, batch_size, learning_rate, weight_decay, dropout)
        self.dim = int(dim)
        self.hidden = int(hidden)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.dropout = float(dropout)
        self.seed = int(seed)
        self.threads = int(threads)
        self._init_weighting(weighting, alpha)
        self.params_: dict[str, FloatArray] | None = None

    def get_params(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "hidden": self.hidden,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "dropout": self.dropout,
            "seed": self.seed,
            "threads": self.threads,
            **self._weighting_params(),
        }

    def fit(self, user_items: sp.csr_matrix) -> Self:
        import torch

        x = _normalised(self.input_.fit(user_items))
        before = torch.get_num_threads()
        # Small networks run faster on one thread than on a pool fighting for busy cores.
        small = x.shape[1] * self.hidden < 2_000_000
        torch.set_num_threads(self.threads or (1 if small else before))
        try:
            self.params_ = self._train(x)
        finally:
            torch.set_num_threads(before)
        return self

    def _train(self, x: sp.csr_matrix) -> dict[str, FloatArray]:
        import torch

        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        net = _build_net(x.shape[1], self.hidden, self.dim)
        optimiser = torch.optim.Adam(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        rows = np.flatnonzero(np.diff(x.indptr))  # listeners with a history
        for _ in range(self.epochs):
            order = rows[torch.randperm(len(rows), generator=generator).numpy()]
            for start in range(0, len(order), self.batch_size):
                batch = torch.from_numpy(x[order[start : start + self.batch_size]].toarray())
                optimiser.zero_grad()
                loss = _loss(net, batch, self.dropout, generator)
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
        return {
            name: tensor.detach().numpy().astype(np.float32).copy()
            for name, tensor in net.named_parameters()
        }

    def _weights(self) -> dict[str, FloatArray]:
        if self.params_ is None:
            raise ModelError("TwoTowerRecommender is not fitted; call fit() first")
        return self.params_

    @property
    def n_items_(self) -> int:
        return int(self._weights()["item_bias"].shape[0])

    def user_vectors(self, user_items: sp.csr_matrix) -> FloatArray:
        """The listener tower, in numpy: raw counts -> one vector per row."""
        p = self._weights()
        x = _normalised(self.input_.transform(user_items))
        hidden = np.tanh(np.asarray(x @ p["w_in"].T, dtype=np.float32) + p["b_in"])
        return np.asarray(hidden @ p["w_out"].T + p["b_out"], dtype=np.float32)

    def score(self, user_rows: IntArray, user_items: sp.csr_matrix) -> FloatArray:
        return self.score_histories(user_items)

    def score_histories(self, user_items: sp.csr_matrix) -> FloatArray:
        p = self._weights()
        scores = self.user_vectors(user_items) @ p["item_embeddings"].T + p["item_bias"]
        return np.asarray(scores, dtype=np.float32)

    def similar_items(self, item_rows: IntArray, k: int = 10) -> tuple[IntArray, FloatArray]:
        items = self._weights()["item_embeddings"]
        normed = items / np.maximum(np.linalg.norm(items, axis=1), 1e-12)[:, None]
        rows = np.asarray(item_rows, dtype=np.int64)
        block = (normed[rows] @ normed.T).astype(np.float32)
        block[np.arange(len(rows)), rows] = -np.inf
        return top_k(block, k)

    def torch_module(self) -> torch.nn.Module:
        """The scoring network (normalised weighted history -> scores) as a torch module."""
        import torch

        net = _build_net(self.n_items_, self.hidden, self.dim)
        with torch.no_grad():
            for name, tensor in net.named_parameters():
                tensor.copy_(torch.from_numpy(self._weights()[name]))
        net.eval()
        return net

    def model_input(self, user_items: sp.csr_matrix) -> FloatArray:
        """What the torch module and the ONNX graph take: the weighted, normalised history."""
        return np.asarray(_normalised(self.input_.transform(user_items)).toarray(), np.float32)

    def export_onnx(self, path: Path) -> Path:
        """Write the scoring network as ONNX: input ``history`` [batch, n_items] (see
        :meth:`model_input`), output ``scores`` [batch, n_items]."""
        import torch

        net = self.torch_module()
        example = torch.zeros((2, self.n_items_), dtype=torch.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(
            net,
            (example,),
            input_names=["history"],
            output_names=["scores"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            verbose=False,
        )
        if program is None:
            raise ModelError("torch.onnx.export returned no program")
        program.save(str(path))
        return path

    def _state(self) -> dict[str, npt.NDArray[Any]]:
        return {**self._weights(), **self.input_.state()}

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        p = {name: arrays[name].astype(np.float32) for name in _PARAMS}
        n = p["item_bias"].shape[0]
        expected = {
            "w_in": (self.hidden, n),
            "b_in": (self.hidden,),
            "w_out": (self.dim, self.hidden),
            "b_out": (self.dim,),
            "item_embeddings": (n, self.dim),
        }
        for name, shape in expected.items():
            if p[name].shape != shape:
                raise ArtifactError(f"{name} has shape {p[name].shape}, expected {shape}")
        self.params_ = p
        self.input_.set_state(arrays)


def _check_ranges(
    dim: int,
    hidden: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    dropout: float,
) -> None:
    checks = [
        ("dim", dim, 1 <= dim <= 4096, "[1, 4096]"),
        ("hidden", hidden, 1 <= hidden <= 16384, "[1, 16384]"),
        ("epochs", epochs, 1 <= epochs <= 10_000, "[1, 10000]"),
        ("batch_size", batch_size, 1 <= batch_size <= 1_000_000, "[1, 1000000]"),
        ("learning_rate", learning_rate, learning_rate > 0, "> 0"),
        ("weight_decay", weight_decay, weight_decay >= 0, ">= 0"),
        ("dropout", dropout, 0 <= dropout < 1, "[0, 1)"),
    ]
    for name, value, ok, accepted in checks:
        if not ok:
            raise ConfigError(f"{name} must be in {accepted}, got {value}", field=name)


def _normalised(x: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ x, dtype=np.float32)


def _build_net(n_items: int, hidden: int, dim: int) -> torch.nn.Module:
    import torch

    class TwoTowerNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            scale = 1.0 / np.sqrt(dim)
            self.w_in = torch.nn.Parameter(torch.randn(hidden, n_items) * 0.01)
            self.b_in = torch.nn.Parameter(torch.zeros(hidden))
            self.w_out = torch.nn.Parameter(torch.randn(dim, hidden) / np.sqrt(hidden))
            self.b_out = torch.nn.Parameter(torch.zeros(dim))
            self.item_embeddings = torch.nn.Parameter(torch.randn(n_items, dim) * scale)
            self.item_bias = torch.nn.Parameter(torch.zeros(n_items))

        def forward(self, history: torch.Tensor) -> torch.Tensor:
            hidden_ = torch.tanh(history @ self.w_in.T + self.b_in)
            users = hidden_ @ self.w_out.T + self.b_out
            return users @ self.item_embeddings.T + self.item_bias

    return TwoTowerNet()


def _loss(
    net: torch.nn.Module, batch: torch.Tensor, dropout: float, generator: torch.Generator
) -> torch.Tensor:
    """Multinomial log-likelihood of the whole history, given a randomly thinned one."""
    import torch

    keep = (torch.rand(batch.shape, generator=generator) >= dropout).float()
    thinned = batch * keep / max(1.0 - dropout, 1e-6)
    logits = net(thinned)
    target = (batch > 0).float()
    log_probs = torch.log_softmax(logits, dim=1)
    per_user = -(log_probs * target).sum(dim=1) / target.sum(dim=1).clamp(min=1.0)
    return per_user.mean()
