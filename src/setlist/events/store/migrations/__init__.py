"""Alembic migrations of the event store (run by :func:`setlist.events.store.migrate.upgrade`)."""
