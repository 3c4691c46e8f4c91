"""Ledger tables.

* ``ledger_accounts``: one row per account with TigerBeetle's four counters. The
  counters are the only mutable columns; CHECK constraints hold the balance limits.
* ``ledger_entries`` / ``ledger_postings``: the journal. Append-only (PostgreSQL
  triggers refuse UPDATE, DELETE and TRUNCATE). Each posting also stores the
  account's posted counters right after it (``*_after``), so a balance as of any
  past time is one index lookup instead of a scan of the account's history.
* ``ledger_holds``: two-phase transfers. The hold's entry carries its pending
  postings; the hold row carries its state (pending, posted, voided, expired).
* ``ledger_refusals``: business refusals remembered under their idempotency key,
  so a retry is refused the same way.

Pending counters equal the pending postings of holds still pending; posted
counters equal the sum of posted postings. Both are checked by the test suite.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, Currency, JsonDoc, UTCDateTime


class AccountType(enum.StrEnum):
    """Accounting class. Asset and expense accounts are debit-normal (their balance is
    debits - credits); liability, equity and income accounts are credit-normal."""

    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"

    @property
    def debit_normal(self) -> bool:
        return self in (AccountType.ASSET, AccountType.EXPENSE)


class Side(enum.StrEnum):
    DEBIT = "D"
    CREDIT = "C"


class HoldStatus(enum.StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


class EntryKind(enum.StrEnum):
    """Kinds the ledger itself writes. Callers may use their own kinds for transfers
    (``payment.capture``, ``fx.conversion``...); these names are reserved."""

    TRANSFER = "transfer"
    HOLD = "hold"
    HOLD_POST = "hold_post"
    HOLD_VOID = "hold_void"
    HOLD_EXPIRE = "hold_expire"
    REVERSAL = "reversal"


_DEBIT_LIMIT = ("NOT debits_must_not_exceed_credits OR "
                "debits_pending + debits_posted <= credits_posted + COALESCE(credit_limit, 0)")
_CREDIT_LIMIT = ("NOT credits_must_not_exceed_debits OR "
                 "credits_pending + credits_posted <= debits_posted + COALESCE(credit_limit, 0)")


class Account(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("type IN ('asset', 'liability', 'equity', 'income', 'expense')", name="type"),
        CheckConstraint("NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
                        name="one_limit_flag"),
        CheckConstraint("credit_limit IS NULL OR credit_limit >= 0", name="credit_limit"),
        CheckConstraint("debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 "
                        "AND credits_posted >= 0", name="counters_non_negative"),
        CheckConstraint(_DEBIT_LIMIT, name="debits_within_limit"),
        CheckConstraint(_CREDIT_LIMIT, name="credits_within_limit"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(200), unique=True)
    currency: Mapped[str] = mapped_column(Currency())
    type: Mapped[str] = mapped_column(String(16))
    debits_must_not_exceed_credits: Mapped[bool] = mapped_column(Boolean, default=False)
    credits_must_not_exceed_debits: Mapped[bool] = mapped_column(Boolean, default=False)
    credit_limit: Mapped[int | None] = mapped_column(BigInteger)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    debits_pending: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    debits_posted: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    credits_pending: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    credits_posted: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Entry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_recorded_at", "recorded_at"),
        Index("ix_ledger_entries_tx_id_id", "tx_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(always=True), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    effective_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    description: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDoc, default=dict)
    #: The entry this one reverses; unique, so an entry is reversed at most once.
    reverses_entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ledger_entries.id"), unique=True)
    #: The hold this entry created or resolved (kinds hold, hold_post, hold_void,
    #: hold_expire). No foreign key: holds reference their entry, not the reverse.
    hold_id: Mapped[int | None] = mapped_column(BigInteger)
    #: Writing transaction's id (PostgreSQL ``pg_current_xact_id()``); the journal
    #: sealer seals only entries of transactions no running one can precede.
    tx_id: Mapped[int | None] = mapped_column(BigInteger)


class Posting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("side IN ('D', 'C')", name="side"),
        Index("ix_ledger_postings_account_time", "account_id", "recorded_at", "id"),
        Index("ix_ledger_postings_entry_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(always=True), primary_key=True)
    #: References ledger_entries.id and ledger_accounts.id. On PostgreSQL these are
    #: checked by the set-based ``ledger_postings_checked`` trigger (see migration
    #: 0001) rather than per-row foreign keys; SQLite declares foreign keys.
    entry_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[int] = mapped_column(BigInteger)
    side: Mapped[str] = mapped_column(String(1))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    #: Pending postings belong to a hold: they move the pending counters, not the
    #: posted ones.
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: The account's posted counters right after this posting (running totals).
    debits_posted_after: Mapped[int] = mapped_column(BigInteger)
    credits_posted_after: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    __tablename__ = "ledger_holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("posted_amount >= 0 AND posted_amount <= amount", name="posted_within_amount"),
        CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name="status"),
        Index("ix_ledger_holds_pending_expiry", "expires_at",
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
        Index("ix_ledger_holds_debit_account", "debit_account_id", "created_at"),
        Index("ix_ledger_holds_credit_account", "credit_account_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger_entries.id"), unique=True)
    debit_account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger_accounts.id"))
    credit_account_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(Currency())
    status: Mapped[str] = mapped_column(String(16), default=HoldStatus.PENDING.value)
    posted_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolved_entry_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("ledger_entries.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: A partial post that keeps the rest on hold continues in a new hold.
    parent_hold_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("ledger_holds.id"))


class Refusal(Base):
    __tablename__ = "ledger_refusals"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
