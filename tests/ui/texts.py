"""What an AppTest page shows in words: every heading, text and message, one per line."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

KINDS = ("subheader", "markdown", "caption", "info", "warning", "error", "success")


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in KINDS for e in getattr(at, kind))
