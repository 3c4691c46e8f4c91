"""Payments, FX and HTTP idempotency: merchants, rate snapshots and quotes, payment
intents and their rail attempts, payouts, rail notifications, idempotency keys.

PostgreSQL enforces the payments' arithmetic with CHECK constraints (captured plus
voided never above authorized, refunded never above captured), one operation per
rail reference, one notification per rail notification id, and one response per
(API key, Idempotency-Key).

Revision ID: 0004_payments
Revises: 0002_auth
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_payments"
down_revision: str | Sequence[str] | None = "0002_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
RATE = sa.Numeric(24, 12)
CUR = sa.String(3)

PAYMENT_STATES = ("requires_authorization", "authorizing", "authorized", "partially_captured", "captured", "voided",
                  "partially_refunded", "refunded", "failed", "unknown")
IN_FLIGHT = "state IN ('pending', 'unknown')"
PAYOUT_IN_FLIGHT = "state IN ('pending', 'processing', 'unknown')"


def _in(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.create_table(
        "merchants",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(100)),
        sa.Column("settlement_currency", CUR, nullable=False),
        sa.Column("commission_rate", sa.Numeric(9, 6), nullable=False),
        sa.Column("payout_rail", sa.String(32)),
        sa.Column("payout_destination", sa.String(100)),
        sa.Column("payout_beneficiary", sa.String(200)),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("external_id", name="uq_merchants_external_id"),
        sa.CheckConstraint("commission_rate >= 0 AND commission_rate < 1", name="ck_merchants_commission_rate"),
    )
    op.create_table(
        "fx_rate_snapshots",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("base_currency", CUR, nullable=False),
        sa.Column("quote_currency", CUR, nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.CheckConstraint("rate > 0", name="ck_fx_rate_snapshots_rate_positive"),
        sa.CheckConstraint("base_currency <> quote_currency", name="ck_fx_rate_snapshots_distinct_currencies"),
    )
    op.create_index("ix_fx_rate_snapshots_pair", "fx_rate_snapshots", ["base_currency", "quote_currency", "id"])
    op.create_table(
        "fx_quotes",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("sell_currency", CUR, nullable=False),
        sa.Column("buy_currency", CUR, nullable=False),
        sa.Column("mid_rate", RATE, nullable=False),
        sa.Column("rate", RATE, nullable=False),
        sa.Column("spread", sa.Numeric(9, 6), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("snapshot_id", sa.BigInteger(), sa.ForeignKey("fx_rate_snapshots.id",
                                                                name="fk_fx_quotes_snapshot_id_fx_rate_snapshots"),
                  nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.CheckConstraint("mid_rate > 0 AND rate > 0 AND rate <= mid_rate", name="ck_fx_quotes_rates"),
        sa.CheckConstraint("spread >= 0 AND spread < 1", name="ck_fx_quotes_spread"),
        sa.CheckConstraint("sell_currency <> buy_currency", name="ck_fx_quotes_distinct_currencies"),
    )
    op.create_table(
        "payments",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("merchant_id", sa.BigInteger(), sa.ForeignKey("merchants.id", name="fk_payments_merchant_id_merchants"),
                  nullable=False),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("capture_method", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("method_kind", sa.String(16), nullable=False),
        sa.Column("method_display", sa.String(64), nullable=False),
        sa.Column("buyer_reference", sa.String(200)),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("settlement_currency", CUR, nullable=False),
        sa.Column("commission_rate", sa.Numeric(9, 6), nullable=False),
        sa.Column("fx_quote_id", sa.BigInteger(), sa.ForeignKey("fx_quotes.id", name="fk_payments_fx_quote_id_fx_quotes")),
        sa.Column("fx_rate", RATE),
        sa.Column("fx_mid_rate", RATE),
        sa.Column("fx_source", sa.String(200)),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in (
            "amount_authorized", "amount_captured", "amount_voided", "amount_refunded", "commission_captured",
            "seller_captured", "fx_mid_captured", "commission_refunded", "seller_refunded", "fx_mid_refunded")),
        sa.Column("hold_id", sa.BigInteger()),
        sa.Column("authorization_expires_at", TS),
        sa.Column("rail_reference", sa.String(100)),
        sa.Column("in_flight_attempt_id", sa.BigInteger()),
        sa.Column("failure_code", sa.String(64)),
        sa.Column("failure_message", sa.Text()),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint(f"state IN ({_in(PAYMENT_STATES)})", name="ck_payments_state"),
        sa.CheckConstraint("capture_method IN ('automatic', 'manual')", name="ck_payments_capture_method"),
        sa.CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
        sa.CheckConstraint("amount_authorized >= 0 AND amount_authorized <= amount", name="ck_payments_authorized"),
        sa.CheckConstraint("amount_captured >= 0 AND amount_voided >= 0 "
                           "AND amount_captured + amount_voided <= amount_authorized", name="ck_payments_captured"),
        sa.CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount_captured", name="ck_payments_refunded"),
        sa.CheckConstraint("commission_captured >= 0 AND commission_captured <= amount_captured "
                           "AND commission_refunded >= 0 AND commission_refunded <= commission_captured",
                           name="ck_payments_commission"),
    )
    op.create_index("ix_payments_merchant", "payments", ["merchant_id", "id"])
    op.create_index("ix_payments_state", "payments", ["state", "id"])
    op.create_index("ix_payments_created", "payments", ["created_at", "id"])
    op.create_table(
        "payment_attempts",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("payment_id", sa.BigInteger(),
                  sa.ForeignKey("payments.id", name="fk_payment_attempts_payment_id_payments"), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("rail_reference", sa.String(100)),
        sa.Column("response_code", sa.String(64)),
        sa.Column("approval_code", sa.String(64)),
        sa.Column("failure_code", sa.String(64)),
        sa.Column("failure_message", sa.Text()),
        sa.Column("booking", JSON, nullable=False),
        sa.Column("hold_id", sa.BigInteger()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.Column("next_check_at", TS),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.UniqueConstraint("reference", name="uq_payment_attempts_reference"),
        sa.CheckConstraint("operation IN ('authorize', 'capture', 'void', 'refund')",
                           name="ck_payment_attempts_operation"),
        sa.CheckConstraint("state IN ('pending', 'succeeded', 'failed', 'unknown')", name="ck_payment_attempts_state"),
        sa.CheckConstraint("amount >= 0", name="ck_payment_attempts_amount"),
    )
    op.create_index("ix_payment_attempts_payment", "payment_attempts", ["payment_id", "id"])
    op.create_index("ix_payment_attempts_due", "payment_attempts", ["next_check_at"],
                    postgresql_where=sa.text(IN_FLIGHT), sqlite_where=sa.text(IN_FLIGHT))
    op.create_table(
        "payouts",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("merchant_id", sa.BigInteger(), sa.ForeignKey("merchants.id", name="fk_payouts_merchant_id_merchants"),
                  nullable=False),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("destination_display", sa.String(64), nullable=False),
        sa.Column("hold_id", sa.BigInteger()),
        sa.Column("rail_reference", sa.String(100)),
        sa.Column("failure_code", sa.String(64)),
        sa.Column("failure_message", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.Column("next_check_at", TS),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.UniqueConstraint("reference", name="uq_payouts_reference"),
        sa.CheckConstraint("state IN ('pending', 'processing', 'paid', 'failed', 'unknown')", name="ck_payouts_state"),
        sa.CheckConstraint("amount > 0", name="ck_payouts_amount_positive"),
    )
    op.create_index("ix_payouts_merchant", "payouts", ["merchant_id", "id"])
    op.create_index("ix_payouts_due", "payouts", ["next_check_at"], postgresql_where=sa.text(PAYOUT_IN_FLIGHT),
                    sqlite_where=sa.text(PAYOUT_IN_FLIGHT))
    op.create_table(
        "rail_notifications",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("headers", JSON, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("notification_id", sa.String(200)),
        sa.Column("reference", sa.String(64)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.Column("processed_at", TS),
    )
    op.create_index("uq_rail_notifications_rail_id", "rail_notifications", ["rail", "notification_id"], unique=True,
                    postgresql_where=sa.text("notification_id IS NOT NULL"),
                    sqlite_where=sa.text("notification_id IS NOT NULL"))
    op.create_table(
        "idempotency_keys",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("api_key_id", sa.BigInteger(), sa.ForeignKey("api_keys.id", name="fk_idempotency_keys_api_key_id_api_keys"),
                  nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("content_type", sa.String(100)),
        sa.Column("response_body", sa.LargeBinary()),
        sa.Column("resource_type", sa.String(32)),
        sa.Column("resource_id", sa.BigInteger()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("locked_until", TS, nullable=False),
        sa.Column("completed_at", TS),
        sa.Column("extra", JSON, nullable=False),
        sa.UniqueConstraint("api_key_id", "key", name="uq_idempotency_keys_api_key_id_key"),
        sa.CheckConstraint("state IN ('in_flight', 'done')", name="ck_idempotency_keys_state"),
    )
    op.create_index("ix_idempotency_keys_completed", "idempotency_keys", ["completed_at"])


def downgrade() -> None:
    for table in ("idempotency_keys", "rail_notifications", "payouts", "payment_attempts", "payments", "fx_quotes",
                  "fx_rate_snapshots", "merchants"):
        op.drop_table(table)
