"""Playlist events: ``playlist_id`` on playlist_follow, playlist_play and playlist_skip.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Nullable: only playlist events carry it; every event stored before stays as it was.
    op.add_column("setlist_events", sa.Column("playlist_id", sa.String(256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("setlist_events") as batch:  # SQLite drops columns by copying
        batch.drop_column("playlist_id")
