"""Scripts AppTest runs: one page on its own, with a client for a given URL and timeout.

AppTest runs a function's *source* as the script, so each one imports what it needs.
"""

from __future__ import annotations


def listener_page(url: str, timeout_s: float = 5.0) -> None:
    import streamlit as st

    from setlist.ui import listener
    from setlist.ui.api import Api

    if "api" not in st.session_state:
        st.session_state["api"] = Api(url, timeout_s=timeout_s)
    listener.render(st.session_state["api"])


def dashboard_page(url: str, timeout_s: float = 5.0) -> None:
    import streamlit as st

    from setlist.ui import dashboard
    from setlist.ui.api import Api

    if "api" not in st.session_state:
        st.session_state["api"] = Api(url, timeout_s=timeout_s)
    dashboard.render(st.session_state["api"])


def playlist_page(url: str, timeout_s: float = 5.0) -> None:
    import streamlit as st

    from setlist.ui import playlist
    from setlist.ui.api import Api

    if "api" not in st.session_state:
        st.session_state["api"] = Api(url, timeout_s=timeout_s)
    playlist.render(st.session_state["api"])


def buddies_page(url: str, timeout_s: float = 5.0) -> None:
    import streamlit as st

    from setlist.ui import buddies
    from setlist.ui.api import Api

    if "api" not in st.session_state:
        st.session_state["api"] = Api(url, timeout_s=timeout_s)
    buddies.render(st.session_state["api"])


def organic_page(url: str, timeout_s: float = 5.0) -> None:
    import streamlit as st

    from setlist.ui import organic
    from setlist.ui.api import Api

    if "api" not in st.session_state:
        st.session_state["api"] = Api(url, timeout_s=timeout_s)
    organic.render(st.session_state["api"])
