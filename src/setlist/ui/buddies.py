"""The "Your taste buddies" page: listeners whose taste is closest, what you share, what's new.

A new listener's buddies come from the artists they picked on the Listen page (the session's
picks, ``POST /v1/buddies``); a listener of the dataset enters their id
(``GET /v1/users/{id}/buddies``). Each buddy shows the artists both love and the buddy's
favourites the listener has not heard; "Add" puts one of those among the listener's picks, so
the Listen page and this list follow it at once.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from setlist.ui.api import Api, ApiError
from setlist.ui.common import KNOWN, PICKS, escape, show_error

K = 10


def render(api: Api) -> None:
    st.title("Your taste buddies")
    st.caption("Listeners whose taste is closest to yours: what you share, what they could show.")
    state = st.session_state
    state.setdefault("seeds", {})  # shared with the Listen page: item id -> name
    notice = state.pop("buddies_notice", None)
    if notice:
        st.toast(notice, icon=":material/check_circle:")
    mode = st.radio("Whose buddies?", [PICKS, KNOWN], horizontal=True, key="buddies_mode")
    if mode == KNOWN:
        user = st.text_input("Listener id", key="buddies_user", placeholder="e.g. 2").strip()
        if not user:
            st.info("Enter a listener id from the dataset.")
            return
        try:
            found = api.buddies(user, K)
        except ApiError as exc:
            if exc.kind == "not_found":
                st.info(f"Listener {user!r} is not in the training data: pick artists instead.")
            else:
                show_error(exc)
            return
        _buddy_list(found, heard=None)
        return
    seeds: dict[str, str] = state["seeds"]
    if not seeds:
        st.info("Pick a few artists you like on the Listen page: your buddies follow from them.")
        return
    st.caption("From your picks: " + ", ".join(map(escape, seeds.values())))
    try:
        answer = api.seed_buddies(list(seeds), K)
    except ApiError as exc:
        show_error(exc)
        return
    _buddy_list(list(answer.get("items", [])), heard=seeds)


def _buddy_list(found: list[dict[str, Any]], heard: dict[str, str] | None) -> None:
    if not found:
        st.info("Nobody shares these artists yet: pick another one.")
        return
    for buddy in found:
        user = str(buddy["user_id"])
        with st.container(border=True):
            st.markdown(f"**Listener {escape(user)}** · {float(buddy['similarity']):.0%} alike")
            shared = [escape(a["name"]) for a in buddy.get("shared", [])]
            if shared:
                st.caption("You both love: " + ", ".join(shared))
            discoveries = list(buddy.get("discoveries", []))
            if not discoveries:
                continue
            st.caption("They could show you:")
            cols = st.columns(min(len(discoveries), 5))
            for n, artist in enumerate(discoveries[:5]):
                item_id, name = str(artist["item_id"]), str(artist["name"])
                if heard is None:
                    cols[n].markdown(escape(name))
                    continue
                cols[n].button(
                    f"Add {name}",
                    key=f"buddy-add-{user}-{item_id}",
                    help="Add to your picks: the Listen page and this list follow it.",
                    on_click=_add,
                    args=(item_id, name),
                    disabled=item_id in heard,
                )


def _add(item_id: str, name: str) -> None:
    st.session_state["seeds"][item_id] = name
    st.session_state["buddies_notice"] = f"Added {name} to your picks."
