"""Run the event store's Alembic migrations over a SQLAlchemy URL (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x5E715  # any constant: serialises concurrent upgrades of one database


def upgrade(url: str, connect_args: dict[str, Any] | None = None, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` (idempotent: a current schema is left as is)."""
    engine = sa.create_engine(url, connect_args=connect_args or {}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # Two processes opening a fresh schema at once must not both create the table.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
    finally:
        engine.dispose()


def current(url: str, connect_args: dict[str, Any] | None = None) -> str | None:
    """The revision the schema at ``url`` is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    from setlist.events.store.base import VERSION_TABLE

    engine = sa.create_engine(url, connect_args=connect_args or {}, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return ctx.get_current_revision()
    finally:
        engine.dispose()
