"""The exceptions queue: exceptions, their actions, write-off approvals."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, Currency, JsonDoc, UTCDateTime


class ReconException(Base):
    """Something a person must look at: a match result that was not booked (or an
    expectation or batch that never arrived). ``amount`` is what a write-off books."""

    __tablename__ = "recon_exceptions"
    __table_args__ = (
        Index("uq_recon_exceptions_match", "match_id", unique=True),
        Index("uq_recon_exceptions_open_expectation", "expectation_id", unique=True,
              postgresql_where=text("status <> 'resolved' AND expectation_id IS NOT NULL"),
              sqlite_where=text("status <> 'resolved' AND expectation_id IS NOT NULL")),
        Index("uq_recon_exceptions_open_batch", "batch_id", unique=True,
              postgresql_where=text("status <> 'resolved' AND batch_id IS NOT NULL"),
              sqlite_where=text("status <> 'resolved' AND batch_id IS NOT NULL")),
        Index("ix_recon_exceptions_status", "status", "id"),
        CheckConstraint("(status = 'resolved') = (resolution IS NOT NULL)", name="resolution"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(24))
    rail: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(Currency())
    amount: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_runs.id"))
    match_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_matches.id"))
    expectation_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("recon_expectations.id"))
    item_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("recon_file_items.id"))
    line_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("recon_statement_lines.id"))
    batch_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("recon_settlement_batches.id"))
    assigned_to: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(String(24))
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ExceptionAction(Base):
    """Append-only history of an exception: who did what, when, and why."""

    __tablename__ = "recon_exception_actions"
    __table_args__ = (
        Index("ix_recon_exception_actions_exception_id", "exception_id", "id"),
        Index("uq_recon_exception_actions_key", "exception_id", "idempotency_key", unique=True,
              postgresql_where=text("idempotency_key IS NOT NULL"),
              sqlite_where=text("idempotency_key IS NOT NULL")),
        CheckConstraint("length(reason) > 0", name="reason"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    exception_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_exceptions.id"))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(1000))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class WriteOffApproval(Base):
    """A write-off above the threshold, waiting for a second finance user (maker-checker:
    the database refuses a decision by the requester)."""

    __tablename__ = "recon_writeoff_approvals"
    __table_args__ = (
        Index("uq_recon_writeoff_approvals_pending", "exception_id", unique=True,
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
        CheckConstraint("decided_by IS NULL OR decided_by <> requested_by", name="four_eyes"),
        CheckConstraint("(status = 'pending') = (decided_by IS NULL)", name="decision"),
        CheckConstraint("amount >= 0", name="amount"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    exception_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_exceptions.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    status: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(1000))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str | None] = mapped_column(String(1000))
