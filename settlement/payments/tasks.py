"""Payment tasks: the janitor, expired authorizations, old idempotency keys."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from settlement.config import get_settings
from settlement.payments.rails import process_rails
from settlement.payments.service import janitor
from settlement.payments.service.flows import Context
from settlement.tasks.base import DatabaseTask, task_session_factory


def _context() -> Context:
    return Context.from_settings(task_session_factory(), process_rails(), get_settings())


@shared_task(base=DatabaseTask, bind=True, name="settlement.payments.reconcile_in_flight")
def reconcile_in_flight(self: Any, rail: str | None = None) -> dict[str, list[int]]:
    """Ask the rails about operations whose outcome is unknown or pending, and settle them."""
    report = janitor.reconcile(_context(), rail=rail)
    return {"settled": report.settled, "still_pending": report.still_pending,
            "unreachable": report.unreachable, "payouts_settled": report.payouts_settled}


@shared_task(base=DatabaseTask, bind=True, name="settlement.payments.expire_authorizations")
def expire_authorizations(self: Any) -> list[int]:
    """Void authorizations that reached their expiry, at the rail and in the ledger."""
    return janitor.expire_authorizations(_context()).expired


@shared_task(base=DatabaseTask, bind=True, name="settlement.payments.purge_idempotency_keys")
def purge_idempotency_keys(self: Any) -> int:
    """Forget stored idempotent responses older than the retention period."""
    from settlement.api.idempotency import purge

    with self.unit_of_work() as session:
        return purge(session, get_settings().idempotency_retention_hours)
