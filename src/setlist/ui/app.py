"""The Streamlit app's entry: settings, the shared API client and the five pages.

This is the edge of the UI process (Streamlit runs it as a script through
:mod:`setlist.ui.streamlit_app`), so it is where the UI reads its settings, the API URL
(``SETLIST_UI_API_URL``) and the key it sends (``SETLIST_API_KEY``, when the API needs one).
The client is kept per browser session: Streamlit reruns the script on every click, and button
callbacks run before the rerun with the previous run's objects.
"""

from __future__ import annotations

import streamlit as st

from setlist.config import get_settings
from setlist.ui import buddies, dashboard, listener, organic, playlist
from setlist.ui.api import Api, ApiError


def session_api(url: str, api_key: str | None = None) -> Api:
    """This session's client for ``url`` (a new one when the URL changed), sending the key."""
    api = st.session_state.get("api")
    if not isinstance(api, Api) or api.base_url != url.rstrip("/"):
        api = Api(url, api_key=api_key)
        st.session_state["api"] = api
    return api


def main() -> None:
    st.set_page_config(page_title="setlist", page_icon=":musical_note:", layout="wide")
    settings = get_settings()
    key = settings.api_key.get_secret_value() if settings.api_key else None
    api = session_api(settings.ui_api_url, key)
    _sidebar(api)
    pages = [
        st.Page(listen_page, title="Listen", url_path="listen", default=True),
        st.Page(buddies_page, title="Your taste buddies", url_path="buddies"),
        st.Page(organic_page, title="Playlists from people like you", url_path="playlists"),
        st.Page(playlist_page, title="Continue a playlist", url_path="playlist"),
        st.Page(dashboard_page, title="Dashboard", url_path="dashboard"),
    ]
    st.navigation(pages).run()


def listen_page() -> None:
    listener.render(st.session_state["api"])


def buddies_page() -> None:
    buddies.render(st.session_state["api"])


def organic_page() -> None:
    organic.render(st.session_state["api"])


def playlist_page() -> None:
    playlist.render(st.session_state["api"])


def dashboard_page() -> None:
    dashboard.render(st.session_state["api"])


def _sidebar(api: Api) -> None:
    """Which API the app talks to and whether it is ready, on every page."""
    with st.sidebar:
        st.caption(f"API: {api.base_url}")
        try:
            ready = api.ready()
        except ApiError as exc:
            st.error(exc.message)
        else:
            st.caption("Service ready" if ready.get("status", "ready") == "ready" else "Starting")
