"""Expectations, runs and their steps, matches and their links, bookings, settlement batches."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, Currency, JsonDoc, UTCDateTime

RATE = Numeric(24, 12)


class Expectation(Base):
    __tablename__ = "recon_expectations"
    __table_args__ = (
        UniqueConstraint("rail", "kind", "reference", name="uq_recon_expectations_rail"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("kind IN ('payment', 'refund', 'payout')", name="kind"),
        CheckConstraint("(settlement_currency IS NULL) = (fx_rate IS NULL)", name="fx_terms"),
        Index("ix_recon_expectations_open", "rail", "id", postgresql_where=text("status = 'open'"),
              sqlite_where=text("status = 'open'")),
        Index("ix_recon_expectations_rail_reference", "rail", "rail_reference"),
        Index("ix_recon_expectations_rrn", "rail", "rrn"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    rail: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(100))
    rail_reference: Mapped[str] = mapped_column(String(100))
    rrn: Mapped[str | None] = mapped_column(String(64))
    #: Groups expectations the rail settles as one line (1:N), e.g. a payout batch.
    batch_reference: Mapped[str | None] = mapped_column(String(100))
    #: What was captured, refunded or paid out: positive minor units of ``currency``.
    amount: Mapped[int] = mapped_column(BigInteger)
    #: ``amount`` signed as the rail's file shows it: payments positive, refunds and
    #: payouts negative.
    signed_amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    #: The fee the rail should charge, signed like ``signed_amount``; NULL: not checked.
    expected_fee: Mapped[int | None] = mapped_column(BigInteger)
    settlement_currency: Mapped[str | None] = mapped_column(Currency())
    settlement_amount: Mapped[int | None] = mapped_column(BigInteger)
    fx_rate: Mapped[Decimal | None] = mapped_column(RATE)
    transaction_date: Mapped[dt.date] = mapped_column(Date)
    expected_settlement_date: Mapped[dt.date] = mapped_column(Date)
    #: Absent from every file dated after this day, it is missing.
    missing_after: Mapped[dt.date] = mapped_column(Date)
    payment_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    #: The first live run that was due to see it and did not: a later match is late.
    overdue_since_run_id: Mapped[int | None] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Run(Base):
    __tablename__ = "recon_runs"
    __table_args__ = (
        Index("uq_recon_runs_live_file", "file_id", unique=True, postgresql_where=text("NOT dry_run"),
              sqlite_where=text("NOT dry_run")),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    rail: Mapped[str | None] = mapped_column(String(32))
    file_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_files.id"))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    #: The settlement day the file covers (its latest settlement date): what is due by
    #: then and absent is overdue, what is past its SLA by then is missing.
    cycle_date: Mapped[dt.date | None] = mapped_column(Date)
    summary: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class RunStep(Base):
    __tablename__ = "recon_run_steps"

    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_runs.id"), primary_key=True)
    step: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Match(Base):
    """One outcome of a run. Amounts are signed minor units as the file shows them:
    ``expected_amount`` what the expectations (or settlement batches) say, ``gross``,
    ``fee`` and ``net`` what the file (or statement) says, in ``currency``;
    ``settlement_amount`` what the rail pays in ``settlement_currency`` and
    ``expected_settlement`` what it would pay at the quoted rate. ``batch_no`` is the
    booking chunk of a match the run books (NULL: not booked by the run)."""

    __tablename__ = "recon_matches"
    __table_args__ = (Index("ix_recon_matches_run_id", "run_id", "outcome", "id"),)

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger)
    live: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(24))
    rule: Mapped[str] = mapped_column(String(32))
    shape: Mapped[str] = mapped_column(String(8))
    rail: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(Currency())
    expected_amount: Mapped[int | None] = mapped_column(BigInteger)
    expected_fee: Mapped[int | None] = mapped_column(BigInteger)
    gross: Mapped[int | None] = mapped_column(BigInteger)
    fee: Mapped[int | None] = mapped_column(BigInteger)
    net: Mapped[int | None] = mapped_column(BigInteger)
    settlement_currency: Mapped[str | None] = mapped_column(Currency())
    settlement_amount: Mapped[int | None] = mapped_column(BigInteger)
    expected_settlement: Mapped[int | None] = mapped_column(BigInteger)
    batch_no: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class MatchExpectation(Base):
    """A match covers this expectation; ``claimed``: it settles it (once, ever)."""

    __tablename__ = "recon_match_expectations"
    __table_args__ = (
        Index("uq_recon_match_expectations_claimed", "expectation_id", unique=True,
              postgresql_where=text("claimed"), sqlite_where=text("claimed")),
    )

    match_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    expectation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    claimed: Mapped[bool] = mapped_column(Boolean)


class MatchItem(Base):
    """A match covers this file record; ``claimed``: it is used up (once, ever)."""

    __tablename__ = "recon_match_items"
    __table_args__ = (
        Index("uq_recon_match_items_claimed", "item_id", unique=True,
              postgresql_where=text("claimed"), sqlite_where=text("claimed")),
    )

    match_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    item_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    claimed: Mapped[bool] = mapped_column(Boolean)


class MatchLine(Base):
    """A match covers this statement line; ``claimed``: it is used up (once, ever)."""

    __tablename__ = "recon_match_lines"
    __table_args__ = (
        Index("uq_recon_match_lines_claimed", "line_id", unique=True,
              postgresql_where=text("claimed"), sqlite_where=text("claimed")),
    )

    match_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    claimed: Mapped[bool] = mapped_column(Boolean)


class MatchBatch(Base):
    """A match covers this settlement batch; ``claimed``: the bank confirmed it (once)."""

    __tablename__ = "recon_match_batches"
    __table_args__ = (
        Index("uq_recon_match_batches_claimed", "batch_id", unique=True,
              postgresql_where=text("claimed"), sqlite_where=text("claimed")),
    )

    match_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    claimed: Mapped[bool] = mapped_column(Boolean)


class Booking(Base):
    """The ledger entry of one chunk of a run's matches (``batch_no``)."""

    __tablename__ = "recon_bookings"
    __table_args__ = (UniqueConstraint("run_id", "batch_no", name="uq_recon_bookings_run_id"),)

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_runs.id"))
    batch_no: Mapped[int] = mapped_column(Integer)
    #: NULL when the chunk nets to zero on every account (nothing to post).
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    match_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SettlementBatch(Base):
    """What a rail pays for one settlement date in one currency: the net of the
    file's records (``amount``, signed: negative when it takes money back)."""

    __tablename__ = "recon_settlement_batches"
    __table_args__ = (
        UniqueConstraint("file_id", "settlement_date", "currency", name="uq_recon_settlement_batches_file_id"),
        Index("ix_recon_settlement_batches_open", "currency", "settlement_date",
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    file_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_files.id"))
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("recon_runs.id"))
    rail: Mapped[str] = mapped_column(String(32))
    settlement_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(Currency())
    amount: Mapped[int] = mapped_column(BigInteger)
    record_count: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
