"""The "Playlists from people like you" page: real, human-made playlists chosen for a listener.

A new listener's playlists follow the artists they picked on the Listen page (the session's
picks, ``POST /v1/recommendations/playlists``; no pick yet: the most followed); a listener of the
dataset enters their id (``GET /v1/users/{id}/playlists``). Each playlist says why in words
(artists you know, artists new to you, how many of your taste buddies love it), with its
followers and tracks; a slider trades familiar for discovery.

The cards shown are logged as one batch of ``playlist_impression`` events (each listener, ranker
version and playlist once a session; a failure to send is ignored). Follow and Skip send
``playlist_follow`` / ``playlist_skip`` events (``item_id`` is the playlist id: the answer names
no track) and change the list at once: a skipped playlist leaves it for
the session; a followed one leaves the recommendations for the "Followed" section above them.
The next playlists move up, so the list stays full. Without a saved organic ranker (503) the
page says how to train one.
"""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from setlist.ui.api import Api, ApiError, event
from setlist.ui.common import KNOWN, PICKS, escape, show_error

K = 10
MAX_K = 50  # the API's most playlists per request
NAMES = 4  # artists named per reason before "and N more"
# The API's serendipity (0: most familiar, 1: most discovery), in words.
ADVENTURE = {
    0.0: "Only what I know",
    0.3: "Mostly familiar",
    0.5: "Half and half",
    0.7: "Mostly new",
    1.0: "All discovery",
}


def render(api: Api) -> None:
    st.title("Playlists from people like you")
    st.caption("Playlists real people made and follow, chosen from the music you love.")
    state = st.session_state
    state.setdefault("seeds", {})  # shared with the Listen page: item id -> name
    state.setdefault("anon_id", f"ui-{uuid.uuid4().hex[:12]}")  # as the Listen page does
    state.setdefault("organic_followed", {})  # listener -> {playlist id: playlist}
    state.setdefault("organic_skipped", {})  # listener -> {playlist id: name}
    state.setdefault("organic_shown", set())  # (listener, ranker version, playlist id) logged
    _notice()
    mode = st.radio("Whose playlists?", [PICKS, KNOWN], horizontal=True, key="organic_mode")
    serendipity = float(
        st.select_slider(
            "Familiar ⟷ Discovery",
            options=list(ADVENTURE),
            value=0.3,
            format_func=ADVENTURE.get,
            key="organic_serendipity",
            help="Left: playlists full of artists you know. Right: more artists new to you.",
        )
    )
    if mode == KNOWN:
        user = st.text_input("Listener id", key="organic_user", placeholder="e.g. 2").strip()
        if not user:
            st.info("Enter a listener id from the dataset.")
            return
    else:
        user = str(state["anon_id"])
        seeds: dict[str, str] = state["seeds"]
        if seeds:
            st.caption("From your picks: " + ", ".join(map(escape, seeds.values())))
        else:
            st.info(
                "You have not picked any artists yet: here are the most followed playlists. "
                "Pick a few artists on the Listen page to make them yours."
            )
    followed: dict[str, dict[str, Any]] = state["organic_followed"].setdefault(user, {})
    skipped: dict[str, str] = state["organic_skipped"].setdefault(user, {})
    k = min(MAX_K, K + len(followed) + len(skipped))  # enough left once they are set aside
    try:
        if mode == KNOWN:
            answer = api.user_playlists(user, k, serendipity)
        else:
            answer = api.seed_playlists(list(state["seeds"]), k, serendipity)
    except ApiError as exc:
        _explain(exc, user if mode == KNOWN else None)
        return
    _followed(followed)
    hidden = set(followed) | set(skipped)
    shown = [p for p in answer.get("items", []) if str(p["playlist_id"]) not in hidden]
    if not shown:
        st.info("No more playlists to suggest: move the slider or pick other artists.")
        return
    st.subheader("For you")
    for position, playlist in enumerate(shown[:K]):
        _card(user, playlist, position, answer)
    _log_impressions(api, user, shown[:K], answer)


def _explain(exc: ApiError, user: str | None) -> None:
    """The page's failures in a listener's words; a missing ranker says how to make one."""
    message = exc.message.lower()
    if exc.kind == "unavailable" and "organic" in message and "loading" not in message:
        st.warning(
            "Playlists from people like you are not ready: the playlist ranker has not been "
            "trained yet. Whoever runs setlist can train it with `setlist organic train`, "
            "then restart the API."
        )
    elif exc.kind == "not_found" and user is not None:
        st.info(f"Listener {user!r} is not in the training data: pick artists instead.")
    else:
        show_error(exc)


def reasons(because: dict[str, Any]) -> str:
    """Why a playlist, in words: "You know: A, B · New to you: C · Loved by 2 of your taste
    buddies" (the parts that apply; none: it is among the most followed)."""
    parts = []
    for label, key in (("You know", "familiar"), ("New to you", "new")):
        names = [str(a["name"]) for a in because.get(key, [])]
        if names:
            more = f" and {len(names) - NAMES} more" if len(names) > NAMES else ""
            parts.append(f"{label}: " + ", ".join(names[:NAMES]) + more)
    buddies = len(because.get("buddies", []))
    if buddies:
        who = "one of your taste buddies" if buddies == 1 else f"{buddies} of your taste buddies"
        parts.append(f"Loved by {who}")
    return " · ".join(parts) if parts else "One of the most followed playlists"


def _counts(playlist: dict[str, Any]) -> str:
    followers, tracks = int(playlist["num_followers"]), int(playlist["num_tracks"])
    return (
        f"{followers:,} follower{'' if followers == 1 else 's'} · "
        f"{tracks:,} track{'' if tracks == 1 else 's'}"
    )


def _card(user: str, playlist: dict[str, Any], position: int, answer: dict[str, Any]) -> None:
    pid, name = str(playlist["playlist_id"]), str(playlist["name"])
    with st.container(border=True):
        st.markdown(f"**{escape(name)}** · {_counts(playlist)}")
        st.caption(escape(reasons(playlist.get("because", {}))))
        follow, skip, _ = st.columns([1, 1, 6])
        args = (user, playlist, position, answer)
        follow.button("Follow", key=f"organic-follow-{pid}", on_click=_send, args=("follow", *args))
        skip.button("Skip", key=f"organic-skip-{pid}", on_click=_send, args=("skip", *args))


def _followed(followed: dict[str, dict[str, Any]]) -> None:
    if not followed:
        return
    st.subheader("Followed")
    for playlist in followed.values():
        st.markdown(f"✓ **{escape(playlist['name'])}** · {_counts(playlist)}")


def _send(
    kind: str, user: str, playlist: dict[str, Any], position: int, answer: dict[str, Any]
) -> None:
    """Button callback (runs before the rerun): send the event, then set the playlist aside."""
    state = st.session_state
    pid, name = str(playlist["playlist_id"]), str(playlist["name"])
    served = {"arm": answer.get("champion"), "model_version": answer.get("version")}
    body = {**event(user, pid, f"playlist_{kind}", served, position), "playlist_id": pid}
    try:
        api: Api = state["api"]
        api.send_events([body])
    except ApiError as exc:
        state["organic_notice"] = ("error", f"Your {kind} of {name} was not recorded: {exc}")
        return
    if kind == "follow":
        state["organic_followed"][user][pid] = playlist
        state["organic_notice"] = ("ok", f"Followed {name}.")
    else:
        state["organic_skipped"][user][pid] = name
        state["organic_notice"] = ("ok", f"Skipped {name}: it will not come back.")


def _log_impressions(
    api: Api, user: str, playlists: list[dict[str, Any]], answer: dict[str, Any]
) -> None:
    """One batch of ``playlist_impression`` events for the cards shown, each (listener, ranker
    version, playlist) once a session: Streamlit reruns the page on every click."""
    shown: set[tuple[str, str, str]] = st.session_state["organic_shown"]
    served = {"arm": answer.get("champion"), "model_version": answer.get("version")}
    events = []
    for position, playlist in enumerate(playlists):
        pid = str(playlist["playlist_id"])
        key = (user, str(answer.get("version", "")), pid)
        if key in shown:
            continue
        shown.add(key)
        body = {**event(user, pid, "playlist_impression", served, position), "playlist_id": pid}
        propensity = _propensity(playlist.get("propensity", answer.get("propensity")))
        if propensity is not None:
            body["propensity"] = propensity
        events.append(body)
    if events:
        try:
            api.send_events(events)
        except ApiError:
            pass  # impressions are for the dashboard; the listener need not hear about it


def _propensity(value: Any) -> float | None:
    """A probability the API stated (in (0, 1]; never a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value <= 1 else None


def _notice() -> None:
    notice = st.session_state.pop("organic_notice", None)
    if notice:
        kind, text = notice
        if kind == "error":
            st.error(text)
        else:
            st.toast(text, icon=":material/check_circle:")
