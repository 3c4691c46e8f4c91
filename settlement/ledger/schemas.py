"""API shapes of the ledger. Amounts are decimal strings in the currency's own
unit, always with the currency beside them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from settlement.ledger.types import AccountLine, AccountView, Balance
from settlement.money import format_minor


class AccountOut(BaseModel):
    id: int
    code: str
    currency: str
    type: str
    balance: str
    available: str
    debits_posted: str
    credits_posted: str
    debits_pending: str
    credits_pending: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    metadata: dict[str, Any]
    created_at: dt.datetime

    @classmethod
    def of(cls, a: AccountView) -> AccountOut:
        c = a.currency
        return cls(id=a.id, code=a.code, currency=c, type=a.type.value, balance=format_minor(a.balance, c),
                   available=format_minor(a.available, c), debits_posted=format_minor(a.debits_posted, c),
                   credits_posted=format_minor(a.credits_posted, c),
                   debits_pending=format_minor(a.debits_pending, c),
                   credits_pending=format_minor(a.credits_pending, c),
                   debits_must_not_exceed_credits=a.debits_must_not_exceed_credits,
                   credits_must_not_exceed_debits=a.credits_must_not_exceed_debits,
                   metadata=dict(a.metadata), created_at=a.created_at)


class AccountList(BaseModel):
    data: list[AccountOut]
    next_cursor: str | None


class BalanceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"description": "Balance on the account's normal side."})

    account_id: int
    code: str
    currency: str
    as_of: dt.datetime | None
    balance: str
    available: str
    debits_posted: str
    credits_posted: str
    debits_pending: str
    credits_pending: str

    @classmethod
    def of(cls, b: Balance) -> BalanceOut:
        c = b.currency
        return cls(account_id=b.account_id, code=b.code, currency=c, as_of=b.as_of,
                   balance=format_minor(b.balance, c), available=format_minor(b.available, c),
                   debits_posted=format_minor(b.debits_posted, c), credits_posted=format_minor(b.credits_posted, c),
                   debits_pending=format_minor(b.debits_pending, c),
                   credits_pending=format_minor(b.credits_pending, c))


class AccountLineOut(BaseModel):
    posting_id: int
    entry_id: int
    kind: str
    side: str
    amount: str
    currency: str
    pending: bool
    effective_at: dt.datetime
    recorded_at: dt.datetime
    description: str

    @classmethod
    def of(cls, line: AccountLine) -> AccountLineOut:
        return cls(posting_id=line.posting_id, entry_id=line.entry_id, kind=line.kind, side=line.side.value,
                   amount=format_minor(line.amount, line.currency), currency=line.currency, pending=line.pending,
                   effective_at=line.effective_at, recorded_at=line.recorded_at, description=line.description)


class AccountLineList(BaseModel):
    data: list[AccountLineOut]
    next_cursor: str | None
