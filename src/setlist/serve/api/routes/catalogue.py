"""Read-only views of the catalogue, the data and the events, for the listener's app and dashboard.

The Streamlit app (:mod:`setlist.ui`) talks only to the HTTP API, so what it shows about the
dataset (search over artist names, a listener's history, dataset figures, model versions and
what listeners did) has to be served here. Everything is computed from the loaded bundle or the
event store on request; the per-bundle figures are cached by bundle identity, so a hot-swap
simply computes them afresh. Nothing here writes.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import polars as pl
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from setlist.bundle import ModelBundle
from setlist.errors import NotFoundError
from setlist.serve.answer.ask import MAX_ID_LENGTH
from setlist.serve.api.deps import ServiceDep, StateDep
from setlist.serve.api.schemas import ErrorPublic

router = APIRouter(prefix="/v1", tags=["catalogue"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic},
    422: {"model": ErrorPublic},
    503: {"model": ErrorPublic},
}
TOP = 20
MAX_SEARCH = 20_000  # the app offers up to this many names for type-ahead
MAX_EVENTS = 200_000  # the newest events the event figures are computed over
POSITIVE = ("listen", "like", "playlist_add")


class ArtistPublic(BaseModel):
    item_id: str
    name: str
    url: str | None = None
    listeners: int = Field(description="Listeners of the training data who played the artist.")


class SearchPublic(BaseModel):
    query: str
    items: list[ArtistPublic]


class CountPublic(BaseModel):
    name: str
    count: float
    item_id: str | None = Field(default=None, description="The artist's id, where it is one.")


class ArtistsPublic(BaseModel):
    items: list[ArtistPublic]


class BinPublic(BaseModel):
    low: float
    high: float
    count: int


class StatsPublic(BaseModel):
    model_version: str
    listeners: int
    artists: int
    interactions: int
    plays: float = Field(description="Sum of the training weights (play counts).")
    density: float = Field(description="Interactions over listeners x artists.")
    plays_per_interaction: list[BinPublic] = Field(description="Log-spaced integer ranges.")
    artists_per_listener: list[BinPublic]
    listeners_per_artist: list[BinPublic]
    top_artists: list[ArtistPublic]
    top_tags: list[CountPublic]


class HistoryPublic(BaseModel):
    user_id: str
    artists: int
    plays: float
    top_artists: list[CountPublic]
    top_tags: list[CountPublic]


class VersionPublic(BaseModel):
    version: str
    aliases: list[str]
    model_type: str
    metrics: dict[str, float | None]
    created_at: datetime | None


class VersionsPublic(BaseModel):
    served: str
    versions: list[VersionPublic]
    problem: str | None = Field(default=None, description="Why the registry could not be read.")


class DayCountPublic(BaseModel):
    day: str
    name: str
    count: int


class EventStatsPublic(BaseModel):
    events: int = Field(description="Events the figures are computed over (the newest).")
    by_type: list[CountPublic]
    listening: list[DayCountPublic] = Field(
        description="Positive events per day: name 'organic' or 'recommended' (the event came "
        "from a slate: it carries an arm/position, or an impression of the item preceded it)."
    )
    new_listener_recommendations: list[CountPublic] = Field(
        description="Artists most shown (impressions) to listeners absent from the training data."
    )
    new_listener_playlists: list[CountPublic] = Field(
        default_factory=list,
        description="Organic playlists most shown (playlist_impression events) to listeners "
        "absent from the artists' training data: name is the playlist's name in the loaded "
        "organic ranker (its id where none is loaded or it lacks the playlist; a name two "
        "playlists share is followed by the id), count the times shown.",
    )
    moods: list[DayCountPublic] = Field(
        description="Positive events per day and mood (the artist carries the mood's tags)."
    )
    playlist_listening: list[DayCountPublic] = Field(
        default_factory=list,
        description="Plays per day: name 'organic playlists' (playlist_play events: a "
        "human-made playlist playing) or 'the rest' (listen events).",
    )


class _Cache:
    """A few values per bundle (by identity, holding the bundle so the id stays unique)."""

    def __init__(self, size: int = 4) -> None:
        self._items: OrderedDict[tuple[int, str], tuple[ModelBundle, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, bundle: ModelBundle, key: str, make: Any) -> Any:
        with self._lock:
            hit = self._items.get((id(bundle), key))
            if hit is not None and hit[0] is bundle:
                return hit[1]
        value = make(bundle)
        with self._lock:
            self._items[(id(bundle), key)] = (bundle, value)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


_cache = _Cache(size=16)


@router.get("/catalogue/search", responses=_ERRORS)
def search(
    state: StateDep,
    q: Annotated[str, Query(max_length=100, description="Part of a name; empty: most heard.")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH)] = 10,
) -> SearchPublic:
    """Artists whose name contains ``q``, ignoring case and accents ("bjork" finds Björk):
    prefix matches, then most heard.

    Without ``q``, the most heard artists: the app offers them for type-ahead in the browser.
    """
    bundle, _ = state.require()
    rows = search_rows(bundle, q)
    return SearchPublic(query=q, items=[_artist(bundle, int(r)) for r in rows[:limit]])


def search_rows(bundle: ModelBundle, q: str, attribute: str | None = None) -> npt.NDArray[np.intp]:
    """Rows whose name (or ``attribute``, e.g. a track's artist) contains ``q``, ignoring case
    and accents (both sides :func:`fold`ed): prefix matches first, then by popularity; every
    row, most popular first, for an empty ``q``.

    The one search of item names: artists (``/v1/catalogue/search``) and tracks
    (``/v1/tracks/search``, by track or artist name) both use it.
    """
    needle = fold(q.strip())
    if not needle:
        return np.argsort(-bundle.popularity, kind="stable")
    columns = [_lowered(bundle, "name", bundle.item_names)]
    values = bundle.item_attributes.get(attribute) if attribute is not None else None
    if attribute is not None and values is not None:
        columns.append(_lowered(bundle, attribute, values))
    found = np.zeros(len(bundle.item_names), dtype=bool)
    for lowered in columns:
        found |= np.char.find(lowered, needle) >= 0
    rows = np.flatnonzero(found)
    prefix = np.zeros(len(rows), dtype=bool)
    for lowered in columns:
        prefix |= np.char.startswith(lowered[rows], needle)
    return rows[np.lexsort((-bundle.popularity[rows], ~prefix))]


def fold(text: str) -> str:
    """``text`` as search compares it: accents dropped (NFKD, then the combining diacritical
    marks U+0300..U+036F removed) and case folded, so "Motörhead", "MOTORHEAD" and "motorhead"
    are one string; other marks (the kana's dakuten) are composed back, not dropped."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not "\u0300" <= c <= "\u036f")
    return unicodedata.normalize("NFC", bare).casefold()


def _lowered(bundle: ModelBundle, key: str, values: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    """``values`` :func:`fold`ed, computed once per bundle."""

    def make(_bundle: ModelBundle) -> npt.NDArray[np.str_]:
        return np.array([fold(str(v)) for v in values.tolist()], dtype=np.str_)

    found: npt.NDArray[np.str_] = _cache.get(bundle, f"fold:{key}", make)
    return found


@router.get("/catalogue/artists", responses=_ERRORS)
def artists(
    state: StateDep,
    item_id: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]],
        Query(max_length=100, description="Artist ids (repeat the parameter); unknown: skipped."),
    ],
) -> ArtistsPublic:
    """Names, links and listener counts of the given artists (what a recommendation lacks)."""
    bundle, _ = state.require()
    rows = [bundle.items.get(i) for i in item_id]
    return ArtistsPublic(items=[_artist(bundle, r) for r in rows if r is not None])


@router.get("/stats", responses=_ERRORS)
def stats(state: StateDep) -> StatsPublic:
    """Figures of the training data the served model learned from."""
    bundle, info = state.require()
    figures: dict[str, Any] = _cache.get(bundle, "stats", _dataset_stats)
    return StatsPublic(model_version=info.version, **figures)


@router.get("/users/{user_id:path}/history", responses=_ERRORS)
def history(
    state: StateDep, user_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]
) -> HistoryPublic:
    """A listener's training history: most played artists and their most applied tags."""
    bundle, _ = state.require()
    row = bundle.users.get(user_id)
    if row is None:
        raise NotFoundError(f"unknown listener {user_id!r}", field="user_id")
    seen = bundle.seen[row]
    cols, plays = seen.indices, seen.data.astype(np.float64)
    order = np.argsort(-plays, kind="stable")[:TOP]
    top = [
        CountPublic(
            name=str(bundle.item_names[cols[i]]),
            count=float(plays[i]),
            item_id=str(bundle.items.ids[cols[i]]),
        )
        for i in order
    ]
    tags: list[CountPublic] = []
    if bundle.item_tags is not None and len(cols):
        weights = bundle.item_tags[cols].T @ (plays / plays.sum())
        best = np.argsort(-weights, kind="stable")[:10]
        tags = [
            CountPublic(name=str(bundle.tag_names[t]), count=round(float(weights[t]), 3))
            for t in best
            if weights[t] > 0
        ]
    return HistoryPublic(
        user_id=user_id, artists=len(cols), plays=float(plays.sum()), top_artists=top, top_tags=tags
    )


@router.get("/models", responses=_ERRORS)
async def versions(state: StateDep, service: ServiceDep) -> VersionsPublic:
    """The registered model versions, newest first (only the served one for a bundle folder)."""
    _, info = state.require()
    served = VersionPublic(
        version=info.version,
        aliases=["served"],
        model_type=info.model_type,
        metrics=_finite(info.metrics),
        created_at=info.trained_at,
    )
    artists = service.artists
    if artists.local:
        return VersionsPublic(served=info.version, versions=[served])
    try:
        found = await run_in_threadpool(_registry_versions, artists.settings)
    except Exception as exc:  # the registry is optional for this view: say why, keep serving
        return VersionsPublic(served=info.version, versions=[served], problem=str(exc)[:300])
    return VersionsPublic(served=info.version, versions=found or [served])


@router.get("/stats/events", responses=_ERRORS)
async def event_stats(state: StateDep, service: ServiceDep) -> EventStatsPublic:
    """What listeners did, from the newest stored events (see the fields' descriptions)."""
    store = service.feedback.events.require()
    frame = await run_in_threadpool(_newest_events, store)
    bundle, _ = state.require()
    moods = {m.mood.name: m.top_rows for m in state.moods()}
    artifact = service.organic.artifact
    playlists = None if artifact is None else artifact.table.playlists
    return await run_in_threadpool(_event_figures, frame, bundle, moods, playlists)


def _artist(bundle: ModelBundle, row: int) -> ArtistPublic:
    url = str(bundle.item_urls[row]) if len(bundle.item_urls) > row else ""
    return ArtistPublic(
        item_id=str(bundle.items.ids[row]),
        name=str(bundle.item_names[row]),
        url=url or None,
        listeners=int(bundle.popularity[row]),
    )


def _histogram(values: npt.NDArray[Any], bins: int = 12) -> list[BinPublic]:
    """Counts on log-spaced integer ranges ``low..high`` (both included): play counts and
    activity are heavy-tailed and whole numbers, so equal-width bins would hide the tail."""
    values = np.floor(values[values > 0])
    if len(values) == 0:
        return []
    low, high = float(values.min()), float(values.max())
    edges = np.unique(np.round(np.geomspace(low, high + 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([low, high + 1])
    counts, _ = np.histogram(values, bins=edges)
    return [
        BinPublic(low=float(a), high=float(b - 1), count=int(c))
        for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def _dataset_stats(bundle: ModelBundle) -> dict[str, Any]:
    seen = bundle.seen
    n_users, n_items = seen.shape
    per_user = np.diff(seen.indptr)
    per_item = np.asarray(bundle.popularity, dtype=np.float64)
    order = np.argsort(-per_item, kind="stable")[:TOP]
    tags: list[CountPublic] = []
    if bundle.item_tags is not None and bundle.item_tags.nnz:
        totals = np.asarray(bundle.item_tags.sum(axis=0)).ravel()
        tags = [
            CountPublic(name=str(bundle.tag_names[t]), count=float(totals[t]))
            for t in np.argsort(-totals, kind="stable")[:TOP]
            if totals[t] > 0
        ]
    return {
        "listeners": int(n_users),
        "artists": int(n_items),
        "interactions": int(seen.nnz),
        "plays": float(seen.data.sum()),
        "density": float(seen.nnz / max(1, n_users * n_items)),
        "plays_per_interaction": _histogram(seen.data.astype(np.float64)),
        "artists_per_listener": _histogram(per_user.astype(np.float64)),
        "listeners_per_artist": _histogram(per_item),
        "top_artists": [_artist(bundle, int(r)) for r in order],
        "top_tags": tags,
    }


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if np.isfinite(v) else None) for k, v in metrics.items()}


def _registry_versions(settings: Any) -> list[VersionPublic]:
    from setlist.registry.store import Registry, RegistryConfig

    registry = Registry(RegistryConfig.from_settings(settings))
    return [
        VersionPublic(
            version=mv.version,
            aliases=list(mv.aliases),
            model_type=mv.model_type,
            metrics=_finite(mv.metrics),
            created_at=mv.created_at,
        )
        for mv in registry.list_versions()[:50]
    ]


def _newest_events(store: Any) -> pl.DataFrame:
    newest = store.count()
    rows = store.rows(max(0, newest - MAX_EVENTS), MAX_EVENTS)
    from setlist.events.store.base import FRAME_SCHEMA

    return pl.DataFrame(rows, schema=FRAME_SCHEMA, orient="row")


def _event_figures(
    frame: pl.DataFrame,
    bundle: ModelBundle,
    moods: dict[str, npt.NDArray[np.int64]],
    playlists: pl.DataFrame | None = None,
) -> EventStatsPublic:
    """The figures of :class:`EventStatsPublic`; ``playlists`` (pid, name) names the organic
    playlists (the loaded organic ranker's table; None: none is loaded)."""
    if frame.is_empty():
        return EventStatsPublic(
            events=0,
            by_type=[],
            listening=[],
            new_listener_recommendations=[],
            new_listener_playlists=[],
            moods=[],
        )
    frame = frame.sort("seq").with_columns(
        day=pl.from_epoch(pl.col("ts_us"), time_unit="us").dt.strftime("%Y-%m-%d")
    )
    by_type = frame.group_by("type").len().sort("len", descending=True)
    shown = frame.filter(pl.col("type") == "impression")
    first_shown = shown.group_by("user_id", "item_id").agg(pl.col("seq").min().alias("shown"))
    positive = frame.filter(pl.col("type").is_in(POSITIVE)).join(
        first_shown, on=["user_id", "item_id"], how="left"
    )
    from_slate = (
        pl.col("arm").is_not_null()
        | pl.col("position").is_not_null()
        | (pl.col("shown").is_not_null() & (pl.col("shown") < pl.col("seq")))
    )
    listening = (
        positive.with_columns(
            name=pl.when(from_slate).then(pl.lit("recommended")).otherwise(pl.lit("organic"))
        )
        .group_by("day", "name")
        .len()
        .sort("day", "name")
    )
    known = bundle.users.ids.tolist()
    newcomers = frame.filter(~pl.col("user_id").is_in(known))
    new_playlists = _shown_playlists(
        newcomers.filter(pl.col("type") == "playlist_impression"), playlists
    )
    newcomers = newcomers.filter(pl.col("type") == "impression")
    top_new = newcomers.group_by("item_id").len().sort("len", descending=True).head(TOP)
    rows = bundle.items.rows(top_new.get_column("item_id").to_list())
    names = {
        str(i): str(bundle.item_names[r])
        for i, r in zip(top_new.get_column("item_id"), rows, strict=True)
        if r >= 0
    }
    plays = (
        frame.filter(pl.col("type").is_in(["listen", "playlist_play"]))
        .with_columns(
            name=pl.when(pl.col("type") == "playlist_play")
            .then(pl.lit("organic playlists"))
            .otherwise(pl.lit("the rest"))
        )
        .group_by("day", "name")
        .len()
        .sort("day", "name")
    )
    mood_rows: list[tuple[str, str, int]] = []
    for mood, rows in moods.items():
        ids = bundle.items.ids[rows].tolist()
        hits = positive.filter(pl.col("item_id").is_in(ids)).group_by("day").len()
        mood_rows.extend((d, mood, int(n)) for d, n in hits.iter_rows())
    return EventStatsPublic(
        events=frame.height,
        by_type=[CountPublic(name=t, count=float(n)) for t, n in by_type.iter_rows()],
        listening=[
            DayCountPublic(day=d, name=k, count=int(n)) for d, k, n in listening.iter_rows()
        ],
        new_listener_recommendations=[
            CountPublic(name=names.get(i, i), count=float(n)) for i, n in top_new.iter_rows()
        ],
        new_listener_playlists=new_playlists,
        moods=[DayCountPublic(day=d, name=m, count=n) for d, m, n in sorted(mood_rows)],
        playlist_listening=[
            DayCountPublic(day=d, name=k, count=int(n)) for d, k, n in plays.iter_rows()
        ],
    )


def _shown_playlists(shown: pl.DataFrame, playlists: pl.DataFrame | None) -> list[CountPublic]:
    """The most shown playlists of ``shown`` (playlist_impression rows), most first (then by
    id), named from ``playlists`` where it has them; a shared name gets the id after it, so
    that two playlists called "chill" stay two bars."""
    top = (
        shown.group_by("playlist_id")
        .len()
        .sort(["len", "playlist_id"], descending=[True, False])
        .head(TOP)
    )
    ids = [str(p) for p in top.get_column("playlist_id")]
    names: dict[str, str] = {}
    if playlists is not None and ids:
        found = playlists.select(pl.col("pid").cast(pl.String), "name").filter(
            pl.col("pid").is_in(ids)
        )
        names = {str(p): str(n) for p, n in found.iter_rows() if n}
    labels = [names.get(p, p) for p in ids]
    shared = {label for label in labels if labels.count(label) > 1}
    return [
        CountPublic(name=f"{label} ({p})" if label in shared else label, count=float(n))
        for label, p, n in zip(labels, ids, top.get_column("len"), strict=True)
    ]
