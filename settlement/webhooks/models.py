"""Webhook tables.

* ``webhook_endpoints``: where the marketplace wants events, with the HMAC secret
  that signs them (kept in clear because signing needs it; shown to the caller only
  when it is generated), the event types it subscribes to and whether it is active.
  A rotated secret stays valid (and is used as a second signature) until
  ``previous_secret_expires_at``.
* ``webhook_events``: the transactional outbox. One row per event, written in the
  transaction that caused it, unique on the caller's ``key``; immutable (triggers
  refuse UPDATE and DELETE), because a replay must send what was first sent.
* ``webhook_deliveries``: one event to one endpoint: its state (pending, delivered,
  failed after the last attempt, cancelled because the endpoint was disabled), the
  number of attempts so far and when the next one is due.
* ``webhook_attempts``: the delivery log, one row per HTTP attempt: status code,
  duration, error, and when the next attempt was scheduled.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, JsonDoc, UTCDateTime

#: ``evt_`` and 32 hex digits (a UUID4 without dashes).
EVENT_ID_PATTERN = r"^evt_[0-9a-f]{32}$"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"        # waiting for its next attempt (or being attempted now)
    DELIVERED = "delivered"    # the endpoint answered 2xx
    FAILED = "failed"          # every allowed attempt failed
    CANCELLED = "cancelled"    # the endpoint was disabled before it succeeded


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    #: Exact types (``payment.captured``), a group (``payment.*``) or everything (``*``).
    event_types: Mapped[list[str]] = mapped_column(JsonDoc)
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("active OR disabled_at IS NOT NULL", name="disabled_at"),
        CheckConstraint("(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)",
                        name="previous_secret_expiry"),
    )

    def secrets_at(self, now: dt.datetime) -> list[str]:
        """The secrets a delivery made at ``now`` is signed with: the current one and,
        during a rotation's grace period, the previous one."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret)
        return secrets


class WebhookEvent(Base):
    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    #: The id receivers see (``Settlement-Event-Id``) and deduplicate on.
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_webhook_events_type_id", "type", "id"),)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    #: Attempts started so far (the next attempt's number is ``attempts + 1``).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: When the next attempt is due (while pending; during an attempt, when its lease ends).
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    #: Set when an administrator asked for this delivery (a replay), not an emission.
    replay: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed', 'cancelled')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        CheckConstraint("(status = 'pending') = (next_attempt_at IS NOT NULL)", name="pending_has_due_time"),
        CheckConstraint("(status = 'pending') = (finished_at IS NULL)", name="finished_at"),
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_event_id", "event_id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at",
              postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
    )


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    #: Null while the attempt runs, or forever if its worker died mid-request.
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1000))
    #: The first characters of the receiver's answer, to help whoever debugs it.
    response_excerpt: Mapped[str | None] = mapped_column(String(500))
    #: When the next attempt was scheduled after this one failed (null: none will be).
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("delivery_id", "attempt", name="uq_webhook_attempts_delivery_id_attempt"),
        CheckConstraint("attempt >= 1", name="attempt"),
        CheckConstraint("duration_ms IS NULL OR duration_ms >= 0", name="duration"),
    )
