"""The serving policy: which k of the ranked items a listener is shown, and with what probability.

Counterfactual evaluation (``setlist.evaluate.counterfactual``) needs, for every item shown, the
probability that the policy would show it to that listener (its *propensity*: here the
probability that the item is in the answer at all). Modes (``SETLIST_EXPLORE_MODE``):

- ``none``: the top k, deterministic; every item's propensity is 1.
- ``epsilon``: with probability ``1 - epsilon`` the top k; otherwise k items drawn uniformly,
  without replacement, from the top ``pool`` (shown in rank order). Exact propensity of an item
  at rank r: ``(1 - epsilon) * [r < k] + epsilon * k / pool``.
- ``plackett_luce``: k items drawn without replacement with probability proportional to
  ``exp(z / temperature)``, z the scores standardised over the pool (Gumbel top-k), shown in the
  order drawn. The inclusion probability has no closed form: it is estimated from
  :data:`PL_DRAWS` further draws, Rao-Blackwellised (each draw contributes the exact
  probability that the item beats the k-th best of the others), so even rarely shown items
  get a smooth, unbiased estimate; a small Monte-Carlo error remains.

Items outside the pool are never shown, so a candidate whose picks fall outside the logging
policy's pool cannot be evaluated from its logs (no support).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from setlist.config import ExploreConfig
from setlist.errors import ConfigError

PL_DRAWS = 500  # about 1 ms for a pool of 50
T = TypeVar("T")
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Slate(Generic[T]):
    """The items to show, in order, each with its propensity."""

    items: list[T]
    propensities: list[float]


def epsilon_slate(
    n_pool: int, k: int, epsilon: float, rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    """Pool ranks to show and their exact inclusion probabilities (see the module docstring)."""
    if n_pool <= k:
        return np.arange(n_pool, dtype=np.int64), np.ones(n_pool)
    if rng.random() < epsilon:
        ranks = np.sort(rng.choice(n_pool, size=k, replace=False)).astype(np.int64)
    else:
        ranks = np.arange(k, dtype=np.int64)
    return ranks, epsilon_propensity(ranks, n_pool, k, epsilon)


def epsilon_propensity(ranks: IntArray, n_pool: int, k: int, epsilon: float) -> FloatArray:
    if n_pool <= k:
        return np.ones(len(ranks))
    return np.asarray((1.0 - epsilon) * (ranks < k) + epsilon * k / n_pool, dtype=np.float64)


def plackett_luce_slate(
    scores: npt.ArrayLike, k: int, temperature: float, rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    """Pool ranks drawn by Plackett-Luce (Gumbel top-k) and their estimated inclusion odds."""
    logits = standardised(np.asarray(scores, dtype=np.float64)) / temperature
    n = len(logits)
    if n <= k:
        return np.arange(n, dtype=np.int64), np.ones(n)
    drawn = np.argsort(-(logits + gumbel(rng, n)))[:k].astype(np.int64)
    return drawn, plackett_luce_inclusion(logits, k, rng)[drawn]


def plackett_luce_inclusion(
    logits: FloatArray, k: int, rng: np.random.Generator, draws: int = PL_DRAWS
) -> FloatArray:
    """Monte-Carlo estimate of each item's probability to be among the k drawn (n > k)."""
    n = len(logits)
    noisy = logits[None, :] + gumbel(rng, (draws, n))
    part = np.partition(noisy, (n - k - 1, n - k), axis=1)
    kth, next_ = part[:, n - k : n - k + 1], part[:, n - k - 1 : n - k]
    # Rao-Blackwellised: given the others' draws, item i is in the top k when its own Gumbel
    # beats the k-th largest of the others, which has probability 1 - exp(-exp(l_i - that)).
    others_kth = np.where(noisy >= kth, next_, kth)
    inclusion = -np.expm1(-np.exp(logits[None, :] - others_kth))
    return np.asarray(inclusion.mean(axis=0), dtype=np.float64)


def gumbel(rng: np.random.Generator, size: int | tuple[int, int]) -> FloatArray:
    """Standard Gumbel noise as -log(Exp(1)): several times faster than ``rng.gumbel``."""
    return np.asarray(-np.log(rng.standard_exponential(size)), dtype=np.float64)


def standardised(scores: FloatArray) -> FloatArray:
    """Scores on one scale whatever the model (zero mean, unit spread over the pool)."""
    spread = float(scores.std())
    centred = scores - float(scores.mean())
    return centred / spread if spread > 1e-12 else np.zeros_like(scores)


class ExplorationPolicy:
    """Chooses the slate from a ranked list; thread-safe (one locked generator)."""

    def __init__(self, config: ExploreConfig, seed: int | None = None) -> None:
        if config.mode not in ("none", "epsilon", "plackett_luce"):
            raise ConfigError(f"unknown explore mode {config.mode!r}", field="explore_mode")
        if not 0.0 <= config.epsilon <= 1.0 or config.temperature <= 0 or config.pool < 1:
            raise ConfigError("explore needs 0 <= epsilon <= 1, temperature > 0 and pool >= 1")
        self.config = config
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.config.mode != "none"

    def pool_size(self, k: int) -> int:
        """How many ranked items to ask the model for, to answer with k."""
        return max(k, self.config.pool) if self.active else k

    def choose(self, ranked: Sequence[T], scores: Sequence[float], k: int) -> Slate[T]:
        """The slate of (at most) k items out of ``ranked`` (best first) with propensities."""
        pool = list(ranked[: self.pool_size(k)])
        if not self.active or len(pool) <= k:
            return Slate(pool[:k], [1.0] * min(k, len(pool)))
        with self._lock:
            if self.config.mode == "epsilon":
                ranks, props = epsilon_slate(len(pool), k, self.config.epsilon, self._rng)
            else:
                ranks, props = plackett_luce_slate(
                    scores[: len(pool)], k, self.config.temperature, self._rng
                )
        return Slate([pool[r] for r in ranks.tolist()], [float(p) for p in props.tolist()])
