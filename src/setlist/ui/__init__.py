"""The listener's app and the data dashboard: a Streamlit app that talks only to the HTTP API.

``setlist ui`` runs :mod:`setlist.ui.streamlit_app` with Streamlit; the pages are in
:mod:`setlist.ui.listener` and :mod:`setlist.ui.dashboard`, the API client in
:mod:`setlist.ui.api`. Nothing here reads the registry, the event store or a model directly, so
the app can run anywhere the API can be reached.
"""
