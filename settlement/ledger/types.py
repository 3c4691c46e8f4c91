"""Requests to the ledger and what it answers.

Amounts are ``int`` minor units of the posting's currency. An account is named by
its id (``int``) or its code (``str``). Results compare equal when they describe
the same stored facts: the ``replayed`` flag (true when an idempotency key returned
a stored result) is excluded from comparison.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from settlement.ledger.models import AccountType, HoldStatus, Side

AccountRef = int | str

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PostingSpec:
    """One leg of an entry: ``amount`` minor units of ``currency`` on ``side`` of
    ``account``."""

    account: AccountRef
    side: Side
    amount: int
    currency: str


def debit(account: AccountRef, amount: int, currency: str) -> PostingSpec:
    return PostingSpec(account, Side.DEBIT, amount, currency)


def credit(account: AccountRef, amount: int, currency: str) -> PostingSpec:
    return PostingSpec(account, Side.CREDIT, amount, currency)


@dataclass(frozen=True, slots=True)
class EntrySpec:
    """An entry to post. It must balance per currency (sum of debits = sum of
    credits) and have at least one debit and one credit.

    ``idempotency_key`` identifies the request: posting the same spec again with the
    same key returns the stored result; a different spec with that key is refused
    with ``idempotency_conflict``.
    """

    idempotency_key: str
    postings: Sequence[PostingSpec]
    kind: str = "transfer"
    effective_at: dt.datetime | None = None
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """An account to create. ``code`` is unique; creating the same spec again returns
    the existing account, a different spec under the same code is
    ``account_conflict``."""

    code: str
    currency: str
    type: AccountType
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    credit_limit: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    code: str
    currency: str
    type: AccountType
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    credit_limit: int | None
    metadata: Mapping[str, Any]
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    created_at: dt.datetime
    replayed: bool = field(default=False, compare=False)

    @property
    def balance(self) -> int:
        """Posted balance on the account's normal side (debits - credits for asset and
        expense accounts, credits - debits otherwise)."""
        diff = self.debits_posted - self.credits_posted
        return diff if self.type.debit_normal else -diff

    @property
    def available(self) -> int:
        """Posted balance less pending outflows (what a new hold could still take)."""
        if self.type.debit_normal:
            return self.debits_posted - self.credits_posted - self.credits_pending
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True, slots=True)
class PostingView:
    id: int
    account_id: int
    side: Side
    amount: int
    currency: str
    pending: bool
    debits_posted_after: int
    credits_posted_after: int


@dataclass(frozen=True, slots=True)
class EntryResult:
    id: int
    idempotency_key: str
    kind: str
    effective_at: dt.datetime
    recorded_at: dt.datetime
    description: str
    metadata: Mapping[str, Any]
    postings: tuple[PostingView, ...]
    reverses_entry_id: int | None = None
    hold_id: int | None = None
    replayed: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class HoldView:
    id: int
    entry_id: int
    debit_account_id: int
    credit_account_id: int
    amount: int
    currency: str
    status: HoldStatus
    posted_amount: int
    expires_at: dt.datetime | None
    created_at: dt.datetime
    resolved_entry_id: int | None
    resolved_at: dt.datetime | None
    parent_hold_id: int | None


@dataclass(frozen=True, slots=True)
class HoldResult:
    """The hold after the operation, the entry the operation wrote, and for a partial
    post that keeps the rest on hold, the continuing hold."""

    hold: HoldView
    entry: EntryResult
    continuation: HoldView | None = None

    @property
    def replayed(self) -> bool:
        return self.entry.replayed


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's counters now or as of a past time. ``balance`` is on the
    account's normal side. As-of balances reflect what the ledger had recorded by
    that time (``recorded_at``)."""

    account_id: int
    code: str
    currency: str
    type: AccountType
    as_of: dt.datetime | None
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int

    @property
    def balance(self) -> int:
        diff = self.debits_posted - self.credits_posted
        return diff if self.type.debit_normal else -diff

    @property
    def available(self) -> int:
        if self.type.debit_normal:
            return self.debits_posted - self.credits_posted - self.credits_pending
        return self.credits_posted - self.debits_posted - self.debits_pending


@dataclass(frozen=True, slots=True)
class AccountLine:
    """One posting of an account, with its entry's facts, for statements."""

    posting_id: int
    entry_id: int
    kind: str
    side: Side
    amount: int
    currency: str
    pending: bool
    effective_at: dt.datetime
    recorded_at: dt.datetime
    description: str
    debits_posted_after: int
    credits_posted_after: int


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of a list; pass ``next_cursor`` back to get the next one (None: done)."""

    items: list[T]
    next_cursor: str | None
