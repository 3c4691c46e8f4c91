"""Payment tables.

* ``merchants``: the marketplace's sellers: settlement currency, commission, payout
  rail and destination.
* ``payments``: one payment intent: amount, currency, merchant, rail, capture method,
  its state (DESIGN section 6) and running totals (authorized, captured, voided,
  refunded, and the split of what was captured), the ledger hold that holds what is
  still authorized, and the FX terms when the seller settles in another currency.
* ``payment_attempts``: every operation sent to a rail (authorize, capture, void,
  refund), each with our own unique ``reference``. An attempt is written as
  ``pending`` and committed *before* the rail is called, then resolved to
  ``succeeded`` or ``failed`` together with its ledger entries; ``unknown`` when the
  rail's answer was lost (the janitor asks the rail later).
* ``payouts``: money paid out to a seller over its payout rail, a ledger hold on the
  seller's payable until the rail confirms.
* ``rail_notifications``: every notification body a rail sent, stored before it is
  verified; ``notification_id`` is set once verified and is unique per rail.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, Currency, JsonDoc, UTCDateTime
from settlement.fx.models import RATE


class PaymentState(enum.StrEnum):
    """DESIGN section 6. The state summarises the amounts; operations check amounts."""

    REQUIRES_AUTHORIZATION = "requires_authorization"
    AUTHORIZING = "authorizing"
    AUTHORIZED = "authorized"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    VOIDED = "voided"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FAILED = "failed"
    UNKNOWN = "unknown"


class CaptureMethod(enum.StrEnum):
    AUTOMATIC = "automatic"   # authorize and capture in one rail operation (a sale)
    MANUAL = "manual"         # authorize now, capture later (once or in parts)


class Operation(enum.StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class AttemptState(enum.StrEnum):
    PENDING = "pending"       # written before the rail call; or the rail said "accepted, wait"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"       # the rail's answer was lost: ask it (the janitor does)


class PayoutState(enum.StrEnum):
    PENDING = "pending"       # hold placed, rail called or about to be
    PROCESSING = "processing"  # the rail accepted it and will confirm later
    PAID = "paid"
    FAILED = "failed"
    UNKNOWN = "unknown"


IN_FLIGHT = (AttemptState.PENDING.value, AttemptState.UNKNOWN.value)
PAYOUT_IN_FLIGHT = (PayoutState.PENDING.value, PayoutState.PROCESSING.value, PayoutState.UNKNOWN.value)


def _values(enum_type: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum_type)


class Merchant(Base):
    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint("commission_rate >= 0 AND commission_rate < 1", name="commission_rate"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The marketplace's own id of the seller (unique when given).
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    settlement_currency: Mapped[str] = mapped_column(Currency())
    commission_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    payout_rail: Mapped[str | None] = mapped_column(String(32))
    payout_destination: Mapped[str | None] = mapped_column(String(100))
    payout_beneficiary: Mapped[str | None] = mapped_column(String(200))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"state IN ({_values(PaymentState)})", name="state"),
        CheckConstraint(f"capture_method IN ({_values(CaptureMethod)})", name="capture_method"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount_authorized >= 0 AND amount_authorized <= amount", name="authorized"),
        CheckConstraint("amount_captured >= 0 AND amount_voided >= 0 "
                        "AND amount_captured + amount_voided <= amount_authorized", name="captured"),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount_captured", name="refunded"),
        CheckConstraint("commission_captured >= 0 AND commission_captured <= amount_captured "
                        "AND commission_refunded >= 0 AND commission_refunded <= commission_captured",
                        name="commission"),
        Index("ix_payments_merchant", "merchant_id", "id"),
        Index("ix_payments_state", "state", "id"),
        Index("ix_payments_created", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("merchants.id"))
    rail: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    capture_method: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32))
    method_kind: Mapped[str] = mapped_column(String(16))
    #: Masked card number, token or wallet id: never a full PAN.
    method_display: Mapped[str] = mapped_column(String(64))
    buyer_reference: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    settlement_currency: Mapped[str] = mapped_column(Currency())
    commission_rate: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    fx_quote_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("fx_quotes.id"))
    fx_rate: Mapped[Decimal | None] = mapped_column(RATE)
    fx_mid_rate: Mapped[Decimal | None] = mapped_column(RATE)
    fx_source: Mapped[str | None] = mapped_column(String(200))
    amount_authorized: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_captured: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_voided: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The split of what was captured (payment currency: commission; settlement
    #: currency: the seller's payable, the FX mid amount and the spread), and how much
    #: of each refunds gave back.
    commission_captured: Mapped[int] = mapped_column(BigInteger, default=0)
    seller_captured: Mapped[int] = mapped_column(BigInteger, default=0)
    fx_mid_captured: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    seller_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    fx_mid_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    #: The ledger hold for what is still authorized (None once resolved).
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    authorization_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    rail_reference: Mapped[str | None] = mapped_column(String(100))
    #: The operation currently sent to the rail, if any: one at a time per payment.
    in_flight_attempt_id: Mapped[int | None] = mapped_column(BigInteger)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class PaymentAttempt(Base):
    __tablename__ = "payment_attempts"
    __table_args__ = (
        CheckConstraint(f"operation IN ({_values(Operation)})", name="operation"),
        CheckConstraint(f"state IN ({_values(AttemptState)})", name="state"),
        CheckConstraint("amount >= 0", name="amount"),
        Index("ix_payment_attempts_payment", "payment_id", "id"),
        Index("ix_payment_attempts_due", "next_check_at", postgresql_where=text("state IN ('pending', 'unknown')"),
              sqlite_where=text("state IN ('pending', 'unknown')")),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    payment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("payments.id"))
    operation: Mapped[str] = mapped_column(String(16))
    #: Our reference of this operation at the rail (unique; a retry reuses it).
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    state: Mapped[str] = mapped_column(String(16))
    #: Captures: whether this capture releases what remains authorized.
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    rail_reference: Mapped[str | None] = mapped_column(String(100))
    response_code: Mapped[str | None] = mapped_column(String(64))
    approval_code: Mapped[str | None] = mapped_column(String(64))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    #: Refunds: the amounts each ledger account gives back, computed when the refund
    #: starts (the seller's share is held on its payable until the rail answers).
    booking: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    next_check_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    checks: Mapped[int] = mapped_column(Integer, default=0)


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint(f"state IN ({_values(PayoutState)})", name="state"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payouts_merchant", "merchant_id", "id"),
        Index("ix_payouts_due", "next_check_at",
              postgresql_where=text("state IN ('pending', 'processing', 'unknown')"),
              sqlite_where=text("state IN ('pending', 'processing', 'unknown')")),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("merchants.id"))
    rail: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    state: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    destination_display: Mapped[str] = mapped_column(String(64))
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    rail_reference: Mapped[str | None] = mapped_column(String(100))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    next_check_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    checks: Mapped[int] = mapped_column(Integer, default=0)


class RailNotification(Base):
    __tablename__ = "rail_notifications"
    __table_args__ = (
        Index("uq_rail_notifications_rail_id", "rail", "notification_id", unique=True,
              postgresql_where=text("notification_id IS NOT NULL"),
              sqlite_where=text("notification_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    rail: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    headers: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    #: received -> applied | unmatched | duplicate | rejected
    status: Mapped[str] = mapped_column(String(16))
    notification_id: Mapped[str | None] = mapped_column(String(200))
    reference: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
