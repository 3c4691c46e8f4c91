"""The transactional outbox: :func:`emit` records an event in the caller's
transaction and queues its deliveries to run once that transaction commits.

Why an outbox: the event must exist exactly when the change it describes exists.
Written in the same transaction, it is committed with the payment or rolled back
with it; the deliveries are sent only after the commit (a rollback sends nothing),
and a delivery whose message is lost (a crash right after the commit, a broker
outage) is still a ``pending`` row that the retry sweeper picks up.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from celery import Task
from sqlalchemy import bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from settlement.db.direct import Direct
from settlement.db.types import utcnow
from settlement.tasks.base import send_after_commit
from settlement.webhooks.errors import InvalidEventData, InvalidEventType, InvalidWebhookKey
from settlement.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger("settlement.webhooks")

#: Event groups an endpoint can subscribe to (``payment.*``).
EVENT_GROUPS = ("payment", "refund", "payout")
#: The event types the service emits today. Other ``<group>.<name>`` types are
#: accepted, so a new state needs no change here.
EVENT_TYPES = (
    "payment.authorized", "payment.captured", "payment.voided", "payment.failed",
    "refund.succeeded", "refund.failed",
    "payout.paid", "payout.failed",
)
DELIVER_TASK = "settlement.webhooks.deliver"
KEY_MAX_LENGTH = 200

_NAME = r"[a-z][a-z0-9_]*"
_TYPE = re.compile(rf"({_NAME})\.({_NAME})")
_PATTERN = re.compile(rf"\*|({_NAME})\.(\*|{_NAME})")


def check_event_type(event_type: str) -> str:
    """``event_type`` if it is ``<group>.<name>`` with a known group."""
    match = _TYPE.fullmatch(event_type) if isinstance(event_type, str) else None
    if match is None or match.group(1) not in EVENT_GROUPS:
        raise InvalidEventType(f"event type {event_type!r} is not <group>.<name> with a group among "
                               f"{', '.join(EVENT_GROUPS)}", event_type=str(event_type))
    return event_type


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """Subscription patterns, deduplicated in order: ``payment.captured``,
    ``payment.*`` or ``*``."""
    checked: list[str] = []
    for pattern in patterns:
        match = _PATTERN.fullmatch(pattern) if isinstance(pattern, str) else None
        if match is None or (pattern != "*" and match.group(1) not in EVENT_GROUPS):
            raise InvalidEventType(f"subscription {pattern!r} is not <group>.<name>, <group>.* or *, "
                                   f"with a group among {', '.join(EVENT_GROUPS)}", event_type=str(pattern))
        if pattern not in checked:
            checked.append(pattern)
    if not checked:
        raise InvalidEventType("an endpoint subscribes to at least one event type")
    return checked


def subscribed(patterns: Iterable[str], event_type: str) -> bool:
    """Whether an endpoint with ``patterns`` receives ``event_type``."""
    group = event_type.split(".", 1)[0]
    return any(p in ("*", event_type, f"{group}.*") for p in patterns)


def plain_json(value: Any, path: str = "data") -> Any:
    """``value`` as plain JSON, refusing what would be ambiguous on the wire.

    Floats and Decimals are refused: an amount must already be a decimal string with
    its currency's exponent (``settlement.money.format_minor``). Aware datetimes
    become ISO 8601 text; naive ones are refused (their zone would be a guess).
    """
    if value is None or isinstance(value, bool):
        return value
    # Enum members (StrEnum states, IntEnum codes) are stored as their plain values.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEventData(f"{path}: keys must be strings, not {type(key).__name__}", field=path)
            result[key] = plain_json(item, f"{path}.{key}")
        return result
    if isinstance(value, (list, tuple)):
        return [plain_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InvalidEventData(f"{path}: naive datetime; pass an aware one", field=path)
        return value.astimezone(dt.UTC).isoformat()
    raise InvalidEventData(f"{path}: {type(value).__name__} is not allowed in event data (amounts are "
                           "decimal strings formatted for their currency)", field=path)


def emit(session: Session, event_type: str, data: Mapping[str, Any], *, key: str) -> None:
    """Record event ``event_type`` with ``data`` in ``session``'s transaction and
    queue its delivery to every active endpoint subscribed to it, sent only once
    the transaction commits.

    ``key`` makes emission idempotent: the first event recorded under a key is the
    one kept, and emitting the key again (in this transaction or any later one)
    records and sends nothing. Never touches the network; never commits.
    """
    check_event_type(event_type)
    if not isinstance(key, str) or not key or len(key) > KEY_MAX_LENGTH:
        raise InvalidWebhookKey(f"an event key is 1 to {KEY_MAX_LENGTH} characters", key=str(key)[:KEY_MAX_LENGTH])
    if not isinstance(data, Mapping):
        raise InvalidEventData("event data is a JSON object", field="data")
    document = plain_json(data)
    now = utcnow()
    event_id, endpoints = _insert_event(session, key, event_type, document, now)
    if event_id is None:
        _note_repeat(session, key, event_type, document)
        return
    targets = [endpoint_id for endpoint_id, patterns in endpoints if subscribed(patterns, event_type)]
    if targets:
        queue_deliveries(session, event_id, targets, now=now)


def queue_deliveries(session: Session, event_id: int, endpoint_ids: list[int], *, now: dt.datetime,
                     replay: bool = False) -> list[int]:
    """Create a pending delivery of the event to each endpoint, due now, and send a
    delivery task for each after the commit. Returns the delivery ids."""
    rows = [{"event_id": event_id, "endpoint_id": endpoint_id, "status": DeliveryStatus.PENDING.value,
             "attempts": 0, "next_attempt_at": now, "replay": replay, "created_at": now}
            for endpoint_id in endpoint_ids]
    ids = list(session.scalars(insert(WebhookDelivery).returning(WebhookDelivery.id), rows))
    task = deliver_task()
    for delivery_id in ids:
        send_after_commit(session, task, delivery_id)
    return ids


def deliver_task() -> Task:
    """The delivery task of the process's Celery app (building the app if needed, so
    the message goes where the settings say, never to a default broker)."""
    from settlement.tasks.app import get_celery

    task: Task = get_celery().tasks[DELIVER_TASK]
    return task


def _insert_event(session: Session, key: str, event_type: str, document: dict[str, Any],
                  now: dt.datetime) -> tuple[int | None, list[tuple[int, list[str]]]]:
    """The new event's id (None if the key was taken) and the active endpoints
    (id, subscriptions) it may go to; on PostgreSQL both in one statement."""
    values = {"public_id": f"evt_{uuid.uuid4().hex}", "key": key, "type": event_type, "data": document,
              "created_at": now}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        rows = _insert_and_endpoints().rows(session, values)
        if not rows:
            return None, []
        return int(rows[0][0]), [(int(row[1]), row[2]) for row in rows if row[1] is not None]
    event_id: int | None = session.execute(_insert_statement(dialect), values).scalar_one_or_none()
    if event_id is None:
        return None, []
    return event_id, [(int(row[0]), row[1]) for row in session.execute(_ACTIVE_ENDPOINTS)]


@functools.cache
def _insert_and_endpoints() -> Direct:
    """PostgreSQL: the insert of :func:`_insert_statement` and the active endpoints,
    one row per endpoint (one row with no endpoint when there is none; no row when
    the key was taken)."""
    table = WebhookEvent.metadata.tables[WebhookEvent.__tablename__]
    endpoints = WebhookEndpoint.metadata.tables[WebhookEndpoint.__tablename__]
    inserted = (pg_insert(table).values({name: bindparam(name, type_=table.c[name].type)
                                         for name in ("public_id", "key", "type", "data", "created_at")})
                .on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id).cte("inserted"))
    return Direct(select(inserted.c.id, endpoints.c.id, endpoints.c.event_types)
                  .select_from(inserted.outerjoin(endpoints, endpoints.c.active.is_(True)))
                  .order_by(endpoints.c.id))


@functools.cache
def _insert_statement(dialect: str) -> Any:
    """ON CONFLICT DO NOTHING, not a SELECT first: two transactions emitting the same
    key at once then record one event (the second waits for the first to commit).
    Built once per dialect, on the table, its values given at each call."""
    table = WebhookEvent.metadata.tables[WebhookEvent.__tablename__]
    upsert = pg_insert if dialect == "postgresql" else sqlite_insert
    return upsert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id)


#: The endpoints an event may go to (their subscriptions are matched in Python).
_ACTIVE_ENDPOINTS = (select(WebhookEndpoint.id, WebhookEndpoint.event_types)
                     .where(WebhookEndpoint.active.is_(True)).order_by(WebhookEndpoint.id))


def _note_repeat(session: Session, key: str, event_type: str, document: dict[str, Any]) -> None:
    stored = session.execute(select(WebhookEvent.type, WebhookEvent.data).where(WebhookEvent.key == key)).one()
    if (stored.type, stored.data) != (event_type, document):
        # The first event under a key is the one receivers got; a different second
        # one is a caller bug worth seeing, but not worth failing a payment over.
        log.warning("webhook event key %r emitted again with other content; the first event is kept", key)
