"""Taste buddies of a listener or of a new listener's seed artists, named for the API.

Through the bundle's listener index (:mod:`setlist.index.listeners`: SVD-reduced taste vectors
in faiss, candidates re-ranked by the exact hub-corrected pairing) where the bundle has one;
otherwise (a bundle built before it, or with ``listeners_dims`` 0) by the exact pairing over
every listener (:mod:`setlist.index.buddies`), its vectors computed once, on first use.

- a trained listener never gets themself; a listener the training filter dropped (kept in the
  bundle with their history) asks with that history; anyone else is a 404 naming the user;
- seed artists (ids or case-insensitive names, as onboarding takes them) count as one listen
  each; the unknown ones are returned, and when none is known the answer is a 422 naming
  ``seeds``;
- ``shared``: the artists both love most; ``discoveries``: what the buddy loves most that the
  listener has not heard.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.bundle import ModelBundle
from setlist.errors import NotFoundError
from setlist.index.buddies import (
    describe_block,
    hubness,
    idf_weights,
    nearest_block,
    weigh,
)
from setlist.serve.answer.labels import artist_labels, strings


@dataclass(frozen=True)
class NamedBuddy:
    user_id: str
    similarity: float
    shared: list[tuple[str, str]]  # (item id, name)
    discoveries: list[tuple[str, str]]


@dataclass(frozen=True)
class SeedBuddies:
    seeds: list[str]  # the seeds that matched an artist, as given
    unknown_seeds: list[str]
    items: list[NamedBuddy]


class BuddyFinder:
    """The buddies of one bundle's listeners (read-only once built; safe across threads)."""

    def __init__(
        self,
        bundle: ModelBundle,
        resolve_seeds: Callable[[Sequence[str]], tuple[list[int], list[str]]],
    ) -> None:
        self.bundle = bundle
        self.resolve_seeds = resolve_seeds
        self._exact: tuple[sp.csr_matrix, npt.NDArray[np.float64], npt.NDArray[np.float64]] | None
        self._exact = None
        self._lock = threading.Lock()

    @property
    def indexed(self) -> bool:
        """Whether buddies come through the listener index (else exact search)."""
        return self.bundle.listeners is not None

    def for_user(self, user_id: str, k: int) -> list[NamedBuddy]:
        """``user_id``'s ``k`` buddies; 404 naming an unknown listener."""
        bundle = self.bundle
        row = bundle.users.get(user_id)
        plays = bundle.history(user_id)
        if plays is None:
            raise NotFoundError(f"unknown listener {user_id!r}", field="user_id")
        return self._found(plays, k, [row])[0]

    def for_rows(self, rows: npt.NDArray[np.int64], k: int) -> list[list[NamedBuddy]]:
        """The ``k`` buddies of each of a block of trained listeners (rows of the bundle's users),
        as :meth:`for_user` answers each: what ``setlist top-picks`` computes."""
        rows = np.asarray(rows, dtype=np.int64)
        return self._found(sp.csr_matrix(self.bundle.seen)[rows], k, rows.tolist())

    def for_seeds(self, seeds: Sequence[str], k: int) -> SeedBuddies:
        """The ``k`` buddies of a new listener with one listen of each seed artist."""
        rows, unknown = self.resolve_seeds(seeds)
        if not rows:  # a valid request that names nothing here: 404, as onboarding answers
            raise NotFoundError(
                f"no seed matched an artist: {', '.join(repr(s) for s in seeds[:5])}",
                field="seeds",
            )
        n_items = len(self.bundle.items)
        plays = sp.csr_matrix(
            (np.ones(len(rows)), (np.zeros(len(rows), dtype=np.int64), rows)), shape=(1, n_items)
        )
        missing = set(unknown)
        known = [s for s in seeds if s not in missing]
        return SeedBuddies(known, list(unknown), self._found(plays, k, [None])[0])

    def _found(
        self, plays: sp.csr_matrix, k: int, exclude: Sequence[int | None]
    ) -> list[list[NamedBuddy]]:
        """The buddies of the listeners with these ``plays`` (one row each, never ``exclude``)."""
        index = self.bundle.listeners
        if index is not None:
            rows, sims = index.search_block(index.query(plays), k, exclude)
        else:
            vectors, idf, hubs = self._exact_vectors()
            rows, sims = nearest_block(vectors, weigh(plays, idf), k, exclude, hubs)
        valid = rows >= 0
        owner = np.broadcast_to(np.arange(len(rows))[:, None], rows.shape)[valid]
        found = describe_block(self.bundle.seen, plays, owner, rows[valid], sims[valid])
        artists = artist_labels(
            self.bundle, [c for b in found for c in (*b.shared, *b.discoveries)]
        )
        users = strings(self.bundle.users.ids, [b.user for b in found])
        out: list[list[NamedBuddy]] = [[] for _ in range(len(rows))]
        for i, user, buddy in zip(owner.tolist(), users, found, strict=True):
            named = NamedBuddy(
                user_id=user,
                similarity=round(buddy.similarity, 6),
                shared=[next(artists) for _ in buddy.shared],
                discoveries=[next(artists) for _ in buddy.discoveries],
            )
            out[i].append(named)
        return out

    def _exact_vectors(
        self,
    ) -> tuple[sp.csr_matrix, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        with self._lock:
            if self._exact is None:
                seen = sp.csr_matrix(self.bundle.seen)
                idf = idf_weights(seen)
                vectors = weigh(seen, idf)
                self._exact = (vectors, idf, hubness(vectors))
            return self._exact
