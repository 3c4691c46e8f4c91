"""Endpoints and the logs: register, disable and rotate endpoints; read events and
deliveries; replay an event to an endpoint. Every function takes the caller's
session and only flushes."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.webhooks.errors import (
    EndpointDisabled,
    EndpointNotFound,
    EventNotFound,
    InvalidCursor,
    InvalidEndpointDescription,
    InvalidEndpointUrl,
)
from settlement.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from settlement.webhooks.service.outbox import check_patterns, queue_deliveries
from settlement.webhooks.signing import generate_secret

T = TypeVar("T")
URL_MAX_LENGTH = 2048
DESCRIPTION_MAX_LENGTH = 500
MAX_ID = 2**63 - 1
#: A DNS name (IDNA-encoded by httpx), an IPv4 address, or an IPv6 address.
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
#: How long a rotated-out secret keeps signing deliveries unless told otherwise.
DEFAULT_ROTATION_GRACE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Page(Generic[T]):
    """A page of a list, newest first; pass ``next_cursor`` back for the next one."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class DeliveryView:
    """A delivery with its event and its attempt log (oldest attempt first)."""

    delivery: WebhookDelivery
    event: WebhookEvent
    attempts: list[WebhookAttempt]


def check_url(url: str) -> str:
    """An absolute http(s) URL with a host."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise InvalidEndpointUrl(f"{url!r} is not a URL", url=str(url)[:200]) from None
    host = parsed.raw_host.decode("ascii", "replace")
    if (parsed.scheme not in ("http", "https") or not _HOST.fullmatch(host) or len(url) > URL_MAX_LENGTH
            or any(c.isspace() or not c.isprintable() for c in url)):
        raise InvalidEndpointUrl(f"an endpoint URL is an absolute http:// or https:// URL of at most "
                                 f"{URL_MAX_LENGTH} characters", url=url[:200])
    return url


def create_endpoint(session: Session, *, url: str, event_types: Iterable[str],
                    description: str = "") -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its secret (the only time the secret is shown)."""
    if len(description) > DESCRIPTION_MAX_LENGTH or "\x00" in description:
        raise InvalidEndpointDescription(f"a description is at most {DESCRIPTION_MAX_LENGTH} characters, "
                                         "without NUL")
    endpoint = WebhookEndpoint(url=check_url(url), description=description, event_types=check_patterns(event_types),
                               secret=generate_secret(), active=True, created_at=utcnow())
    session.add(endpoint)
    session.flush()
    return endpoint, endpoint.secret


def get_endpoint(session: Session, endpoint_id: int, *, for_update: bool = False) -> WebhookEndpoint:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    endpoint = session.scalars(query.with_for_update() if for_update else query).first()
    if endpoint is None:
        raise EndpointNotFound(f"no webhook endpoint with id {endpoint_id}", endpoint_id=endpoint_id)
    return endpoint


def list_endpoints(session: Session, *, active: bool | None = None, cursor: str | None = None,
                   limit: int = 100) -> Page[WebhookEndpoint]:
    query = select(WebhookEndpoint)
    if active is not None:
        query = query.where(WebhookEndpoint.active.is_(active))
    if cursor:
        query = query.where(WebhookEndpoint.id < decode_cursor(cursor))
    rows = list(session.scalars(query.order_by(WebhookEndpoint.id.desc()).limit(limit + 1)))
    return _page(rows, limit, lambda e: e.id)


def disable_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """Stop sending to an endpoint: its pending deliveries are cancelled (an attempt
    already on the wire still has its answer logged). Disabling twice is a no-op."""
    endpoint = get_endpoint(session, endpoint_id, for_update=True)
    if endpoint.active:
        now = utcnow()
        endpoint.active = False
        endpoint.disabled_at = now
        session.execute(update(WebhookDelivery)
                        .where(WebhookDelivery.endpoint_id == endpoint.id,
                               WebhookDelivery.status == DeliveryStatus.PENDING.value)
                        .values(status=DeliveryStatus.CANCELLED.value, next_attempt_at=None, finished_at=now)
                        .execution_options(synchronize_session=False))
        session.flush()
    return endpoint


def rotate_secret(session: Session, endpoint_id: int, *,
                  keep_previous_for: dt.timedelta = DEFAULT_ROTATION_GRACE) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new secret, returned once. For ``keep_previous_for`` the
    old secret keeps signing too (two ``v1=`` signatures), so the receiver can switch
    without dropping events; zero retires it at once."""
    endpoint = get_endpoint(session, endpoint_id, for_update=True)
    if not endpoint.active:
        raise EndpointDisabled(f"webhook endpoint {endpoint_id} is disabled", endpoint_id=endpoint_id)
    if keep_previous_for > dt.timedelta(0):
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = utcnow() + keep_previous_for
    else:
        endpoint.previous_secret = endpoint.previous_secret_expires_at = None
    endpoint.secret = generate_secret()
    session.flush()
    return endpoint, endpoint.secret


def get_event(session: Session, public_id: str) -> WebhookEvent:
    event = session.scalars(select(WebhookEvent).where(WebhookEvent.public_id == public_id)).first()
    if event is None:
        raise EventNotFound(f"no webhook event {public_id!r}", event_id=public_id)
    return event


def list_events(session: Session, *, event_type: str | None = None, cursor: str | None = None,
                limit: int = 100) -> Page[WebhookEvent]:
    query = select(WebhookEvent)
    if event_type is not None:
        query = query.where(WebhookEvent.type == event_type)
    if cursor:
        query = query.where(WebhookEvent.id < decode_cursor(cursor))
    rows = list(session.scalars(query.order_by(WebhookEvent.id.desc()).limit(limit + 1)))
    return _page(rows, limit, lambda e: e.id)


def list_deliveries(session: Session, endpoint_id: int, *, status: DeliveryStatus | None = None,
                    cursor: str | None = None, limit: int = 50) -> Page[DeliveryView]:
    """An endpoint's deliveries, newest first, each with its attempt log."""
    get_endpoint(session, endpoint_id)
    query = (select(WebhookDelivery, WebhookEvent).join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
             .where(WebhookDelivery.endpoint_id == endpoint_id))
    if status is not None:
        query = query.where(WebhookDelivery.status == status.value)
    if cursor:
        query = query.where(WebhookDelivery.id < decode_cursor(cursor))
    rows = [(delivery, event) for delivery, event in
            session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1))]
    page = _page(rows, limit, lambda row: row[0].id)
    return Page([DeliveryView(d, e, a) for (d, e), a in zip(page.items, _attempts(session, page.items), strict=True)],
                page.next_cursor)


def replay(session: Session, endpoint_id: int, event_public_id: str) -> DeliveryView:
    """Deliver a recorded event to an active endpoint again (a new delivery with its
    own attempts), whether or not the endpoint subscribes to its type; sent after
    the commit."""
    endpoint = get_endpoint(session, endpoint_id)
    if not endpoint.active:
        raise EndpointDisabled(f"webhook endpoint {endpoint_id} is disabled", endpoint_id=endpoint_id)
    event = get_event(session, event_public_id)
    [delivery_id] = queue_deliveries(session, event.id, [endpoint.id], now=utcnow(), replay=True)
    return DeliveryView(session.get_one(WebhookDelivery, delivery_id), event, [])


def _attempts(session: Session, rows: Sequence[tuple[WebhookDelivery, WebhookEvent]]) -> list[list[WebhookAttempt]]:
    ids = [delivery.id for delivery, _ in rows]
    by_delivery: dict[int, list[WebhookAttempt]] = {i: [] for i in ids}
    if ids:
        for attempt in session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids))
                                       .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)):
            by_delivery[attempt.delivery_id].append(attempt)
    return [by_delivery[i] for i in ids]


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(str(row_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        value = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error):
        raise InvalidCursor("cursor is not one this service issued", cursor=cursor[:100]) from None
    if not 1 <= value <= MAX_ID:
        raise InvalidCursor("cursor is not one this service issued", cursor=cursor[:100])
    return value


def _page(rows: list[T], limit: int, key: Callable[[T], int]) -> Page[T]:
    items = rows[:limit]
    return Page(items, encode_cursor(key(items[-1])) if len(rows) > limit and items else None)
