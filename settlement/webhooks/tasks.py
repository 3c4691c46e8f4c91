"""Webhook tasks: deliver one delivery (an attempt), and sweep for due retries."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from settlement.config import get_settings
from settlement.db.types import utcnow
from settlement.tasks.base import DatabaseTask, task_session_factory
from settlement.webhooks.service.delivery import RetryPolicy, deliver_once, due_deliveries
from settlement.webhooks.service.outbox import DELIVER_TASK

#: Retries due sooner than this are also sent as a delayed message, so they happen
#: on time; later ones are left to the sweeper (a message held by a worker for
#: hours would outlive the Redis transport's visibility timeout and be redelivered).
SHORT_RETRY = dt.timedelta(minutes=15)
#: How overdue a delivery must be before the sweeper (with a broker) sends it again.
OVERDUE_GRACE = dt.timedelta(seconds=60)


@shared_task(base=DatabaseTask, bind=True, name=DELIVER_TASK, ignore_result=True)
def deliver(self: DatabaseTask, delivery_id: int) -> str:
    """One attempt of a webhook delivery, if it is pending and due. Safe to run
    twice: the claim locks the row (skipping it if locked) and re-checks its state."""
    outcome = deliver_once(task_session_factory(), delivery_id, policy=RetryPolicy.from_settings(get_settings()))
    if outcome is None:
        return "skipped"
    due = outcome.next_attempt_at
    if due is not None and not self.app.conf.task_always_eager and due - utcnow() <= SHORT_RETRY:
        # Back to the queue this message came from (a worker may serve a queue other
        # than the default one).
        queue = (self.request.delivery_info or {}).get("routing_key") or None
        self.apply_async((delivery_id,), eta=due, queue=queue)
    return outcome.status.value


@shared_task(base=DatabaseTask, bind=True, name="settlement.webhooks.retry_due", ignore_result=True)
def retry_due(self: DatabaseTask, limit: int = 500) -> int:
    """Send a delivery task for every pending delivery that is due: retries, and
    deliveries whose message was lost or whose worker died mid-attempt."""
    # With a broker, a delivery just due most likely has its message queued already
    # (the first one, or a retry sent with an ETA): leave those alone for a moment
    # instead of adding a duplicate on every sweep while workers catch up.
    grace = dt.timedelta(0) if self.app.conf.task_always_eager else OVERDUE_GRACE
    with self.unit_of_work() as session:
        ids = due_deliveries(session, now=utcnow() - grace, limit=limit)
    task = self.app.tasks[DELIVER_TASK]
    for delivery_id in ids:
        task.delay(delivery_id)
    return len(ids)
