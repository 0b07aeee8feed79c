"""The two-tower network and one training epoch of it, shared by the local and the Ray trainer.

- listener tower: a weighted bag of the heard items (``EmbeddingBag``, sparse gradients),
  L2-normalised weights, ``tanh`` then a linear layer to ``dim`` (YouTube's candidate generator);
- item tower: an id embedding plus, when given, the mean of the item's feature embeddings
  (artist tags, a track's artist), and a bias;
- loss: sampled softmax over in-batch negatives with the logQ correction (Yi et al. 2019): every
  (listener, heard item) pair is a positive whose input history leaves that item out, the other
  positives of the batch are its negatives, and each column's logit is lowered by the log of its
  sampling probability, so popular items are not over-penalised for being frequent negatives.

Every epoch draws its order and dropout from ``seed + epoch`` alone, so a run resumed from a
checkpoint after epoch ``e`` repeats exactly what an uninterrupted run does from ``e + 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TrainingData:
    """What one epoch reads: the weighted histories, the positives, their log sampling
    probabilities and the optional item-feature matrix (items x features, any weights)."""

    histories: sp.csr_matrix
    users: IntArray
    items: IntArray
    log_q: FloatArray
    features: sp.csr_matrix | None

    @classmethod
    def build(cls, histories: sp.csr_matrix, features: sp.csr_matrix | None) -> TrainingData:
        coo = histories.tocoo()
        counts = np.bincount(coo.col, minlength=histories.shape[1]).astype(np.float64)
        log_q = np.log(np.maximum(counts, 1.0) / max(float(counts.sum()), 1.0))
        if features is not None:
            features = sp.csr_matrix(features, dtype=np.float32)
            features.data[:] = 1.0  # a bag of features: presence, averaged by the tower
        return cls(
            sp.csr_matrix(histories, dtype=np.float32),
            coo.row.astype(np.int64),
            coo.col.astype(np.int64),
            log_q.astype(np.float32),
            features,
        )

    @property
    def n_features(self) -> int:
        return 0 if self.features is None else int(self.features.shape[1])


def build_net(n_items: int, n_features: int, hidden: int, dim: int, seed: int) -> torch.nn.Module:
    """A freshly initialised network (the same weights for the same seed)."""
    import torch

    class TwoTowerNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.history = torch.nn.EmbeddingBag(n_items, hidden, mode="sum", sparse=True)
            self.b_in = torch.nn.Parameter(torch.zeros(hidden))
            self.out = torch.nn.Linear(hidden, dim)
            self.items = torch.nn.Embedding(n_items, dim, sparse=True)
            self.bias = torch.nn.Embedding(n_items, 1, sparse=True)
            self.features = (
                torch.nn.EmbeddingBag(n_features, dim, mode="mean", sparse=True)
                if n_features
                else None
            )
            with torch.no_grad():
                self.history.weight.normal_(0.0, 0.1)
                self.items.weight.normal_(0.0, 1.0 / np.sqrt(dim))
                self.bias.weight.zero_()
                if self.features is not None:
                    self.features.weight.normal_(0.0, 1.0 / np.sqrt(dim))

        def listeners(
            self, index: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
        ) -> torch.Tensor:
            bag = self.history(index, offsets, per_sample_weights=weights)
            return self.out(torch.tanh(bag + self.b_in))  # type: ignore[no-any-return]

        def item_vectors(
            self, rows: torch.Tensor, f_index: torch.Tensor, f_offsets: torch.Tensor
        ) -> torch.Tensor:
            vectors = self.items(rows)
            if self.features is not None:
                vectors = vectors + self.features(f_index, f_offsets)
            return vectors  # type: ignore[no-any-return]

        def forward(self, *batch: torch.Tensor) -> torch.Tensor:
            """The batch's sampled-softmax loss (see the module docstring)."""
            index, offsets, weights, rows, f_index, f_offsets, log_q = batch
            users = self.listeners(index, offsets, weights)
            items = self.item_vectors(rows, f_index, f_offsets)
            logits = users @ items.T + (self.bias(rows).squeeze(1) - log_q)[None, :]
            # Another positive of the same item is no negative: mask it out.
            same = rows[None, :] == rows[:, None]
            same.fill_diagonal_(False)
            logits = logits.masked_fill(same, float("-inf"))
            target = torch.arange(len(rows))
            return torch.nn.functional.cross_entropy(logits, target)

    torch.manual_seed(seed)
    return TwoTowerNet()


def optimisers(net: torch.nn.Module, learning_rate: float) -> list[torch.optim.Optimizer]:
    """SparseAdam for the embedding tables (only touched rows move), Adam for the rest."""
    import torch

    sparse, dense = [], []
    for module in net.modules():
        if isinstance(module, torch.nn.Embedding | torch.nn.EmbeddingBag):
            sparse.append(module.weight)
    ids = {id(p) for p in sparse}
    dense = [p for p in net.parameters() if id(p) not in ids]
    return [
        torch.optim.SparseAdam(sparse, lr=learning_rate),
        torch.optim.Adam(dense, lr=learning_rate),
    ]


def bags(
    matrix: sp.csr_matrix, rows: IntArray, drop: IntArray | None = None
) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
    """Flat (indices, offsets, weights, bag of each entry) of ``matrix[rows]``, leaving out
    ``drop[b]`` from bag ``b`` when given."""
    sub = matrix[rows]
    lengths = np.diff(sub.indptr)
    owner = np.repeat(np.arange(len(rows)), lengths)
    keep = np.ones(len(sub.indices), dtype=bool)
    if drop is not None:
        keep &= sub.indices != drop[owner]
    index, weights, owner = sub.indices[keep], sub.data[keep], owner[keep]
    offsets = np.zeros(len(rows), dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(owner, minlength=len(rows)))[:-1]
    return index.astype(np.int64), offsets, weights.astype(np.float32), owner


def listener_batch(
    histories: sp.csr_matrix,
    users: IntArray,
    positives: IntArray,
    dropout: float,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Inputs of the listener tower: each history without its positive, thinned by
    ``dropout``, its weights L2-normalised (as :func:`normalised_bags` does at serving time)."""
    index, _, weights, owner = bags(histories, users, positives)
    if dropout > 0:
        kept = rng.random(len(index)) >= dropout
        index, weights, owner = index[kept], weights[kept], owner[kept]
    norms = np.sqrt(
        np.bincount(owner, weights=weights.astype(np.float64) ** 2, minlength=len(users))
    )
    weights = (weights / np.maximum(norms[owner], 1e-12)).astype(np.float32)
    offsets = np.zeros(len(users), dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(owner, minlength=len(users)))[:-1]
    return index, offsets, weights


def run_epoch(
    net: torch.nn.Module,
    opts: list[torch.optim.Optimizer],
    data: TrainingData,
    epoch: int,
    seed: int,
    batch_size: int,
    dropout: float,
    ranks: Sequence[int] = (0,),
    world: int = 1,
) -> float:
    """One pass over every positive, split over ``world`` data-parallel workers; the mean of
    rank ``ranks[0]``'s loss.

    Under Ray Train each worker passes its own rank (DistributedDataParallel averages the
    gradients); passing every rank in one process averages the ranks' losses instead, which is
    the same update: an in-process reference for the distributed run.
    """
    import torch

    order = np.random.default_rng([seed, epoch]).permutation(len(data.users))
    shares = [order[rank::world] for rank in ranks]
    rngs = [np.random.default_rng([seed, epoch, rank]) for rank in ranks]
    # Every worker must take the same number of steps (data-parallel all-reduce per step).
    per_worker = len(order) // world
    steps = per_worker // batch_size + (1 if per_worker % batch_size else 0)
    total = 0.0
    for step in range(steps):
        for opt in opts:
            opt.zero_grad()
        losses = [
            net(*_batch(data, share, step, batch_size, dropout, rng))
            for share, rng in zip(shares, rngs, strict=True)
        ]
        loss = torch.stack(losses).mean() if len(losses) > 1 else losses[0]
        loss.backward()
        for opt in opts:
            opt.step()
        total += float(losses[0].detach())
    return total / max(steps, 1)


def _batch(
    data: TrainingData,
    share: IntArray,
    step: int,
    batch_size: int,
    dropout: float,
    rng: np.random.Generator,
) -> list[torch.Tensor]:
    import torch

    picked = share[step * batch_size : (step + 1) * batch_size]
    if len(picked) == 0:
        picked = share[:1]
    users, positives = data.users[picked], data.items[picked]
    index, offsets, weights = listener_batch(data.histories, users, positives, dropout, rng)
    if data.features is not None:
        f_index, f_offsets, _, _ = bags(data.features, positives)
    else:
        f_index, f_offsets = np.zeros(0, np.int64), np.zeros(len(positives), np.int64)
    arrays = (index, offsets, weights, positives, f_index, f_offsets, data.log_q[positives])
    return [torch.from_numpy(a) for a in arrays]


def export_arrays(net: torch.nn.Module, data: TrainingData) -> dict[str, FloatArray]:
    """The learned arrays numpy serves from: the listener tower's weights, each item's final
    vector (id embedding plus its features) and bias."""
    import torch

    inner: Any = getattr(net, "module", net)  # unwrap DistributedDataParallel
    n_items = inner.items.weight.shape[0]
    rows = np.arange(n_items, dtype=np.int64)
    with torch.no_grad():
        if data.features is not None:
            f_index, f_offsets, _, _ = bags(data.features, rows)
        else:
            f_index, f_offsets = np.zeros(0, np.int64), np.zeros(n_items, np.int64)
        items = inner.item_vectors(
            torch.from_numpy(rows), torch.from_numpy(f_index), torch.from_numpy(f_offsets)
        )
        arrays = {
            "w_in": inner.history.weight,
            "b_in": inner.b_in,
            "w_out": inner.out.weight,
            "b_out": inner.out.bias,
            "item_embeddings": items,
            "item_bias": inner.bias.weight[:, 0],
        }
        return {k: v.detach().numpy().astype(np.float32).copy() for k, v in arrays.items()}
