"""API shapes of webhook endpoints, events and deliveries. A secret appears only in
the answers that create it (endpoint creation and rotation)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from settlement.webhooks.models import EVENT_ID_PATTERN, WebhookAttempt, WebhookEndpoint, WebhookEvent
from settlement.webhooks.service.endpoints import DeliveryView


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="Absolute http:// or https:// URL")
    event_types: list[str] = Field(min_length=1, max_length=50,
                                   description="`payment.captured`, a group such as `payment.*`, or `*`",
                                   examples=[["payment.*", "refund.succeeded"]])
    description: str = Field(default="", max_length=500, pattern=r"^[^\x00]*$")


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_previous_seconds: int = Field(
        default=86_400, ge=0, le=7 * 86_400,
        description="How long the old secret keeps signing deliveries beside the new one (0: retire it now)")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(pattern=EVENT_ID_PATTERN, description="The event's id, `evt_...`")


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    previous_secret_expires_at: dt.datetime | None = Field(
        description="While set, deliveries are also signed with the previous secret until this time")

    @classmethod
    def of(cls, e: WebhookEndpoint) -> EndpointOut:
        return cls(id=e.id, url=e.url, description=e.description, event_types=list(e.event_types), active=e.active,
                   created_at=e.created_at, disabled_at=e.disabled_at,
                   previous_secret_expires_at=e.previous_secret_expires_at)


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="The signing secret, shown only in this answer")

    @classmethod
    def with_secret(cls, e: WebhookEndpoint, secret: str) -> EndpointWithSecret:
        return cls(**EndpointOut.of(e).model_dump(), secret=secret)


class EndpointList(BaseModel):
    data: list[EndpointOut]
    next_cursor: str | None


class EventOut(BaseModel):
    id: str
    key: str
    type: str
    data: dict[str, Any]
    created_at: dt.datetime

    @classmethod
    def of(cls, e: WebhookEvent) -> EventOut:
        return cls(id=e.public_id, key=e.key, type=e.type, data=dict(e.data), created_at=e.created_at)


class EventList(BaseModel):
    data: list[EventOut]
    next_cursor: str | None


class AttemptOut(BaseModel):
    attempt: int
    started_at: dt.datetime
    finished_at: dt.datetime | None = Field(description="Null while running, or if the worker stopped mid-request")
    status_code: int | None
    duration_ms: int | None
    error: str | None
    response_excerpt: str | None
    next_attempt_at: dt.datetime | None = Field(description="When the retry after this attempt was scheduled")

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptOut:
        return cls(attempt=a.attempt, started_at=a.started_at, finished_at=a.finished_at, status_code=a.status_code,
                   duration_ms=a.duration_ms, error=a.error, response_excerpt=a.response_excerpt,
                   next_attempt_at=a.next_attempt_at)


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    status: str = Field(description="pending, delivered, failed (attempts exhausted) or cancelled (endpoint disabled)")
    attempts: int
    next_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    replay: bool
    created_at: dt.datetime
    finished_at: dt.datetime | None
    log: list[AttemptOut]

    @classmethod
    def of(cls, view: DeliveryView) -> DeliveryOut:
        d = view.delivery
        return cls(id=d.id, endpoint_id=d.endpoint_id, event_id=view.event.public_id, event_type=view.event.type,
                   status=d.status, attempts=d.attempts, next_attempt_at=d.next_attempt_at,
                   last_status_code=d.last_status_code, last_error=d.last_error, replay=d.replay,
                   created_at=d.created_at, finished_at=d.finished_at, log=[AttemptOut.of(a) for a in view.attempts])


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None
