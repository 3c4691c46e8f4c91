"""The Celery application.

With ``SETTLEMENT_BROKER_URL`` empty (the embedded default) tasks run inline, in
the calling process, as soon as they are sent; with a Redis or AMQP URL they go to
workers (``celery -A settlement.tasks worker``) and the scheduler
(``celery -A settlement.tasks beat``).
"""

from __future__ import annotations

import functools
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from celery import Celery
from celery.schedules import crontab

from settlement.config import Settings, get_settings

#: Modules whose tasks the workers load. Each domain with tasks adds its module.
TASK_MODULES = [
    "settlement.ledger.tasks",
    "settlement.webhooks.tasks",
    "settlement.payments.tasks",
    "settlement.fx.tasks",
    "settlement.journal.tasks",
    "settlement.exports.tasks",
    "settlement.reconciliation.tasks",
]

#: Periodic work. Domains add their entries here.
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "expire-holds": {"task": "settlement.ledger.expire_holds", "schedule": timedelta(minutes=1)},
    "webhook-retries": {"task": "settlement.webhooks.retry_due", "schedule": timedelta(seconds=30)},
    "payments-janitor": {"task": "settlement.payments.reconcile_in_flight", "schedule": timedelta(seconds=30)},
    "payments-expire-authorizations": {"task": "settlement.payments.expire_authorizations",
                                       "schedule": timedelta(minutes=5)},
    "idempotency-purge": {"task": "settlement.payments.purge_idempotency_keys", "schedule": timedelta(hours=1)},
    "fx-refresh-rates": {"task": "settlement.fx.refresh_rates", "schedule": timedelta(minutes=15)},
    "journal-seal": {"task": "settlement.journal.seal", "schedule": timedelta(seconds=10)},
    "journal-checkpoint": {"task": "settlement.journal.checkpoint", "schedule": timedelta(minutes=5)},
    # Each rail's inbox folder (and the bank statements' one), once a day.
    "reconciliation-inbox": {"task": "settlement.reconciliation.pickup_inboxes",
                             "schedule": crontab(hour=6, minute=0)},
    "reconciliation-resume": {"task": "settlement.reconciliation.resume_stale_runs",
                              "schedule": timedelta(minutes=1)},
}


def create_celery(settings: Settings | None = None) -> Celery:
    config = settings or get_settings()
    app = Celery("settlement", broker=config.broker_url or "memory://",
                 backend=config.result_backend or None, include=TASK_MODULES)
    app.conf.update(
        task_always_eager=config.tasks_inline,
        task_eager_propagates=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        timezone="UTC",
        enable_utc=True,
        # A task is acknowledged after it ran, so a worker that dies mid-task hands
        # it to another; tasks are written to be safe to run twice.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        beat_schedule=BEAT_SCHEDULE,
    )
    return app


@functools.cache
def get_celery() -> Celery:
    """The process's Celery app, built on first use and made current."""
    app = create_celery()
    app.set_default()
    for module in TASK_MODULES:
        __import__(module)
    return app


def broker_reachable(url: str, timeout: float = 1.0) -> bool:  # float-ok: seconds
    """Whether a TCP connection to the broker's host and port succeeds."""
    parsed = urlparse(url)
    default_port = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671}.get(parsed.scheme, 0)
    if not parsed.hostname or not (parsed.port or default_port):
        return False
    try:
        with socket.create_connection((parsed.hostname, parsed.port or default_port), timeout=timeout):
            return True
    except OSError:
        return False
