"""Event stores behind one interface: SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from setlist.errors import ConfigError
from setlist.events.store.base import EventStore


def open_store(url: str) -> EventStore:
    """The store a URL names: ``sqlite:///PATH`` or ``postgresql://USER@HOST:PORT/DB``."""
    if url.startswith("sqlite:"):
        from setlist.events.store.sqlite import SQLiteEventStore, sqlite_path

        return SQLiteEventStore(sqlite_path(url))
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from setlist.events.store.postgres import PostgresEventStore

        return PostgresEventStore(url)
    raise ConfigError(
        f"unknown event store URL {url!r}; use sqlite:///PATH or postgresql://...",
        field="events_store_url",
    )


__all__ = ["EventStore", "open_store"]
