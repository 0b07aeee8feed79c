"""The data dashboard: the dataset, the model, the live service and what listeners did.

Four sections (five with an admin key: the audit trail), each fed by one or two API routes and
each failing on its own (a missing route or an empty event store shows a sentence in its place,
the rest of the page still renders).
Charts are Altair: bars for counts and distributions, lines for figures over time.
"""

from __future__ import annotations

import time
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from setlist.ui.api import Api, ApiError
from setlist.ui.common import show_error
from setlist.ui.promtext import parse, rate

CHART_HEIGHT = 260
BAR_STEP = 20  # pixels per bar of a ranking: every name stays readable


def render(api: Api) -> None:
    st.title("setlist: data dashboard")
    st.button("Refresh", key="dashboard-refresh")
    _dataset(api)
    _model(api)
    _service(api)
    _listening(api)
    _audit(api)


def _audit(api: Api) -> None:
    """The audit trail, when the app's key (``SETLIST_API_KEY``) holds the admin scope."""
    try:
        found = api.get("/v1/admin/audit", limit=50)
    except ApiError:
        # Without an admin key (401, 403), from an older API (404) or an unreachable one (the
        # other sections say so): no section at all.
        return
    st.header("Audit")
    if not found.get("entries"):
        st.info("Nothing audited yet: keys created or revoked, admin actions.")
        return
    st.dataframe(pd.DataFrame(found["entries"]), hide_index=True, width="stretch")


def _dataset(api: Api) -> None:
    st.header("Dataset")
    try:
        stats = api.get("/v1/stats")
    except ApiError as exc:
        show_error(exc)
        return
    cols = st.columns(5)
    cols[0].metric("Listeners", f"{stats['listeners']:,}")
    cols[1].metric("Artists", f"{stats['artists']:,}")
    cols[2].metric("Interactions", f"{stats['interactions']:,}")
    cols[3].metric("Plays", f"{stats['plays']:,.0f}")
    cols[4].metric("Density", f"{stats['density']:.3%}")
    left, middle, right = st.columns(3)
    with left:
        _histogram(stats["plays_per_interaction"], "Plays per listener-artist pair")
    with middle:
        _histogram(stats["artists_per_listener"], "Artists per listener")
    with right:
        _histogram(stats["listeners_per_artist"], "Listeners per artist")
    left, right = st.columns(2)
    with left:
        top = [{"name": a["name"], "count": a["listeners"]} for a in stats["top_artists"]]
        _bars(top, "Top artists (listeners)", "listeners")
    with right:
        _bars(stats["top_tags"], "Top tags (applications)", "applications")


def _model(api: Api) -> None:
    st.header("Model")
    try:
        model = api.get("/v1/model")
    except ApiError as exc:
        show_error(exc)
        return
    cols = st.columns(3)
    cols[0].metric("Serving version", str(model["version"]))
    kind = str(model["model_type"])
    cols[1].metric("Model type", kind.upper(), help=_model_kind(kind))
    cols[2].metric("Trained", str(model.get("trained_at") or "unknown")[:16])
    metrics = {k: v for k, v in (model.get("metrics") or {}).items() if v is not None}
    if metrics:
        table = pd.DataFrame(
            {"measure": [metric_label(k) for k in metrics], "value": list(metrics.values())}
        )
        st.dataframe(table, hide_index=True, width=520)
    try:
        found = api.get("/v1/models")
    except ApiError as exc:
        show_error(exc)
        return
    if found.get("problem"):
        st.caption(f"Version history unavailable: {found['problem']}")
    versions = list(found.get("versions", []))
    keys = _key_metrics(versions)
    rows = [
        {
            "version": str(v["version"]),
            "aliases": ", ".join(v.get("aliases", [])),
            "model type": _model_kind(str(v["model_type"])),
            "created": str(v.get("created_at") or "")[:16],
            **{metric_label(k): (v.get("metrics") or {}).get(k) for k in keys},
        }
        for v in versions
    ]
    st.subheader("Versions")
    left, right = st.columns([3, 2])
    left.dataframe(pd.DataFrame(rows), hide_index=True)
    if keys and rows:
        with right:
            first = metric_label(keys[0])
            history = [{"name": f"version {r['version']}", "count": r[first]} for r in rows]
            _bars([h for h in history if h["count"] is not None], f"{first} by version", first)


def _key_metrics(versions: list[dict[str, Any]]) -> list[str]:
    """Up to four metrics at the first cut-off shared by the versions (ndcg first)."""
    names = {k for v in versions for k in (v.get("metrics") or {})}
    order = ("ndcg", "map", "recall", "precision", "hit_rate", "coverage")
    ranked = sorted(
        (n for n in names if "@" in n and n.split("@")[0] in order),
        key=lambda n: (int(n.split("@")[1]) if n.split("@")[1].isdigit() else 999,
                       order.index(n.split("@")[0])),
    )  # fmt: skip
    return ranked[:4]


_MEASURES = {
    "ndcg": "Ranking quality",
    "map": "Mean average precision",
    "recall": "Held-out artists found",
    "precision": "Recommendations heard",
    "hit_rate": "Listeners with a hit",
    "coverage": "Catalogue shown",
}
_MODELS = {
    "als": "ALS (matrix factorisation)",
    "popularity": "Most popular",
    "ease": "EASE (item-to-item)",
    "knn": "Item neighbours (k-NN)",
    "bpr": "BPR (matrix factorisation)",
    "two_tower": "Two-tower network",
    "blend": "Blend of models",
}


def metric_label(key: str) -> str:
    """A metric key as a person reads it: ``ndcg@10`` -> ``Ranking quality (top 10)``."""
    name, _, cut = key.partition("@")
    label = _MEASURES.get(name, name.replace("_", " ").capitalize())
    return f"{label} (top {cut})" if cut else label


def _model_kind(kind: str) -> str:
    return _MODELS.get(kind, kind)


def _service(api: Api) -> None:
    st.header("Live service")
    try:
        text = api.text("/metrics")
    except ApiError as exc:
        show_error(exc)
        return
    now = parse(text, time.monotonic())
    before = st.session_state.get("scrape")
    st.session_state["scrape"] = now
    per_s = rate(now, before)
    p50, p99 = now.quantile(0.5), now.quantile(0.99)
    fallback = now.fallback_rate
    cols = st.columns(4)
    cols[0].metric("Requests (total)", f"{now.total:,.0f}")
    cols[1].metric(
        "Request rate",
        "n/a" if per_s is None else f"{per_s:,.1f}/s",
        help="Requests per second between this and the previous scrape: press Refresh.",
    )
    cols[2].metric(
        "Latency p50 / p99",
        "n/a" if p50 is None or p99 is None else f"{p50 * 1000:.1f} / {p99 * 1000:.1f} ms",
    )
    cols[3].metric(
        "Answered by popularity",
        "n/a" if fallback is None else f"{fallback:.1%}",
        help="Share of answers that fell back to the most popular artists because the service "
        "could not personalise them. New listeners answered from a mood or their picks "
        "(the app's own sessions among them) are not counted.",
    )
    left, right = st.columns(2)
    with left:
        routes = [{"name": k, "count": v} for k, v in now.by(0).items()]
        _bars(routes, "Requests by address", "requests")
    with right:
        arms = [{"name": k, "count": v} for k, v in now.by(2).items() if k != "none"]
        _bars(arms, "Requests by A/B test group", "requests")
    if now.counters:
        counts = st.columns(max(1, len(now.counters)))
        for col, (label, value) in zip(counts, now.counters.items(), strict=False):
            col.metric(label, f"{value:,.0f}")


def _listening(api: Api) -> None:
    st.header("Listeners")
    try:
        found = api.get("/v1/stats/events")
    except ApiError as exc:
        show_error(exc)
        return
    if not found.get("events"):
        st.info("No events yet: like, skip or listen in the app (or run `setlist simulate`).")
        return
    st.caption(f"From the newest {found['events']:,} events.")
    left, right = st.columns(2)
    with left:
        _over_time(found["listening"], "Organic vs recommended listening", "source", bars=True)
    with right:
        _over_time(found["moods"], "Mood popularity over time", "mood", bars=False)
    left, right = st.columns(2)
    with left:
        _bars(found["new_listener_recommendations"], "Most recommended to new listeners", "shown")
    with right:
        # an older API has no such field: the caption says there is nothing yet
        playlists = found.get("new_listener_playlists") or []
        _bars(playlists, "Playlists most recommended to new listeners", "shown")
    left, right = st.columns(2)
    with left:
        kinds = [{**row, "name": _EVENTS.get(row["name"], row["name"])} for row in found["by_type"]]
        _bars(kinds, "What listeners did", "events")
    plays = found.get("playlist_listening") or []
    if any(row.get("name") == "organic playlists" for row in plays):
        with right:
            _over_time(plays, "Listening on organic playlists vs the rest", "plays", bars=True)


_EVENTS = {
    "impression": "shown",
    "like": "liked",
    "skip": "skipped",
    "listen": "listened",
    "playlist_add": "added to a playlist",
    "playlist_follow": "followed a playlist",
    "playlist_play": "played a playlist",
    "playlist_skip": "skipped a playlist",
    "playlist_impression": "shown a playlist",
}


def _histogram(bins: list[dict[str, Any]], title: str) -> None:
    if not bins:
        st.caption(f"{title}: no data")
        return
    frame = pd.DataFrame(bins)
    frame["range"] = [
        f"{b['low']:,.0f}" if b["high"] <= b["low"] else f"{b['low']:,.0f}-{b['high']:,.0f}"
        for b in bins
    ]
    chart = (
        alt.Chart(frame, title=title, height=CHART_HEIGHT)
        .mark_bar()
        .encode(
            x=alt.X(
                "range:N", sort=None, title="range (log-spaced)", axis=alt.Axis(labelAngle=-45)
            ),
            y=alt.Y("count:Q", title="count"),
            tooltip=["range", "count"],
        )
    )
    st.altair_chart(chart, width="stretch")


def _bars(rows: list[dict[str, Any]], title: str, measure: str) -> None:
    if not rows:
        st.caption(f"{title}: no data yet")
        return
    frame = pd.DataFrame(rows)[["name", "count"]]
    chart = (
        alt.Chart(frame, title=title, height=alt.Step(BAR_STEP))
        .mark_bar()
        .encode(
            y=alt.Y("name:N", sort="-x", title=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X("count:Q", title=measure),
            tooltip=["name", "count"],
        )
    )
    st.altair_chart(chart, width="stretch")


def _over_time(rows: list[dict[str, Any]], title: str, legend: str, bars: bool) -> None:
    if not rows:
        st.caption(f"{title}: no data yet")
        return
    frame = pd.DataFrame(rows)
    base = alt.Chart(frame, title=title, height=CHART_HEIGHT)
    mark = base.mark_bar() if bars else base.mark_line(point=True)
    chart = mark.encode(
        x=alt.X("day:O", title="day", axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("count:Q", title="events", stack=True if bars else None),
        color=alt.Color("name:N", title=legend),
        tooltip=["day", "name", "count"],
    )
    st.altair_chart(chart, width="stretch")
