"""Delivering one event to one endpoint: one attempt, logged, then retried with
backoff until it succeeds or the attempts run out.

An attempt is three steps, so no database transaction stays open while a
receiver thinks:

1. **Claim** (a short transaction): lock the delivery row ``FOR UPDATE SKIP
   LOCKED``; do nothing if another worker holds it, if it is no longer pending
   (delivered, failed, cancelled) or if it is not due yet (a duplicate message).
   Otherwise count the attempt, log it as started, and push ``next_attempt_at``
   out by a lease (the HTTP timeout plus a margin) so the retry sweeper leaves it
   alone while it runs; if the worker dies, the lease ends and the sweeper retries.
2. **Send** over HTTP, outside any transaction. 2xx is success; anything else, a
   timeout or a connection error is a failure.
3. **Record** (a short transaction): complete the attempt's log row and either
   mark the delivery delivered, schedule the next attempt, or mark it failed.

A receiver's failure is only ever written to these rows: it never raises into the
caller, and the transaction that emitted the event committed long before.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work
from settlement.db.types import utcnow
from settlement.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from settlement.webhooks.signing import signed_headers

#: Extra time beyond the HTTP timeout before a claimed attempt counts as abandoned.
LEASE_MARGIN = dt.timedelta(seconds=60)
#: How much of the receiver's answer is kept in the log.
EXCERPT_CHARS = 500
_READ_LIMIT = 4096


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again.

    After failed attempt ``n`` the next one is due ``schedule[n - 1]`` seconds later
    (the last value once the schedule runs out), give or take ``jitter_percent``
    percent at random so that endpoints coming back after an outage are not hit by
    every retry at once. After ``max_attempts`` attempts the delivery is failed.
    """

    schedule: tuple[int, ...] = (60, 300, 1800, 7200, 21600, 43200, 86400)
    max_attempts: int = 8
    jitter_percent: int = 10
    timeout_seconds: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(schedule=tuple(settings.webhook_retry_schedule), max_attempts=settings.webhook_max_attempts,
                   jitter_percent=settings.webhook_retry_jitter_percent,
                   timeout_seconds=settings.webhook_timeout_seconds)

    def delay_after(self, attempt: int, rng: random.Random | None = None) -> dt.timedelta | None:
        """The wait after failed attempt ``attempt`` (1-based); None after the last."""
        if attempt >= self.max_attempts:
            return None
        base_ms = self.schedule[min(attempt, len(self.schedule)) - 1] * 1000
        jitter = (rng or random).randint(-self.jitter_percent, self.jitter_percent)
        return dt.timedelta(milliseconds=base_ms * (100 + jitter) // 100)

    @property
    def lease(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.timeout_seconds) + LEASE_MARGIN


@dataclass(frozen=True)
class Outgoing:
    """A claimed attempt, ready to send."""

    delivery_id: int
    attempt: int
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Response:
    """What one HTTP attempt gave: a status code, or an error (or both, for a non-2xx)."""

    status_code: int | None
    error: str | None
    duration_ms: int
    excerpt: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Outcome:
    """Where the delivery stands after an attempt."""

    delivery_id: int
    attempt: int
    status: DeliveryStatus
    status_code: int | None
    next_attempt_at: dt.datetime | None


def event_body(event: WebhookEvent) -> bytes:
    """The JSON body of every delivery of ``event`` (the same bytes on every retry)."""
    document = {"id": event.public_id, "type": event.type, "created_at": event.created_at.isoformat(),
                "data": event.data}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def claim(session: Session, delivery_id: int, *, now: dt.datetime, policy: RetryPolicy) -> Outgoing | None:
    """Step 1: start the next attempt of a due, pending delivery (None: nothing to do)."""
    delivery = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                               .with_for_update(skip_locked=True)).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        return None
    endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
    if not endpoint.active:
        _finish(delivery, DeliveryStatus.CANCELLED, now)
        return None
    event = session.get_one(WebhookEvent, delivery.event_id)
    delivery.attempts += 1
    delivery.next_attempt_at = now + policy.lease
    session.add(WebhookAttempt(delivery_id=delivery.id, attempt=delivery.attempts, started_at=now))
    body = event_body(event)
    stamp = int(now.timestamp())
    headers = signed_headers(event_id=event.public_id, event_type=event.type,
                             secrets_in_use=endpoint.secrets_at(now), timestamp=stamp, body=body)
    session.flush()
    return Outgoing(delivery.id, delivery.attempts, endpoint.url, headers, body)


def send(outgoing: Outgoing, *, timeout_seconds: int, client: httpx.Client | None = None) -> Response:
    """Step 2: POST the body. Never raises for anything the receiver or the network does."""
    started = time.monotonic_ns()
    http = client or _shared_client(timeout_seconds)
    try:
        with http.stream("POST", outgoing.url, content=outgoing.body, headers=outgoing.headers) as answer:
            raw = b""
            for chunk in answer.iter_bytes():
                raw += chunk
                if len(raw) >= _READ_LIMIT:
                    break
            excerpt = raw.decode("utf-8", "replace")[:EXCERPT_CHARS] or None
            error = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
            return Response(answer.status_code, error, _elapsed_ms(started), excerpt)
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        # The receiver's problem, recorded on the attempt; the next attempt is scheduled.
        return Response(None, f"{type(exc).__name__}: {exc}"[:1000], _elapsed_ms(started), None)


@functools.cache
def _shared_client(timeout_seconds: int) -> httpx.Client:
    # One pooled client per process: building one (its TLS context) costs more than
    # a delivery to a nearby receiver. Redirects are not followed: a receiver that
    # moved must be re-registered, not silently followed.
    return httpx.Client(timeout=timeout_seconds, follow_redirects=False)


def record(session: Session, outgoing: Outgoing, response: Response, *, now: dt.datetime,
           policy: RetryPolicy, rng: random.Random | None = None) -> Outcome:
    """Step 3: log the attempt's result and move the delivery on."""
    delivery = session.scalars(select(WebhookDelivery).where(WebhookDelivery.id == outgoing.delivery_id)
                               .with_for_update()).one()
    logged = session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id,
                                                          WebhookAttempt.attempt == outgoing.attempt)).one()
    logged.finished_at = now
    logged.status_code = response.status_code
    logged.duration_ms = response.duration_ms
    logged.error = response.error
    logged.response_excerpt = response.excerpt
    current = delivery.attempts == outgoing.attempt and delivery.status == DeliveryStatus.PENDING
    if response.ok and delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.CANCELLED):
        # Delivered is the truth even if the endpoint was disabled mid-request.
        delivery.last_status_code, delivery.last_error = response.status_code, None
        _finish(delivery, DeliveryStatus.DELIVERED, now)
    elif current:
        delivery.last_status_code, delivery.last_error = response.status_code, response.error
        wait = policy.delay_after(outgoing.attempt, rng)
        if wait is None:
            _finish(delivery, DeliveryStatus.FAILED, now)
        else:
            delivery.next_attempt_at = logged.next_attempt_at = now + wait
    # Otherwise a newer attempt took over after this one's lease ran out (or the
    # delivery was settled meanwhile): this result is only logged.
    session.flush()
    return Outcome(delivery.id, outgoing.attempt, DeliveryStatus(delivery.status), response.status_code,
                   delivery.next_attempt_at)


def deliver_once(factory: SessionFactory, delivery_id: int, *, policy: RetryPolicy,
                 client: httpx.Client | None = None, clock: Callable[[], dt.datetime] = utcnow,
                 rng: random.Random | None = None) -> Outcome | None:
    """Claim, send and record one attempt of ``delivery_id``; None if there was
    nothing to do. Safe to call twice at once or after the delivery succeeded."""
    with unit_of_work(factory) as session:
        outgoing = claim(session, delivery_id, now=clock(), policy=policy)
    if outgoing is None:
        return None
    response = send(outgoing, timeout_seconds=policy.timeout_seconds, client=client)
    with unit_of_work(factory) as session:
        return record(session, outgoing, response, now=clock(), policy=policy, rng=rng)


def due_deliveries(session: Session, *, now: dt.datetime, limit: int) -> list[int]:
    """Pending deliveries whose next attempt (or abandoned lease) is due, oldest first."""
    return list(session.scalars(select(WebhookDelivery.id)
                                .where(WebhookDelivery.status == DeliveryStatus.PENDING,
                                       WebhookDelivery.next_attempt_at <= now)
                                .order_by(WebhookDelivery.next_attempt_at).limit(limit)))


def _finish(delivery: WebhookDelivery, status: DeliveryStatus, now: dt.datetime) -> None:
    delivery.status = status.value
    delivery.next_attempt_at = None
    delivery.finished_at = now


def _elapsed_ms(started_ns: int) -> int:
    return (time.monotonic_ns() - started_ns) // 1_000_000
