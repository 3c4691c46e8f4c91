"""Webhook services: the outbox (:func:`emit`), endpoint management, delivery."""

from settlement.webhooks.service.outbox import (
    EVENT_GROUPS,
    EVENT_TYPES,
    check_event_type,
    check_patterns,
    emit,
    subscribed,
)

__all__ = ["EVENT_GROUPS", "EVENT_TYPES", "check_event_type", "check_patterns", "emit", "subscribed"]
