"""Factories for ledger tests."""

from __future__ import annotations

from collections.abc import Sequence

from settlement.db import SessionFactory, unit_of_work
from settlement.ledger import AccountSpec, AccountType, AccountView, Ledger


def open_accounts(factory: SessionFactory, specs: Sequence[AccountSpec]) -> list[AccountView]:
    with unit_of_work(factory) as session:
        ledger = Ledger(session)
        return [ledger.create_account(spec) for spec in specs]


def asset(code: str, currency: str = "RUB") -> AccountSpec:
    return AccountSpec(code, currency, AccountType.ASSET)


def wallet(code: str, currency: str = "RUB", credit_limit: int | None = None) -> AccountSpec:
    """A customer balance that must not go below zero (liability, no overdraft)."""
    return AccountSpec(code, currency, AccountType.LIABILITY, debits_must_not_exceed_credits=True,
                       credit_limit=credit_limit)
