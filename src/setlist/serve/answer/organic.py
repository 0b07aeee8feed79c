"""Organic playlists for a listener of the served artists bundle: the saved ranker over the
playlists linked to the bundle's artist names, with the reasons of each pick.

:meth:`OrganicAnswerer.build` does the slow part once per bundle (linking every playlist artist
to the bundle's names, the listeners' taste vectors and hubness); each request then ranks a few
hundred candidates. The saved version's champion decides the order: ``ranker`` (the learned
ranker), ``overlap`` (raw overlap) or ``most_followed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from setlist.bundle import ModelBundle
from setlist.errors import DataError, NotFoundError
from setlist.index.buddies import hubness, nearest_block, taste_vectors
from setlist.index.organic import (
    LinkedPlaylists,
    Listener,
    because,
    link,
    listener,
    matched_share,
    normalise,
    ones,
    seed_listener,
)
from setlist.index.organic_ranker import OrganicRanker, most_followed, recommend_block
from setlist.index.organic_store import OrganicArtifact
from setlist.serve.answer.labels import artist_labels, strings


@dataclass(frozen=True)
class Ref:
    item_id: str
    name: str


@dataclass(frozen=True)
class OrganicPick:
    playlist_id: str
    name: str
    num_followers: int
    num_tracks: int
    familiar: list[Ref]
    new: list[Ref]
    buddies: list[str]


@dataclass(frozen=True)
class OrganicAnswerer:
    artifact: OrganicArtifact
    bundle: ModelBundle
    linked: LinkedPlaylists
    history: sp.csr_matrix
    heard: sp.csr_matrix  # the history as 1 where heard
    vectors: sp.csr_matrix
    hubs: npt.NDArray[np.float64]
    ranker: OrganicRanker
    matched: float  # share of the bundle's listening on artists found in some playlist
    by_name: dict[str, int]  # normalised artist name -> column (seeds may be names)

    @classmethod
    def build(cls, artifact: OrganicArtifact, bundle: ModelBundle) -> OrganicAnswerer:
        history = sp.csr_matrix(bundle.seen, dtype=np.float64)
        linked = link(artifact.table, [str(n) for n in bundle.item_names.tolist()])
        linked.binary_by_artist, linked.unit_by_artist  # noqa: B018 - made once, here
        vectors = taste_vectors(history)
        ranker = artifact.ranker
        if artifact.champion != "ranker":  # the better reference serves: raw overlap order
            ranker = OrganicRanker(ranker.config, None)
        matched = matched_share(history, linked)
        by_name: dict[str, int] = {}
        for col, name in enumerate(bundle.item_names.tolist()):
            by_name.setdefault(normalise(str(name)), col)
        hubs = hubness(vectors)
        return cls(
            artifact,
            bundle,
            linked,
            history,
            ones(history),
            vectors,
            hubs,
            ranker,
            matched,
            by_name,
        )

    def for_user(self, user_id: str, k: int, serendipity: float) -> list[OrganicPick]:
        """404 naming ``user_id`` for a listener the bundle does not know."""
        row = self.bundle.users.get(user_id)
        if row is None:
            raise NotFoundError(f"unknown listener {user_id!r}", field="user_id", value=user_id)
        return self.for_rows(np.array([row]), k, serendipity)[0]

    def for_rows(
        self, rows: npt.NDArray[np.int64], k: int, serendipity: float
    ) -> list[list[OrganicPick]]:
        """The playlists of a block of listeners (rows of the bundle's users), as
        :meth:`for_user` answers each: what ``setlist top-picks`` computes."""
        return self._answer(self.listeners(rows), k, serendipity)

    def listeners(self, rows: npt.NDArray[np.int64]) -> Listener:
        """A block of the bundle's listeners, their buddies through the bundle's listener index
        (exact search for a bundle without one)."""
        rows = np.asarray(rows, dtype=np.int64)
        if ((rows < 0) | (rows >= self.history.shape[0])).any():
            raise DataError("listener row out of range", field="user", value=rows.tolist())
        queries = self.vectors[rows]
        index, exclude = self.bundle.listeners, rows.tolist()
        if index is not None:
            found, sims = index.search_block(queries, self.n_buddies, exclude)
        else:
            found, sims = nearest_block(self.vectors, queries, self.n_buddies, exclude, self.hubs)
        return listener(
            self.history, self.vectors, queries, self.history[rows], found, sims, self.heard
        )

    def for_seeds(self, item_ids: Sequence[str], k: int, serendipity: float) -> list[OrganicPick]:
        """Seed artists by id or name (accents and case ignored; unknown ones skipped); none
        known: the most-followed playlists."""
        by_id = self.bundle.items.rows(list(item_ids)).tolist()
        rows = [
            r if r >= 0 else self.by_name.get(normalise(s), -1)
            for r, s in zip(by_id, item_ids, strict=True)
        ]
        rows = [r for r in rows if r >= 0]
        who = seed_listener(self.history, self.vectors, rows, self.hubs, self.n_buddies)
        return self._answer(who, k, serendipity)[0]

    @property
    def n_buddies(self) -> int:
        return self.ranker.config.n_buddies

    def _answer(self, who: Listener, k: int, serendipity: float) -> list[list[OrganicPick]]:
        if self.artifact.champion == "most_followed":
            slates = [most_followed(self.linked, k)] * len(who)
        else:
            slates = recommend_block(self.ranker, self.linked, who, k, serendipity)
        owner = np.repeat(np.arange(len(who)), [len(s) for s in slates])
        rows = np.concatenate(slates).astype(np.int64) if slates else np.zeros(0, np.int64)
        whys = because(self.linked, who, owner, rows)
        artists = artist_labels(self.bundle, [c for w in whys for c in (*w.familiar, *w.new)])
        buddies = iter(strings(self.bundle.users.ids, [b for w in whys for b in w.buddies]))
        linked = self.linked
        figures = zip(
            strings(linked.ids, rows.tolist()),
            strings(linked.names, rows.tolist()),
            linked.followers[rows].astype(np.int64).tolist(),
            linked.num_tracks[rows].astype(np.int64).tolist(),
            strict=True,
        )
        out: list[list[OrganicPick]] = [[] for _ in range(len(who))]
        for i, (pid, name, followers, tracks), why in zip(
            owner.tolist(), figures, whys, strict=True
        ):
            out[i].append(
                OrganicPick(
                    playlist_id=pid,
                    name=name,
                    num_followers=followers,
                    num_tracks=tracks,
                    familiar=[Ref(*next(artists)) for _ in why.familiar],
                    new=[Ref(*next(artists)) for _ in why.new],
                    buddies=[next(buddies) for _ in why.buddies],
                )
            )
        return out
