"""Notifications from the rails.

1. the raw body (and headers) is stored first, in its own committed transaction,
   so nothing a rail sent is ever lost, whatever happens next;
2. the adapter verifies and parses it (:meth:`PaymentRail.parse_notification`);
   one that cannot be verified is refused (status ``rejected``) and its content is
   not trusted at all: instead every in-flight operation of that rail is made due
   and the janitor asks the rail itself;
3. a verified notification is deduplicated on the rail's notification id (a unique
   index: retries of one event carry the same id) and applied to the attempt or
   payout its reference names, if that is still in flight;
4. the answer is the adapter's acknowledgement.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.base import Notification, NotificationAck, RailError, RailResult
from settlement.db import unit_of_work
from settlement.payments.models import IN_FLIGHT, PAYOUT_IN_FLIGHT, Payment, PaymentAttempt, Payout, RailNotification
from settlement.payments.service import apply, janitor, outcomes, payouts
from settlement.payments.service.flows import Context

log = logging.getLogger("settlement.payments.notifications")

#: Headers worth keeping with the body (others may carry credentials of proxies).
KEPT_HEADERS = ("content-type", "user-agent", "content-length")
RECONCILE_TASK = "settlement.payments.reconcile_in_flight"


@dataclass(frozen=True)
class Received:
    notification_id: int
    status: str
    ack: NotificationAck


def receive(ctx: Context, rail_name: str, headers: Mapping[str, str], body: bytes) -> Received:
    rail = ctx.rails.get(rail_name)
    with unit_of_work(ctx.factory) as session:
        row = RailNotification(rail=rail_name, received_at=ctx.clock(), body=body, status="received",
                               headers={k.lower(): v for k, v in headers.items() if k.lower() in KEPT_HEADERS})
        session.add(row)
        session.flush()
        row_id = row.id
    try:
        notification = rail.parse_notification(headers, body)
    except RailError as exc:
        log.warning("refused a %s notification (%s): %s", rail_name, exc.code, exc.message)
        with unit_of_work(ctx.factory) as session:
            stored = session.get(RailNotification, row_id)
            assert stored is not None
            stored.status, stored.error_code, stored.error_message = "rejected", exc.code, exc.message[:2000]
            stored.processed_at = ctx.clock()
            janitor.check_now(session, rail_name, ctx.clock())
            from settlement.tasks.app import get_celery
            from settlement.tasks.base import send_after_commit

            send_after_commit(session, get_celery().tasks[RECONCILE_TASK], rail_name)
        return Received(row_id, "rejected", rail.notification_ack(None))
    status = _apply(ctx, row_id, notification)
    return Received(row_id, status, rail.notification_ack(notification))


def _apply(ctx: Context, row_id: int, notification: Notification) -> str:
    try:
        with unit_of_work(ctx.factory) as session:
            row = session.get(RailNotification, row_id)
            assert row is not None
            row.notification_id = notification.notification_id[:200]
            row.reference = notification.reference[:64]
            row.processed_at = ctx.clock()
            session.flush()
            row.status = _settle(ctx, session, notification)
            return row.status
    except IntegrityError:
        pass
    with unit_of_work(ctx.factory) as session:
        row = session.get(RailNotification, row_id)
        assert row is not None
        row.status, row.processed_at = "duplicate", ctx.clock()
        row.reference = notification.reference[:64]
    return "duplicate"


def _settle(ctx: Context, session: Session, notification: Notification) -> str:
    result = RailResult(rail=notification.rail, reference=notification.reference,
                        rail_reference=notification.rail_reference, status=notification.status,
                        amount=notification.amount, currency=notification.currency, fx=notification.fx)
    attempt = session.scalars(select(PaymentAttempt).where(PaymentAttempt.reference == notification.reference)
                              ).first()
    if attempt is not None:
        if attempt.state not in IN_FLIGHT:
            return "ignored"
        payment = session.get(Payment, attempt.payment_id)
        assert payment is not None
        outcome = outcomes.from_query(result, attempt.operation, sale=payment.capture_method == "automatic")
        if outcome.kind is not outcomes.Kind.PENDING:
            apply.apply_outcome(session, attempt.id, outcome, ctx.terms, ctx.clock(), payment_id=payment.id)
        return "applied" if outcome.kind is not outcomes.Kind.PENDING else "ignored"
    payout = session.scalars(select(Payout).where(Payout.reference == notification.reference)).first()
    if payout is None:
        return "unmatched"
    outcome = outcomes.from_query(result, "payout")
    if payout.state not in PAYOUT_IN_FLIGHT or outcome.kind is outcomes.Kind.PENDING:
        return "ignored"
    payouts.apply_payout_outcome(session, payout.id, outcome, ctx.clock())
    return "applied"
