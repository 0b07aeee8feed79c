"""Small pieces the pages share: how an API failure is shown, and safe markdown."""

from __future__ import annotations

import re

import streamlit as st

from setlist.ui.api import ApiError

# Whose buddies or playlists a page shows: the artists picked on the Listen page, or a listener
# of the training data by id.
PICKS, KNOWN = "From the artists I picked", "I have a listener id"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$~])")


def escape(text: object) -> str:
    """Text shown literally inside markdown (artist names hold brackets, stars, dollars)."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def show_error(exc: ApiError) -> None:
    """One readable message per kind of failure: never a stack trace."""
    if exc.kind in ("unreachable", "broken"):
        st.error(exc.message)
    elif exc.kind in ("slow", "unavailable"):
        st.warning(exc.message)
    else:
        st.info(exc.message)
