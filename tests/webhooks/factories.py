"""Factories for webhook tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select

from settlement.db import SessionFactory, unit_of_work
from settlement.webhooks import emit
from settlement.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from settlement.webhooks.service.endpoints import create_endpoint


def endpoint(factory: SessionFactory, url: str, event_types: Sequence[str] = ("*",)) -> tuple[int, str]:
    """Register an endpoint; returns its id and secret."""
    with unit_of_work(factory) as session:
        record, secret = create_endpoint(session, url=url, event_types=event_types)
        return record.id, secret


def captured(payment_id: int = 1, amount: str = "1500.00", currency: str = "RUB") -> dict[str, Any]:
    return {"payment_id": f"pay_{payment_id}", "amount": amount, "currency": currency, "status": "captured"}


def emit_committed(factory: SessionFactory, event_type: str, data: Mapping[str, Any], key: str) -> None:
    with unit_of_work(factory) as session:
        emit(session, event_type, data, key=key)


def count(factory: SessionFactory, model: type[WebhookEvent] | type[WebhookDelivery] | type[WebhookAttempt]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def deliveries(factory: SessionFactory) -> list[WebhookDelivery]:
    with factory() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def attempts(factory: SessionFactory, delivery_id: int | None = None) -> list[WebhookAttempt]:
    query = select(WebhookAttempt).order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)
    if delivery_id is not None:
        query = query.where(WebhookAttempt.delivery_id == delivery_id)
    with factory() as session:
        return list(session.scalars(query))
