"""Merchants (the marketplace's sellers). Their ledger payable is created with them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.ledger import Balance, Ledger
from settlement.money import check_currency
from settlement.payments import accounts
from settlement.payments.errors import InvalidCommission, MerchantConflict, MerchantNotFound
from settlement.payments.models import Merchant


@dataclass(frozen=True)
class MerchantSpec:
    name: str
    settlement_currency: str
    commission_rate: Decimal
    external_id: str | None = None
    payout_rail: str | None = None
    payout_destination: str | None = None
    payout_beneficiary: str | None = None
    metadata: Mapping[str, Any] | None = None


def check_commission(rate: Decimal) -> Decimal:
    if not isinstance(rate, Decimal) or not rate.is_finite() or not Decimal(0) <= rate < Decimal(1):
        raise InvalidCommission(f"commission rate {rate} must be at least 0 and below 1", field="commission_rate")
    if rate != rate.quantize(Decimal("1e-6")):
        raise InvalidCommission("commission rate has more than 6 decimal places", field="commission_rate")
    return rate


def create_merchant(session: Session, spec: MerchantSpec, now: dt.datetime | None = None) -> Merchant:
    """Create a seller and its payable account (in its settlement currency)."""
    check_currency(spec.settlement_currency)
    check_commission(spec.commission_rate)
    if spec.external_id is not None:
        existing = session.scalars(select(Merchant).where(Merchant.external_id == spec.external_id)).first()
        if existing is not None:
            raise MerchantConflict(f"merchant {existing.id} already has external_id {spec.external_id!r}",
                                   merchant_id=existing.id)
    stamp = now or utcnow()
    merchant = Merchant(name=spec.name, external_id=spec.external_id, settlement_currency=spec.settlement_currency,
                        commission_rate=spec.commission_rate, payout_rail=spec.payout_rail,
                        payout_destination=spec.payout_destination, payout_beneficiary=spec.payout_beneficiary,
                        meta=dict(spec.metadata or {}), created_at=stamp, updated_at=stamp)
    session.add(merchant)
    session.flush()
    accounts.ensure(session, [accounts.payable(merchant.id, merchant.settlement_currency)])
    return merchant


def get_merchant(session: Session, merchant_id: int, *, lock: bool = False) -> Merchant:
    merchant = session.get(Merchant, merchant_id, with_for_update=lock or None)
    if merchant is None:
        raise MerchantNotFound(f"no merchant {merchant_id}", merchant_id=merchant_id)
    return merchant


#: (database, merchant id) -> the merchant's settlement currency, which never changes
#: (merchants are never deleted either). Only a hint: the payment's insert checks it
#: against the merchant's row, and a mismatch (a database recreated under the same
#: URL) drops the entry.
_CURRENCIES: dict[tuple[object, int], str] = {}
_CURRENCIES_MAX = 100_000


def settlement_currency(session: Session, merchant_id: int) -> str:
    """The merchant's settlement currency, read once per process and database."""
    key = (session.get_bind().engine.url, merchant_id)
    found = _CURRENCIES.get(key)
    if found is None:
        found = get_merchant(session, merchant_id).settlement_currency
        if len(_CURRENCIES) >= _CURRENCIES_MAX:
            _CURRENCIES.clear()
        _CURRENCIES[key] = found
    return found


def forget_settlement_currency(session: Session, merchant_id: int) -> None:
    _CURRENCIES.pop((session.get_bind().engine.url, merchant_id), None)


def update_merchant(session: Session, merchant_id: int, changes: Mapping[str, Any],
                    now: dt.datetime | None = None) -> Merchant:
    """Change commission or payout details (the settlement currency is fixed: the
    payable lives in it). New payments use the new commission; existing ones keep
    theirs."""
    merchant = get_merchant(session, merchant_id, lock=True)
    for field, value in changes.items():
        if field == "commission_rate":
            check_commission(value)
        if field not in ("name", "commission_rate", "payout_rail", "payout_destination", "payout_beneficiary",
                         "metadata"):
            raise ValueError(f"{field} cannot be changed")
        setattr(merchant, "meta" if field == "metadata" else field, value)
    merchant.updated_at = now or utcnow()
    session.flush()
    return merchant


def list_merchants(session: Session, *, after: int | None, limit: int) -> list[Merchant]:
    query = select(Merchant).order_by(Merchant.id.desc()).limit(limit)
    if after is not None:
        query = query.where(Merchant.id < after)
    return list(session.scalars(query))


def payable_balance(session: Session, merchant: Merchant) -> Balance:
    code = accounts.payable(merchant.id, merchant.settlement_currency)
    accounts.ensure(session, [code])
    return Ledger(session).balance(code)
