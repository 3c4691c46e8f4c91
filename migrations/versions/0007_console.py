"""Console sessions (the finance staff's web console signs in with an API key).

Revision ID: 0007_console
Revises: 0002_auth
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_console"
down_revision: str | Sequence[str] | None = "0002_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("token_digest", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("key_id", sa.BigInteger(), sa.ForeignKey("api_keys.id", name="fk_console_sessions_key_id_api_keys"),
                  nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("ended_at", TS),
        sa.CheckConstraint("expires_at > created_at", name="ck_console_sessions_lifetime"),
    )
    op.create_index("uq_console_sessions_token_digest", "console_sessions", ["token_digest"], unique=True)
    op.create_index("ix_console_sessions_key_id", "console_sessions", ["key_id"])


def downgrade() -> None:
    op.drop_table("console_sessions")
