"""The script AppTest runs: one page of the app on its own, with a client for a given URL.

AppTest runs a function's *source* as the script, so it imports what it needs itself; the page
is named by its module under ``setlist.ui`` (``AppTest.from_function(page, args=(url,
"buddies"))``).
"""

from __future__ import annotations


def page(url: str, name: str, timeout_s: float = 5.0) -> None:
    import importlib

    import streamlit as st

    from setlist.ui.api import Api

    if "api" not in st.session_state:
        st.session_state["api"] = Api(url, timeout_s=timeout_s)
    importlib.import_module(f"setlist.ui.{name}").render(st.session_state["api"])
