"""Payouts: a seller's available payable paid out over its payout rail.

1. a unit of work holds ``amount`` on the seller's payable (debit payable, credit
   ``rail:R:payouts:S``, pending: a payout can only take what is available) and
   writes the payout as ``pending``, then commits;
2. the rail is called outside any transaction;
3. a new unit of work records the answer: paid -> the hold is posted; refused ->
   the hold is voided; accepted for later or lost -> the janitor (or the rail's
   notification) settles it.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.base import Capability, PaymentRail, PayoutRequest, mask_pan
from settlement.db import unit_of_work
from settlement.errors import SettlementError
from settlement.ledger import Ledger, LedgerError
from settlement.money import check_minor
from settlement.payments import accounts, events
from settlement.payments.booking import payout_key
from settlement.payments.errors import (
    CurrencyMismatch,
    PayoutNotConfigured,
    PayoutNotFound,
    RailUnsupported,
    refusal_from,
)
from settlement.payments.models import Payout, PayoutState

__all__ = ["Payout", "apply_payout_outcome", "begin_payout", "create_payout", "get_payout", "list_payouts"]
from settlement.payments.service.flows import Context, Hooks, NoHooks
from settlement.payments.service.merchants import get_merchant
from settlement.payments.service.outcomes import Kind, Outcome, call
from settlement.reconciliation.expectations import expect_operation


def begin_payout(session: Session, merchant_id: int, amount: int, currency: str | None, *, rail: PaymentRail,
                 rail_name: str, terms_grace: int, now: dt.datetime) -> Payout:
    merchant = get_merchant(session, merchant_id, lock=True)
    check_minor(amount)
    if not merchant.payout_rail or not merchant.payout_destination:
        raise PayoutNotConfigured(f"merchant {merchant.id} has no payout rail and destination",
                                  merchant_id=merchant.id)
    scur = merchant.settlement_currency
    if currency is not None and currency != scur:
        raise CurrencyMismatch(f"merchant {merchant.id} is paid in {scur}, not {currency}", merchant_id=merchant.id)
    if Capability.PAYOUT not in rail.capabilities or scur not in rail.currencies:
        raise RailUnsupported(f"rail {rail_name} cannot pay out {scur}", rail=rail_name, currency=scur)
    payout = Payout(merchant_id=merchant.id, rail=rail_name, amount=amount, currency=scur,
                    state=PayoutState.PENDING.value, reference="po" + secrets.token_hex(11),
                    destination_display=_display(merchant.payout_destination), created_at=now, updated_at=now,
                    next_check_at=now + dt.timedelta(seconds=terms_grace), checks=0)
    session.add(payout)
    session.flush()
    codes = [accounts.payable(merchant.id, scur), accounts.payouts_in_flight(rail_name, scur)]
    accounts.ensure(session, codes)
    try:
        held = Ledger(session).create_hold(payout_key(payout.id, "hold"), debit=codes[0], credit=codes[1],
                                           amount=amount, currency=scur, kind="payout",
                                           description=f"payout {payout.id} to merchant {merchant.id}",
                                           metadata={"payout_id": str(payout.id), "merchant_id": str(merchant.id)})
    except LedgerError as error:
        # Nothing of the refused payout may stay, not even the ledger's record of it.
        error.durable = False
        raise
    payout.hold_id = held.hold.id
    return payout


def _display(destination: str) -> str:
    digits = destination.replace(" ", "")
    return mask_pan(digits) if digits.isdigit() and len(digits) >= 13 else digits[:4] + "****"


def apply_payout_outcome(session: Session, payout_id: int, outcome: Outcome, now: dt.datetime) -> Payout:
    """Record the rail's answer about a payout (once: a settled payout is left alone)."""
    payout = session.get(Payout, payout_id, with_for_update=True, populate_existing=True)
    assert payout is not None
    if payout.state in (PayoutState.PAID.value, PayoutState.FAILED.value):
        return payout
    payout.updated_at = now
    if outcome.result is not None and outcome.result.rail_reference:
        payout.rail_reference = outcome.result.rail_reference
    ledger = Ledger(session)
    assert payout.hold_id is not None
    if outcome.kind in (Kind.PENDING, Kind.UNKNOWN):
        payout.state = (PayoutState.PROCESSING if outcome.kind is Kind.PENDING else PayoutState.UNKNOWN).value
        payout.failure_code, payout.failure_message = outcome.code or None, outcome.message or None
        payout.next_check_at = now + dt.timedelta(seconds=5)
        return payout
    payout.completed_at = now
    payout.next_check_at = None
    if outcome.kind is Kind.SUCCEEDED:
        ledger.post_hold(payout_key(payout.id, "post"), payout.hold_id, description=f"payout {payout.id} paid")
        # Matched later against the rail's settlement file.
        expect_operation(session, rail=payout.rail, kind="payout", reference=payout.reference,
                         rail_reference=payout.rail_reference, amount=payout.amount, currency=payout.currency,
                         result=outcome.result, at=now)
        payout.state = PayoutState.PAID.value
        payout.failure_code = payout.failure_message = None
        events.payout_event(session, payout, "paid")
    else:
        ledger.void_hold(payout_key(payout.id, "void"), payout.hold_id, description=f"payout {payout.id} refused")
        payout.state = PayoutState.FAILED.value
        payout.failure_code, payout.failure_message = outcome.code, outcome.message[:2000]
        events.payout_event(session, payout, "failed")
    return payout


def create_payout(ctx: Context, merchant_id: int, amount: int, currency: str | None = None, *,
                  hooks: Hooks | None = None) -> Payout:
    """Pay ``amount`` of the seller's available payable out over its payout rail."""
    hooks = hooks or NoHooks()
    with unit_of_work(ctx.factory) as session:
        hooks.begin(session)
        merchant = get_merchant(session, merchant_id)
        if not merchant.payout_rail or not merchant.payout_destination:
            raise PayoutNotConfigured(f"merchant {merchant.id} has no payout rail and destination",
                                      merchant_id=merchant.id)
        rail = ctx.rails.get(merchant.payout_rail)
        payout = begin_payout(session, merchant_id, amount, currency, rail=rail, rail_name=merchant.payout_rail,
                              terms_grace=ctx.terms.janitor_grace_seconds, now=ctx.clock())
        hooks.bind(session, "payout", payout.id)
        request = PayoutRequest(reference=payout.reference, amount=amount, currency=payout.currency,
                                destination=merchant.payout_destination,
                                beneficiary_name=merchant.payout_beneficiary or merchant.name)
        payout_id = payout.id
    outcome = call(lambda: rail.payout(request))
    with unit_of_work(ctx.factory) as session:
        payout = apply_payout_outcome(session, payout_id, outcome, ctx.clock())
        error: SettlementError | None = None
        if payout.state == PayoutState.FAILED.value:
            error = refusal_from(payout.failure_code or "rail_error", payout.failure_message or "refused",
                                 payout_id=payout.id, **outcome.error_detail)
        hooks.finish(session, payout, error)
    if error is not None:
        raise error
    return payout


def get_payout(session: Session, payout_id: int) -> Payout:
    payout = session.get(Payout, payout_id)
    if payout is None:
        raise PayoutNotFound(f"no payout {payout_id}", payout_id=payout_id)
    return payout


def list_payouts(session: Session, *, merchant_id: int | None, state: str | None, after: int | None,
                 limit: int) -> list[Payout]:
    query = select(Payout).order_by(Payout.id.desc()).limit(limit)
    if after is not None:
        query = query.where(Payout.id < after)
    if merchant_id is not None:
        query = query.where(Payout.merchant_id == merchant_id)
    if state is not None:
        query = query.where(Payout.state == state)
    return list(session.scalars(query))
