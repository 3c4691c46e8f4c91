"""Ledger tasks: the hold expiry sweeper."""

from __future__ import annotations

from celery import shared_task

from settlement.ledger import Ledger
from settlement.tasks.base import DatabaseTask


@shared_task(base=DatabaseTask, bind=True, name="settlement.ledger.expire_holds")
def expire_holds(self: DatabaseTask, limit: int = 1000) -> int:
    """Expire pending holds past their expiry (a batch per run; safe in several
    workers at once: each locks the holds it expires, skipping locked ones)."""
    with self.unit_of_work() as session:
        return len(Ledger(session).expire_holds(limit=limit))
