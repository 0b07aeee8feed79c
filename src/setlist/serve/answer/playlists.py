"""A playlist catalogue's answers: continuing a new playlist, and its training playlists.

Built once per loaded bundle by :class:`setlist.serve.answer.answerer.Answerer`. Scoring goes
through :class:`setlist.models.continuation.Continuer`, the one the challenge evaluation uses,
so the service answers with the figures the promotion gate saw; the title model reads the
training playlists' names in the row order of ``bundle.users`` (matched to ``bundle.playlists``
by pid; a training playlist missing from the table gets an empty name, which matches nothing).

What is decided here (the issue is silent on it):

- seeds are track ids only (no names: a track name is ambiguous across artists); each distinct
  known seed counts once, unknown ones are returned, never an error;
- the seeds and the caller's exclusions are never offered, and the usual ranking rules (blocked
  items and tags, per-tag cap, new-item slot) apply as for any answer;
- when neither the seeds nor the name say anything (no known seed, no name or one that matches no
  training playlist's words) the answer is the most popular tracks, strategy ``popular``;
- ``because``: for seeds, what the model attributes to each seed where it can (ALS), else the
  seeds most often on the same training playlists as the track (``contribution``: how many
  playlists hold both); for a name, one reason "playlists named like '<name>'" whose
  contribution is the title model's score for the track.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from setlist.arrays import FloatArray, IntArray
from setlist.bundle import ModelBundle, playlist_continuer
from setlist.errors import NotFoundError
from setlist.models.base import Recommender
from setlist.models.continuation import SEEDS, SEEDS_TITLE, TITLE, Continuer
from setlist.models.title import TitleModel
from setlist.serve.answer.explain import MAX_BECAUSE, Reason, explain
from setlist.serve.answer.ranking import Ranker
from setlist.serve.answer.retrieval import DenseTaste

if TYPE_CHECKING:
    from setlist.serve.answer.state import Query, Recommendations, ScoredItem

Namer = Callable[[IntArray, FloatArray, "list[list[Reason]] | None", int], "list[ScoredItem]"]
POPULAR = "popular"  # neither seeds nor name said anything
CONTINUE_STRATEGIES = (SEEDS, SEEDS_TITLE, TITLE, POPULAR)
ARTIST = "artist"  # the item attribute holding a track's artist name


@dataclass(frozen=True)
class PlaylistTrack:
    item_id: str
    name: str
    artist: str | None
    known: bool  # in the served catalogue (a training playlist may hold tracks filtered out)


@dataclass(frozen=True)
class Playlist:
    pid: str
    name: str
    num_followers: int
    tracks: list[PlaylistTrack]


class PlaylistAnswers:
    """Continuation and playlist lookups over one bundle (read-only after construction)."""

    def __init__(
        self,
        bundle: ModelBundle,
        ranker: Ranker,
        id_list: list[str] | None = None,
        name_list: list[str] | None = None,
    ) -> None:
        self.bundle = bundle
        self.ranker = ranker
        # Plain lists of ids and names, once (the answerer's when given): explaining an answer
        # must not list a million-track catalogue per request.
        self.id_list = bundle.items.ids.tolist() if id_list is None else id_list
        self.name_list = (
            [str(n) for n in bundle.item_names.tolist()] if name_list is None else name_list
        )
        self._pid_rows: dict[str, int] = {}
        playlists = bundle.playlists
        if playlists is not None:
            pids = playlists.get_column("pid").to_list()
            self._pid_rows = {str(p): i for i, p in enumerate(pids)}
        # Exactly the scoring the gate measured: title model over the training playlists, the
        # recorded title and artist weights, the artist back-off.
        self.continuer: Continuer = playlist_continuer(bundle)
        self.title: TitleModel | None = self.continuer.title
        artists = bundle.item_attributes.get(ARTIST)
        self.artists: list[str] | None = None if artists is None else artists.tolist()
        self.can_explain = type(bundle.model).explain is not Recommender.explain
        self._item_playlists: sp.csr_matrix | None = None  # items x playlists, built on first use
        self._lock = threading.Lock()
        # Most popular first (ties by row), once: the fallback never sorts per request.
        self.popular_rows = np.argsort(-bundle.popularity, kind="stable").astype(np.int64)

    @property
    def has_playlists(self) -> bool:
        return self.bundle.playlists is not None

    def artist(self, row: int) -> str | None:
        return None if self.artists is None or row < 0 else self.artists[row] or None

    def resolve(self, tracks: tuple[str, ...]) -> tuple[IntArray, list[str]]:
        """Rows of the known seed tracks (each once, in order) and the unknown ids (each once)."""
        rows: dict[int, None] = {}
        unknown: dict[str, None] = {}
        for track in tracks:
            row = self.bundle.items.get(track)
            if row is None:
                unknown[track] = None
            else:
                rows[row] = None
        return np.fromiter(rows, dtype=np.int64, count=len(rows)), list(unknown)

    def answer(
        self,
        tracks: tuple[str, ...],
        name: str | None,
        query: Query,
        version: str,
        named: Namer,
        excluded_by_caller: IntArray,
        model: bool = True,
    ) -> Recommendations:
        from setlist.serve.answer.state import Recommendations

        seeds, unknown = self.resolve(tracks)
        excluded = np.concatenate([seeds, excluded_by_caller])
        name = name.strip() if name else None
        scored = self.continuer.scores(seeds, name) if model else None
        if scored is None:
            pop, order = self.bundle.popularity, self.popular_rows
            fetch = min(len(order), 3 * query.k + len(excluded) + 16)
            rows = order[:fetch]
            ranked = self.ranker.rank_scored(rows, pop[rows], query.k, excluded)
            items = named(ranked.rows, ranked.scores, None, -1)
            reason = "no_seeds_or_title" if model else "model_error"
            return Recommendations(
                None, version, POPULAR, items, reason, None, unknown_seeds=tuple(unknown)
            )
        scores, strategy = scored
        ranked = self.ranker.rank(DenseTaste(scores), query.k, excluded)
        reasons = self._reasons(ranked.rows, seeds, name, strategy)
        items = named(ranked.rows, ranked.scores, reasons, ranked.new_item_row)
        return Recommendations(
            None, version, strategy, items, None, None, unknown_seeds=tuple(unknown)
        )

    # ----------------------------------------------------------------- reasons

    def _reasons(
        self, rows: IntArray, seeds: IntArray, name: str | None, strategy: str
    ) -> list[list[Reason]]:
        out: list[list[Reason]] = [[] for _ in range(len(rows))]
        if strategy in (SEEDS, SEEDS_TITLE) and len(seeds) and len(rows):
            for i, found in enumerate(self._seed_reasons(rows, seeds)):
                out[i].extend(found)
        if strategy in (TITLE, SEEDS_TITLE) and self.title is not None and len(rows):
            title_scores = self.title.scores(name)
            if title_scores is not None:
                text = f"playlists named like {name!r}"
                shares = np.asarray(title_scores[rows], dtype=np.float64)
                for i in np.flatnonzero(shares > 0).tolist():
                    out[i].append(
                        {
                            "item_id": "",
                            "name": text,
                            "contribution": float(shares[i]),
                            "kind": TITLE,
                        }
                    )
        return out

    def _seed_reasons(self, rows: IntArray, seeds: IntArray) -> list[list[Reason]]:
        ids = self.bundle.items.ids
        names = self.bundle.item_names
        if self.can_explain:
            found = explain(
                self.bundle.model,
                self.continuer.seed_row(seeds),
                rows,
                self.id_list,
                self.name_list,
            )
            if any(found):
                return [[{**r, "kind": "seed"} for r in row] for row in found]
        # Co-occurrence: how many training playlists hold both the seed and the track; the best
        # seeds of every answered track at once (one argsort over the seeds x rows block).
        together = self._items_playlists()
        counts = np.asarray((together[seeds] @ together[rows].T).todense(), dtype=np.float64)
        best = np.argsort(-counts, axis=0, kind="stable")[:MAX_BECAUSE]
        seed_ids = [str(ids[s]) for s in seeds.tolist()]
        seed_names = [str(names[s]) for s in seeds.tolist()]
        top = np.take_along_axis(counts, best, axis=0).tolist()
        return [
            [
                {
                    "item_id": seed_ids[b],
                    "name": seed_names[b],
                    "contribution": c,
                    "kind": "seed",
                }
                for b, c in zip(column, values, strict=True)
                if c > 0
            ]
            for column, values in zip(best.T.tolist(), zip(*top, strict=True), strict=True)
        ]

    def _items_playlists(self) -> sp.csr_matrix:
        """Items x training playlists, 1 where the playlist holds the track (built once)."""
        with self._lock:
            if self._item_playlists is None:
                binary = sp.csr_matrix(self.bundle.seen > 0, dtype=np.float32)
                self._item_playlists = binary.T.tocsr()
            return self._item_playlists

    # ----------------------------------------------------------------- the training playlists

    def playlist(self, pid: str) -> Playlist:
        """A training playlist by pid, its tracks named; 404 naming the pid when unknown."""
        frame = self.bundle.playlists
        at = self._pid_rows.get(pid)
        if frame is None or at is None:
            raise NotFoundError(f"unknown playlist pid {pid!r}", field="pid")
        row = frame.row(at, named=True)
        tracks = []
        for track in row["tracks"] or []:
            item = self.bundle.items.get(track)
            known = item is not None
            r = item if item is not None else -1
            tracks.append(
                PlaylistTrack(
                    item_id=str(track),
                    name=str(self.bundle.item_names[r]) if known else str(track),
                    artist=self.artist(r),
                    known=known,
                )
            )
        return Playlist(
            pid=str(row["pid"]),
            name=str(row["name"] or ""),
            num_followers=int(row["num_followers"] or 0),
            tracks=tracks,
        )
