"""Outgoing webhooks: endpoints, the event outbox, deliveries and their attempt log.

Events are immutable once written (a replay must send what was first sent):
triggers refuse UPDATE and DELETE on ``webhook_events`` on both databases.

Revision ID: 0005_webhooks
Revises: 0002_auth
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_webhooks"
down_revision: str | Sequence[str] | None = "0002_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

PG_IMMUTABLE_EVENTS = [
    r"""CREATE FUNCTION webhook_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'webhook_events are immutable: % refused', TG_OP;
END $$""",
    "CREATE TRIGGER webhook_events_immutable BEFORE UPDATE OR DELETE ON webhook_events "
    "FOR EACH ROW EXECUTE FUNCTION webhook_events_refuse_change()",
]
SQLITE_IMMUTABLE_EVENTS = [
    f"CREATE TRIGGER webhook_events_no_{op_name.lower()} BEFORE {op_name} ON webhook_events "
    f"BEGIN SELECT RAISE(ABORT, 'webhook_events are immutable: {op_name} refused'); END"
    for op_name in ("UPDATE", "DELETE")
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("previous_secret", sa.String(100)),
        sa.Column("previous_secret_expires_at", TS),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled_at", TS),
        sa.CheckConstraint("active OR disabled_at IS NOT NULL", name="disabled_at"),
        sa.CheckConstraint("(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)",
                           name="previous_secret_expiry"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("public_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("public_id", name="uq_webhook_events_public_id"),
        sa.UniqueConstraint("key", name="uq_webhook_events_key"),
    )
    op.create_index("ix_webhook_events_type_id", "webhook_events", ["type", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("webhook_events.id",
                  name="fk_webhook_deliveries_event_id_webhook_events"), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), sa.ForeignKey("webhook_endpoints.id",
                  name="fk_webhook_deliveries_endpoint_id_webhook_endpoints"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.String(1000)),
        sa.Column("replay", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed', 'cancelled')",
                           name="status"),
        sa.CheckConstraint("attempts >= 0", name="attempts"),
        sa.CheckConstraint("(status = 'pending') = (next_attempt_at IS NOT NULL)",
                           name="pending_has_due_time"),
        sa.CheckConstraint("(status = 'pending') = (finished_at IS NULL)", name="finished_at"),
    )
    op.create_index("ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries", ["endpoint_id", "id"])
    op.create_index("ix_webhook_deliveries_event_id", "webhook_deliveries", ["event_id"])
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_table(
        "webhook_attempts",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("delivery_id", sa.BigInteger(), sa.ForeignKey("webhook_deliveries.id",
                  name="fk_webhook_attempts_delivery_id_webhook_deliveries"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("status_code", sa.Integer()),
        sa.Column("duration_ms", sa.Integer()),
        sa.Column("error", sa.String(1000)),
        sa.Column("response_excerpt", sa.String(500)),
        sa.Column("next_attempt_at", TS),
        sa.UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_delivery_id_attempt"),
        sa.CheckConstraint("attempt >= 1", name="attempt"),
        sa.CheckConstraint("duration_ms IS NULL OR duration_ms >= 0", name="duration"),
    )
    for statement in PG_IMMUTABLE_EVENTS if postgres else SQLITE_IMMUTABLE_EVENTS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION webhook_events_refuse_change()")
