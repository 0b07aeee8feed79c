"""The listener's page: a mood and a few artists (or a listener id) -> artists to hear next.

A new listener is anonymous: the page gives the session an id (``ui-...``) so that its likes
and skips are real events (``POST /v1/events``), and asks ``POST /v1/recommendations`` with the
chosen artists plus the liked ones as seeds, the liked and skipped ones excluded, so every click
visibly changes the list at once. With a mood and no artists it asks the session user's
recommendations (the mood's best artists, then, as likes arrive, the online fold-in). A known
listener gets their own recommendations, a history summary and artists similar to their
favourite. The items shown are logged as impressions (what the dashboard's organic vs
recommended split and the counterfactual estimators read).
"""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from setlist.ui.api import Api, ApiError, event
from setlist.ui.common import escape, show_error

K = 10
TYPEAHEAD = 20_000  # artists offered for type-ahead, most heard first (the rest: search on Enter)
NEW, KNOWN = "I'm new: a mood and artists I like", "I have a listener id"
ANY_MOOD = "any mood"
ALSO_CLOSE = 0.1  # a heard artist's least share of the score to be named beside the mood


def render(api: Api) -> None:
    st.title("setlist: artists for you")
    _init_session()
    _show_notice()
    mode = st.radio("How shall we start?", [NEW, KNOWN], horizontal=True, key="mode")
    mood = _mood_picker(api)
    if mode == NEW:
        _new_listener(api, mood)
    else:
        _known_listener(api, mood)


def _init_session() -> None:
    state = st.session_state
    state.setdefault("anon_id", f"ui-{uuid.uuid4().hex[:12]}")
    state.setdefault("seeds", {})  # item id -> name, in the order chosen
    state.setdefault("liked", {})
    state.setdefault("skipped", {})
    state.setdefault("shown", set())  # (user, item) impressions already logged
    state.setdefault("notice", None)


def _show_notice() -> None:
    """The last click's outcome: a failure at the top of the page, a confirmation as a toast
    (it shows where the listener is, however far down the list they clicked)."""
    notice = st.session_state.get("notice")
    if notice:
        kind, text = notice
        if kind == "error":
            st.error(text)
        else:
            st.toast(text, icon=":material/check_circle:")
        st.session_state["notice"] = None


def _mood_picker(api: Api) -> str | None:
    try:
        moods = api.moods()
    except ApiError as exc:
        if exc.kind == "missing":
            st.info("This service offers no moods yet: recommendations follow your artists only.")
        else:
            show_error(exc)
        return None
    names = [ANY_MOOD] + [str(m["name"]) for m in moods]
    about = {str(m["name"]): str(m.get("description", "")) for m in moods}
    choice = st.radio("Mood", names, horizontal=True, key="mood")
    if choice and choice != ANY_MOOD:
        st.caption(about.get(choice, ""))
        return str(choice)
    return None


def _new_listener(api: Api, mood: str | None) -> None:
    state = st.session_state
    _artist_picker(api)
    _picks()
    seeds = list(state["seeds"]) + [i for i in state["liked"] if i not in state["seeds"]]
    exclude = list(state["liked"]) + list(state["skipped"])
    user = str(state["anon_id"])
    if not seeds and mood is None:
        st.info("Pick a mood, or find an artist you like, to get recommendations.")
        return
    try:
        if seeds:
            answer = api.onboard(seeds, K, mood, exclude)
        else:
            answer = api.recommendations(user, K, mood, exclude)
    except ApiError as exc:
        show_error(exc)
        return
    if answer.get("unknown_seeds"):
        st.warning("Not in the catalogue: " + ", ".join(map(str, answer["unknown_seeds"])))
    _recommendation_list(api, user, answer, mood)


def _artist_picker(api: Api) -> None:
    """Type-ahead over the 20,000 most heard artists (all of HetRec), filtered in the browser
    at every keystroke; a name outside them, confirmed with Enter, is searched in the whole
    catalogue (a 300k-artist catalogue would send megabytes of names to every session)."""
    popular = _popular(api)
    st.selectbox(
        "Find artists you like",
        options=list(popular),
        format_func=lambda i: popular.get(i, str(i)),
        index=None,
        placeholder="Start typing an artist's name",
        key="artist_pick",
        accept_new_options=True,
        on_change=_picked,
        args=(popular,),
    )
    state = st.session_state
    query = str(state.get("artist_query") or "").strip()
    typed = state.pop("artist_typed", None)  # text confirmed with Enter: pick its best match
    if not query:
        return
    try:
        found = api.search(query)
    except ApiError as exc:
        show_error(exc)
        return
    if not found:
        st.caption(f"No artist matches {query!r}.")
        return
    if typed:
        best = _best_match(str(typed), found)
        state["seeds"][str(best["item_id"])] = str(best["name"])
        state["picks"] = list(state["seeds"])
    others = [a for a in found if str(a["item_id"]) not in state["seeds"]]
    if not others:
        return
    st.caption(f"Other artists matching {query!r}:")
    cols = st.columns(4)
    for n, artist in enumerate(others):
        item_id, name = str(artist["item_id"]), str(artist["name"])
        cols[n % 4].button(
            f"Add {name}",
            key=f"add-{item_id}",
            on_click=_add_seed,
            args=(item_id, name),
            disabled=item_id in st.session_state["seeds"],
        )


def _best_match(typed: str, found: list[dict[str, Any]]) -> dict[str, Any]:
    """The artist named exactly as typed (ignoring case), else the search's first (a name
    starting with the text, most heard first)."""
    wanted = typed.strip().casefold()
    return next((a for a in found if str(a["name"]).casefold() == wanted), found[0])


def _picks() -> None:
    """The chosen artists as chips (x removes one)."""
    state = st.session_state
    if not state["seeds"]:
        return
    state["picks"] = list(state["seeds"])
    names = dict(state["seeds"])
    st.multiselect(
        "Your picks",
        options=list(names),
        format_func=lambda i: names.get(i, str(i)),
        key="picks",
        on_change=_picks_changed,
    )


def _picks_changed() -> None:
    state = st.session_state
    kept = set(state.get("picks") or [])
    state["seeds"] = {i: n for i, n in state["seeds"].items() if i in kept}


def _popular(api: Api) -> dict[str, str]:
    """The most heard artists (id -> name), fetched once per session; empty if the API can't."""
    cached = st.session_state.get("popular")
    if isinstance(cached, dict):
        return cached
    try:
        found = api.search("", TYPEAHEAD)
    except ApiError as exc:
        if exc.kind in ("missing", "refused"):
            st.session_state["popular"] = {}  # an older API: search by name only
        else:
            show_error(exc)
        return {}
    popular = {str(a["item_id"]): str(a["name"]) for a in found}
    st.session_state["popular"] = popular
    return popular


def _picked(popular: dict[str, str]) -> None:
    """Selectbox callback: a known artist becomes a seed; text typed and confirmed with Enter
    becomes a search whose best match the next run picks (the rest are offered)."""
    state = st.session_state
    value = state.get("artist_pick")
    if value is None:
        return
    if value in popular:
        state["seeds"][value] = popular[value]
        state["artist_query"] = ""
    else:
        state["artist_query"] = state["artist_typed"] = str(value)
    state["artist_pick"] = None


def _known_listener(api: Api, mood: str | None) -> None:
    state = st.session_state
    user = st.text_input("Listener id", key="listener_id", placeholder="e.g. 2").strip()
    if not user:
        st.info("Enter a listener id from the dataset.")
        return
    left, right = st.columns([3, 2])
    with right:
        _history(api, user)
    with left:
        exclude = list(state["liked"]) + list(state["skipped"])
        try:
            answer = api.recommendations(user, K, mood, exclude)
        except ApiError as exc:
            show_error(exc)
            return
        _recommendation_list(api, user, answer, mood)


def _history(api: Api, user: str) -> None:
    st.subheader("Listening history")
    try:
        history = api.history(user)
    except ApiError as exc:
        if exc.kind == "not_found":
            st.info(f"Listener {user!r} is not in the training data: no history to show.")
        else:
            show_error(exc)
        return
    st.caption(f"{history['artists']:,} artists, {history['plays']:,.0f} plays")
    top = history.get("top_artists", [])[:8]
    if top:
        st.markdown("\n".join(f"- {escape(a['name'])} ({a['count']:,.0f} plays)" for a in top))
    tags = [escape(t["name"]) for t in history.get("top_tags", [])[:8]]
    if tags:
        st.caption("Tags: " + ", ".join(tags))
    favourite = next((a for a in top if a.get("item_id")), None)
    if favourite is None:
        return
    st.subheader(f"Similar to {favourite['name']}")
    try:
        similar = api.similar(str(favourite["item_id"]))
    except ApiError as exc:
        show_error(exc)
        return
    st.markdown("\n".join(f"- {escape(i['name'])}" for i in similar.get("items", [])))


def _recommendation_list(api: Api, user: str, answer: dict[str, Any], mood: str | None) -> None:
    items: list[dict[str, Any]] = list(answer.get("items", []))
    strategy = str(answer.get("strategy", "?"))
    st.subheader("Recommended for you")
    if strategy == "popular_fallback":
        st.warning(
            "The service cannot personalise right now: these are popular artists, "
            "not picks for you."
        )
    st.caption(_how(strategy, mood))
    done = [
        f"{verb}: " + ", ".join(map(escape, names.values()))
        for verb, names in (
            ("Liked", st.session_state["liked"]),
            ("Skipped", st.session_state["skipped"]),
        )
        if names
    ]
    if done:
        st.caption(" · ".join(done))
    if not items:
        st.info("Nothing left to recommend with these choices: try another mood or artist.")
        return
    links = _links(api, [str(i["item_id"]) for i in items if not i.get("url")])
    for position, item in enumerate(items):
        item.setdefault("url", links.get(str(item["item_id"])))
        _item_card(user, item, position, answer, mood)
    _log_impressions(api, user, items, answer)


def _links(api: Api, item_ids: list[str]) -> dict[str, str]:
    """Artist pages by id; none (and no message) where the API cannot say."""
    try:
        found = api.artists(item_ids)
    except ApiError:
        return {}
    return {i: str(a["url"]) for i, a in found.items() if a.get("url")}


def _item_card(
    user: str, item: dict[str, Any], position: int, answer: dict[str, Any], mood: str | None
) -> None:
    item_id, name = str(item["item_id"]), str(item["name"])
    url = str(item.get("url") or "")
    with st.container(border=True):
        text, like, skip = st.columns([6, 1, 1])
        title = f"[{escape(name)}]({url})" if url else escape(name)
        text.markdown(f"**{position + 1}. {title}**")
        text.caption(_why(item, answer, mood))
        args = (user, item_id, name, position, answer)
        like.button("Like", key=f"like-{item_id}", on_click=_feedback, args=("like", *args))
        skip.button("Skip", key=f"skip-{item_id}", on_click=_feedback, args=("skip", *args))


def _how(strategy: str, mood: str | None) -> str:
    """How the list was made, in a listener's words (no strategy, arm or model names)."""
    feeling = f" for a {mood} mood" if mood else ""
    return {
        "onboarding": f"Chosen from the artists you picked{feeling}",
        "personalized": f"Chosen from your listening{feeling}",
        "personalized_online": f"Chosen from what you liked here{feeling}",
        "mood": f"The artists that best fit a {mood} mood" if mood else "Fitting the mood",
        "popular_fallback": "Popular with listeners",
    }.get(strategy, f"Chosen for you{feeling}")


def _why(item: dict[str, Any], answer: dict[str, Any], mood: str | None) -> str:
    because = item.get("because", [])
    moods = [str(b["name"]) for b in because if b.get("kind") == "mood"]
    least = ALSO_CLOSE if moods else 0.0  # beside the mood, only heard artists that counted
    heard = [
        str(b["name"])
        for b in because
        if b.get("kind", "item") != "mood" and float(b.get("contribution") or 0) >= least
    ]
    if moods and heard:
        return f"Picked by the {moods[0]} mood · also close to " + ", ".join(heard)
    if moods:
        return f"Picked by the {moods[0]} mood"
    if heard:
        return "Because you like " + ", ".join(heard)
    strategy = answer.get("strategy")
    if strategy == "mood" and mood:
        return f"One of the best artists for {mood}"
    if strategy == "popular_fallback":
        return "Popular with listeners"
    if item.get("new_item"):
        return "New in the catalogue"
    return "Close to your taste"


def _feedback(
    kind: str, user: str, item_id: str, name: str, position: int, answer: dict[str, Any]
) -> None:
    """Button callback (runs before the rerun): send the event, then remember it locally."""
    state = st.session_state
    try:
        api: Api = state["api"]
        api.send_events([event(user, item_id, kind, answer, position)])
    except ApiError as exc:
        state["notice"] = ("error", f"Your {kind} was not recorded: {exc.message}")
        return
    (state["liked"] if kind == "like" else state["skipped"])[item_id] = name
    verb = "Liked" if kind == "like" else "Skipped"
    state["notice"] = ("ok", f"{verb} {name}: your list is updated.")


def _log_impressions(
    api: Api, user: str, items: list[dict[str, Any]], answer: dict[str, Any]
) -> None:
    shown: set[tuple[str, str]] = st.session_state["shown"]
    events = []
    for position, item in enumerate(items):
        key = (user, str(item["item_id"]))
        if key in shown:
            continue
        shown.add(key)
        body = event(user, key[1], "impression", answer, position)
        propensity = item.get("propensity")
        if isinstance(propensity, int | float) and 0 < propensity <= 1:
            body["propensity"] = float(propensity)
        events.append(body)
    if events:
        try:
            api.send_events(events)
        except ApiError:
            pass  # impressions are for analysis; the listener need not hear about it


def _add_seed(item_id: str, name: str) -> None:
    st.session_state["seeds"][item_id] = name
