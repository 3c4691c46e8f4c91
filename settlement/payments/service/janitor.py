"""The janitor: settles operations whose outcome the service does not know.

An attempt (or payout) is *in flight* while it is ``pending`` or ``unknown``. Each
has a ``next_check_at``: a new attempt's is its creation plus the grace period (the
request that started it is still waiting for the rail; the grace is longer than any
rail timeout), an ``unknown`` or rail-pending one's a few seconds after its answer
was lost. When it is due, the janitor

1. claims a batch of due attempts (``FOR UPDATE SKIP LOCKED``, so several janitors
   never ask twice) and moves their ``next_check_at`` on with a backoff, commits;
2. asks each one's rail (:meth:`PaymentRail.query`), outside any transaction;
3. records each answer with :func:`~settlement.payments.service.apply.apply_outcome`,
   which books it once whoever gets there first (the request, a notification, the
   janitor): ledger keys are derived from the attempt.

It also voids authorizations that reached their expiry.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from adapters.base import QueryRequest, RailError
from settlement.db import unit_of_work
from settlement.errors import SettlementError
from settlement.payments.models import (
    IN_FLIGHT,
    PAYOUT_IN_FLIGHT,
    CaptureMethod,
    Operation,
    Payment,
    PaymentAttempt,
    Payout,
)
from settlement.payments.service import apply, flows, outcomes, payouts
from settlement.payments.service.flows import Context

log = logging.getLogger("settlement.payments.janitor")

MAX_BACKOFF = dt.timedelta(hours=1)


@dataclass
class Report:
    """What one janitor run did: ids by what became of them."""

    settled: list[int] = field(default_factory=list)
    still_pending: list[int] = field(default_factory=list)
    unreachable: list[int] = field(default_factory=list)
    payouts_settled: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Due:
    attempt_id: int
    payment_id: int
    rail: str
    query: QueryRequest
    sale: bool


def _backoff(checks: int) -> dt.timedelta:
    return min(dt.timedelta(seconds=5 * 2 ** min(checks, 12)), MAX_BACKOFF)


def _query_operation(attempt: PaymentAttempt, payment: Payment) -> str:
    if attempt.operation == Operation.AUTHORIZE.value and payment.capture_method == CaptureMethod.AUTOMATIC.value:
        return "sale"
    return attempt.operation


def _claim(session: Session, now: dt.datetime, limit: int, rail: str | None) -> list[_Due]:
    query = (select(PaymentAttempt, Payment).join(Payment, Payment.id == PaymentAttempt.payment_id)
             .where(PaymentAttempt.state.in_(IN_FLIGHT), PaymentAttempt.next_check_at <= now)
             .order_by(PaymentAttempt.next_check_at).limit(limit)
             .with_for_update(of=PaymentAttempt, skip_locked=True))
    if rail is not None:
        query = query.where(Payment.rail == rail)
    due = []
    for attempt, payment in session.execute(query):
        attempt.next_check_at = now + _backoff(attempt.checks)
        attempt.checks += 1
        rail_reference = attempt.rail_reference or payment.rail_reference
        due.append(_Due(attempt.id, payment.id, payment.rail, QueryRequest(attempt.reference, rail_reference,
                                                               _query_operation(attempt, payment)),
                        payment.capture_method == CaptureMethod.AUTOMATIC.value))
    return due


def reconcile(ctx: Context, *, limit: int = 200, rail: str | None = None) -> Report:
    """Ask the rails about every due in-flight attempt and payout, and settle them."""
    report = Report()
    now = ctx.clock()
    with unit_of_work(ctx.factory) as session:
        due = _claim(session, now, limit, rail)
        due_payouts = _claim_payouts(session, now, limit, rail)
    for item in due:
        try:
            result = ctx.rails.get(item.rail).query(item.query)
        except (RailError, SettlementError) as exc:
            log.warning("janitor: cannot ask %s about %s: %s", item.rail, item.query.reference, exc)
            report.unreachable.append(item.attempt_id)
            continue
        outcome = outcomes.from_query(result, item.query.operation, sale=item.sale)
        with unit_of_work(ctx.factory) as session:
            _payment, attempt = apply.apply_outcome(session, item.attempt_id, outcome, ctx.terms, ctx.clock(),
                                                    payment_id=item.payment_id)
            settled = attempt.state in ("succeeded", "failed")
        (report.settled if settled else report.still_pending).append(item.attempt_id)
    for payout_id, rail_name, query in due_payouts:
        try:
            result = ctx.rails.get(rail_name).query(query)
        except (RailError, SettlementError) as exc:
            log.warning("janitor: cannot ask %s about payout %s: %s", rail_name, payout_id, exc)
            continue
        outcome = outcomes.from_query(result, "payout")
        with unit_of_work(ctx.factory) as session:
            payout = payouts.apply_payout_outcome(session, payout_id, outcome, ctx.clock())
            if payout.state in ("paid", "failed"):
                report.payouts_settled.append(payout_id)
    return report


def _claim_payouts(session: Session, now: dt.datetime, limit: int,
                   rail: str | None) -> list[tuple[int, str, QueryRequest]]:
    query = (select(Payout).where(Payout.state.in_(PAYOUT_IN_FLIGHT), Payout.next_check_at <= now)
             .order_by(Payout.next_check_at).limit(limit).with_for_update(skip_locked=True))
    if rail is not None:
        query = query.where(Payout.rail == rail)
    claimed = []
    for payout in session.scalars(query):
        payout.next_check_at = now + _backoff(payout.checks)
        payout.checks += 1
        claimed.append((payout.id, payout.rail, QueryRequest(payout.reference, payout.rail_reference, "payout")))
    return claimed


def check_now(session: Session, rail: str, now: dt.datetime) -> int:
    """Make every in-flight attempt and payout of ``rail`` due now (an unverifiable
    notification arrived: the rail itself is asked instead). Returns how many."""
    payment_ids = select(Payment.id).where(Payment.rail == rail)
    attempts = session.execute(update(PaymentAttempt).where(PaymentAttempt.state.in_(IN_FLIGHT),
                                                            PaymentAttempt.payment_id.in_(payment_ids))
                               .values(next_check_at=now))
    payouts_due = session.execute(update(Payout).where(Payout.state.in_(PAYOUT_IN_FLIGHT), Payout.rail == rail)
                                  .values(next_check_at=now))
    return sum(int(getattr(result, "rowcount", 0) or 0) for result in (attempts, payouts_due))


def expire_authorizations(ctx: Context, *, limit: int = 100) -> Report:
    """Void (at the rail and in the ledger) authorizations past their expiry."""
    report = Report()
    now = ctx.clock()
    with ctx.factory() as session:
        ids = list(session.scalars(select(Payment.id).where(
            Payment.authorization_expires_at <= now, Payment.in_flight_attempt_id.is_(None),
            Payment.amount_authorized > Payment.amount_captured + Payment.amount_voided).limit(limit)))
    for payment_id in ids:
        try:
            flows.void(ctx, payment_id)
        except SettlementError as exc:
            log.warning("janitor: could not void expired authorization of payment %s: %s", payment_id, exc)
            continue
        report.expired.append(payment_id)
    return report
