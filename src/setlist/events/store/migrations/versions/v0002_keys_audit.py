"""API keys (hashed) and the audit trail, beside the events (every worker and replica sees them).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "setlist_api_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),  # HMAC-SHA256 of the key, hex
        sa.Column("scopes", sa.String(64), nullable=False),  # comma-separated
        sa.Column("rate", sa.String(32), nullable=True),  # limits' notation: 1000/minute
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("last_used_us", sa.BigInteger(), nullable=True),
        sa.Column("revoked_us", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("prefix", name="uq_setlist_api_keys_prefix"),
    )
    op.create_table(
        "setlist_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),  # a key's name, or cli:USER
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=True),
        sa.Column("source", sa.String(128), nullable=True),  # client address, or cli
        sa.Column("outcome", sa.String(256), nullable=False),
    )
    op.create_index("ix_setlist_audit_at", "setlist_audit", ["at_us"])


def downgrade() -> None:
    op.drop_index("ix_setlist_audit_at", "setlist_audit")
    op.drop_table("setlist_audit")
    op.drop_table("setlist_api_keys")
