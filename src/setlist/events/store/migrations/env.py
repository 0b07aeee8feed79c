"""Alembic environment: the caller hands over an open SQLAlchemy connection (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from setlist.events.store.base import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
