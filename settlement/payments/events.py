"""The events payments announce to the marketplace (outgoing webhooks), recorded in
the same transaction as the change they describe."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from settlement.money import format_minor
from settlement.payments.models import Payment, PaymentAttempt, Payout
from settlement.webhooks import emit


def payment_data(payment: Payment) -> dict[str, Any]:
    cur = payment.currency
    return {"payment_id": payment.id, "merchant_id": payment.merchant_id, "rail": payment.rail,
            "state": payment.state, "amount": format_minor(payment.amount, cur), "currency": cur,
            "amount_captured": format_minor(payment.amount_captured, cur),
            "amount_refunded": format_minor(payment.amount_refunded, cur),
            "rail_reference": payment.rail_reference, "failure_code": payment.failure_code}


def payment_event(session: Session, payment: Payment, name: str, attempt: PaymentAttempt) -> None:
    """``payment.<name>``, once per attempt."""
    data = payment_data(payment)
    data["operation_id"] = attempt.id
    data["operation_amount"] = format_minor(attempt.amount, attempt.currency)
    emit(session, f"payment.{name}", data, key=f"payment:{payment.id}:{name}:{attempt.id}")


def refund_event(session: Session, payment: Payment, attempt: PaymentAttempt, name: str) -> None:
    emit(session, f"refund.{name}", {
        "refund_id": attempt.id, "payment_id": payment.id, "amount": format_minor(attempt.amount, attempt.currency),
        "currency": attempt.currency, "state": attempt.state, "failure_code": attempt.failure_code,
        "payment": payment_data(payment)}, key=f"refund:{attempt.id}:{name}")


def payout_event(session: Session, payout: Payout, name: str) -> None:
    emit(session, f"payout.{name}", {
        "payout_id": payout.id, "merchant_id": payout.merchant_id, "rail": payout.rail,
        "amount": format_minor(payout.amount, payout.currency), "currency": payout.currency,
        "state": payout.state, "failure_code": payout.failure_code}, key=f"payout:{payout.id}:{name}")
