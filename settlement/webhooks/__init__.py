"""Outgoing webhooks to the marketplace.

Domains call :func:`emit` inside their own transaction::

    emit(session, "payment.captured", {"payment_id": "pay_1", "amount": "150.00", "currency": "RUB"},
         key=f"payment:{payment.id}:capture:{capture.id}")

The event is recorded in ``webhook_events`` (once per ``key``) and delivered to
every active endpoint subscribed to its type after the transaction commits, signed
(:mod:`settlement.webhooks.signing`) and retried with backoff. Receivers written in
Python can check requests with :func:`verify_signature`.
"""

from settlement.webhooks.service.outbox import EVENT_GROUPS, EVENT_TYPES, emit
from settlement.webhooks.signing import verify_signature

__all__ = ["EVENT_GROUPS", "EVENT_TYPES", "emit", "verify_signature"]
