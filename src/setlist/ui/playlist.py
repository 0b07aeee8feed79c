"""The "Continue a playlist" page: tracks (and a name) in, the tracks that should come next out.

The listener builds a list by searching the tracks catalogue (``GET /v1/tracks/search``) or by
starting from a playlist of the dataset (``GET /v1/playlists/{pid}``), optionally names it,
and asks ``POST /v1/playlists/continue``. Each continuation shows why (the list's tracks, or
playlists named like it, that led to it) and its Spotify link; "Keep" adds it to the list, and
"Continue again" asks with the longer list. The answer is kept until the listener asks again,
so several continuations can be kept from one answer: asking at every click would replace the
list under the listener's cursor.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from setlist.ui.api import Api, ApiError
from setlist.ui.common import escape, show_error

K = 10
SEARCH_LIMIT = 8
SPOTIFY_TRACK = "spotify:track:"


def spotify_url(track_id: str) -> str | None:
    """``https://open.spotify.com/track/<id>`` for a ``spotify:track:<id>`` URI, else None."""
    if not track_id.startswith(SPOTIFY_TRACK):
        return None
    code = track_id.removeprefix(SPOTIFY_TRACK)
    return f"https://open.spotify.com/track/{code}" if code.isalnum() else None


def render(api: Api) -> None:
    st.title("Continue a playlist")
    state = st.session_state
    state.setdefault("pl_tracks", {})  # track id -> {"name", "artist"}, in playlist order
    state.setdefault("pl_answer", None)
    state.setdefault("pl_kept", set())
    notice = state.pop("pl_notice", None)
    if isinstance(notice, ApiError):
        show_error(notice)
    st.text_input("Playlist name (optional)", key="pl_name", placeholder="e.g. summer road trip")
    search, start = st.columns([3, 1])
    with search:
        _track_search(api)
    with start:
        _start_from_playlist(api)
    _the_list()
    name = str(state.get("pl_name") or "").strip()
    if not state["pl_tracks"] and not name:
        st.info("Add a few tracks, or give the playlist a name, to see how it could go on.")
        return
    label = "Continue again" if state["pl_answer"] is not None else "Continue the playlist"
    if st.button(label, key="pl_continue", type="primary"):
        try:
            state["pl_answer"] = api.continue_playlist(name or None, list(state["pl_tracks"]), K)
        except ApiError as exc:
            show_error(exc)
            return
        state["pl_kept"] = set()
    if state["pl_answer"] is not None:
        _continuations(state["pl_answer"])


def _track_search(api: Api) -> None:
    query = st.text_input("Search tracks", key="pl_query", placeholder="a title or an artist")
    query = query.strip()
    if not query:
        return
    try:
        found = api.search_tracks(query, SEARCH_LIMIT)
    except ApiError as exc:
        show_error(exc)
        return
    if not found:
        st.caption(f"No track matches {query!r}.")
        return
    for track in found:
        item_id = str(track["item_id"])
        label = _label(track)
        st.button(
            f"Add {label}",
            key=f"pl-add-{item_id}",
            on_click=_add,
            args=(item_id, _track(track)),
            disabled=item_id in st.session_state["pl_tracks"],
        )


def _start_from_playlist(api: Api) -> None:
    """Replace the list (and the name) with one of the dataset's playlists."""
    pid = st.text_input("Start from playlist id", key="pl_pid", placeholder="e.g. 1000")
    st.button("Load", key="pl_load", disabled=not pid.strip(), on_click=_load, args=(api,))


def _load(api: Api) -> None:
    """Button callback (runs before the rerun, so it may set the name box's value)."""
    state = st.session_state
    pid = str(state.get("pl_pid") or "").strip()
    try:
        found = api.playlist(pid)
    except ApiError as exc:
        state["pl_notice"] = exc
        return
    tracks: dict[str, dict[str, str]] = {}
    for track in found.get("tracks", []):
        item_id = str(track["item_id"])
        tracks[item_id] = _track(track)
    state["pl_tracks"] = tracks
    state["pl_name"] = str(found.get("name") or "")
    state["pl_answer"] = None
    state["pl_kept"] = set()


def _the_list() -> None:
    tracks: dict[str, dict[str, str]] = st.session_state["pl_tracks"]
    if not tracks:
        return
    st.subheader(f"Your playlist ({len(tracks)} track{'' if len(tracks) == 1 else 's'})")
    for n, (item_id, track) in enumerate(list(tracks.items())):
        text, remove = st.columns([6, 1])
        text.markdown(f"{n + 1}\\. {_linked(item_id, track)}")
        remove.button("Remove", key=f"pl-remove-{item_id}", on_click=_remove, args=(item_id,))


_HOW = {  # how the continuation was made, in a listener's words
    "seeds": "From the tracks in your playlist",
    "tracks": "From the tracks in your playlist",
    "seeds_title": "From your tracks and the playlist's name",
    "title": "From playlists named like yours",
    "popular": "Popular tracks (your tracks and name said too little yet)",
}


def _continuations(answer: dict[str, Any]) -> None:
    items: list[dict[str, Any]] = list(answer.get("items", []))
    st.subheader("How it could go on")
    st.caption(_HOW.get(str(answer.get("strategy")), "Chosen for your playlist"))
    unknown = answer.get("unknown_tracks") or []
    if unknown:
        st.warning("Not in the catalogue, so not used: " + ", ".join(map(str, unknown)))
    if not items:
        st.info("No continuation for this list: add other tracks or change the name.")
        return
    kept: set[str] = st.session_state["pl_kept"]
    for position, item in enumerate(items):
        item_id = str(item["item_id"])
        with st.container(border=True):
            text, keep = st.columns([6, 1])
            track = _track(item)
            text.markdown(f"**Next {position + 1}.** {_linked(item_id, track)}")
            text.caption(_why(item, answer))
            keep.button(
                "Kept" if item_id in kept else "Keep",
                key=f"pl-keep-{item_id}",
                on_click=_keep,
                args=(item_id, track),
                disabled=item_id in kept,
            )


def _why(item: dict[str, Any], answer: dict[str, Any]) -> str:
    because = [str(b.get("name") or b.get("item_id")) for b in item.get("because") or []]
    if because:
        return "Because of " + ", ".join(because)
    strategy = answer.get("strategy")
    if strategy == "title":
        return "Often in playlists named like yours"
    if strategy == "popular":
        return "On many playlists (nothing in this list to go on yet)"
    return "Scored by the model for the list as a whole (no one track stands out)"


def _track(item: dict[str, Any]) -> dict[str, str]:
    return {
        "name": str(item.get("name") or item["item_id"]),
        "artist": str(item.get("artist") or ""),
    }


def _label(track: dict[str, Any]) -> str:
    name, artist = str(track.get("name") or track["item_id"]), track.get("artist")
    return f"{name} by {artist}" if artist else name


def _linked(item_id: str, track: dict[str, str]) -> str:
    """The track's name as a Spotify link (where the id is a Spotify URI), and its artist."""
    url = spotify_url(item_id)
    title = f"[{escape(track['name'])}]({url})" if url else escape(track["name"])
    return f"{title} · {escape(track['artist'])}" if track.get("artist") else title


def _add(item_id: str, track: dict[str, str]) -> None:
    st.session_state["pl_tracks"][item_id] = track


def _remove(item_id: str) -> None:
    st.session_state["pl_tracks"].pop(item_id, None)


def _keep(item_id: str, track: dict[str, str]) -> None:
    st.session_state["pl_tracks"][item_id] = track
    st.session_state["pl_kept"].add(item_id)
