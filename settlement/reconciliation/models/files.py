"""Files received, their records, statement lines and unreadable lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, Currency, UTCDateTime

RATE = Numeric(24, 12)


class ReconFile(Base):
    __tablename__ = "recon_files"
    __table_args__ = (
        UniqueConstraint("sha256", name="uq_recon_files_sha256"),
        CheckConstraint("size_bytes >= 0", name="size"),
        CheckConstraint("kind = 'statement' OR rail IS NOT NULL", name="settlement_rail"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    rail: Mapped[str | None] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    stored_path: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(16))
    loaded_items: Mapped[int] = mapped_column(BigInteger, default=0)
    record_count: Mapped[int] = mapped_column(BigInteger, default=0)
    error_count: Mapped[int] = mapped_column(BigInteger, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    registered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    loaded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class FileItem(Base):
    __tablename__ = "recon_file_items"
    __table_args__ = (
        UniqueConstraint("file_id", "line_number", name="uq_recon_file_items_file_id"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    #: References recon_files (checked per statement on PostgreSQL, see the migration).
    file_id: Mapped[int] = mapped_column(BigInteger)
    line_number: Mapped[int] = mapped_column(BigInteger)
    record_type: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(100))
    rail_reference: Mapped[str] = mapped_column(String(100))
    rrn: Mapped[str] = mapped_column(String(64))
    arn: Mapped[str] = mapped_column(String(64))
    gross: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    transaction_date: Mapped[dt.date] = mapped_column(Date)
    settlement_date: Mapped[dt.date] = mapped_column(Date)
    settlement_amount: Mapped[int | None] = mapped_column(BigInteger)
    settlement_currency: Mapped[str | None] = mapped_column(Currency())
    fx_rate: Mapped[Decimal | None] = mapped_column(RATE)


class StatementLine(Base):
    __tablename__ = "recon_statement_lines"
    __table_args__ = (
        UniqueConstraint("file_id", "line_number", "sub_index", name="uq_recon_statement_lines_file_id"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    #: References recon_files (checked per statement on PostgreSQL, see the migration).
    file_id: Mapped[int] = mapped_column(BigInteger)
    line_number: Mapped[int] = mapped_column(BigInteger)
    sub_index: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(64))
    statement_id: Mapped[str] = mapped_column(String(200))
    #: Signed minor units: credits (money in) positive, debits negative.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    entry_status: Mapped[str] = mapped_column(String(8))
    booking_date: Mapped[dt.date | None] = mapped_column(Date)
    value_date: Mapped[dt.date | None] = mapped_column(Date)
    bank_reference: Mapped[str] = mapped_column(String(200))
    end_to_end_id: Mapped[str] = mapped_column(String(200))
    counterparty_name: Mapped[str] = mapped_column(String(300))
    counterparty_account: Mapped[str] = mapped_column(String(64))
    remittance: Mapped[str] = mapped_column(String(500))


class FileError(Base):
    __tablename__ = "recon_file_errors"
    __table_args__ = (
        Index("ix_recon_file_errors_file_id", "file_id", "line_number"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    #: References recon_files (checked per statement on PostgreSQL, see the migration).
    file_id: Mapped[int] = mapped_column(BigInteger)
    line_number: Mapped[int] = mapped_column(BigInteger)
    sub_index: Mapped[int] = mapped_column(Integer, default=0)
    field: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    raw: Mapped[str] = mapped_column(String(300))
