"""Webhook refusals, each with one stable code."""

from __future__ import annotations

from settlement.errors import SettlementError, register

__all__ = [
    "EndpointDisabled",
    "EndpointNotFound",
    "EventNotFound",
    "InvalidCursor",
    "InvalidEndpointDescription",
    "InvalidEndpointUrl",
    "InvalidEventData",
    "InvalidEventType",
    "InvalidWebhookKey",
    "SignatureInvalid",
    "WebhookError",
]


class WebhookError(SettlementError):
    """Base of the webhook refusals."""

    code = "webhook_error"
    status = 400
    title = "Webhook request refused"


@register
class InvalidEventType(WebhookError):
    """An event type or subscription pattern that is not ``<group>.<name>``,
    ``<group>.*`` or ``*`` with a known group (payment, refund, payout)."""

    code = "invalid_event_type"
    status = 422
    title = "Unknown or malformed event type"


@register
class InvalidEventData(WebhookError):
    """Event data that is not plain JSON: floats and Decimals are refused (amounts
    are decimal strings formatted for their currency), keys must be strings."""

    code = "invalid_event_data"
    status = 422
    title = "Event data is not plain JSON"


@register
class InvalidWebhookKey(WebhookError):
    """An event key that is empty or longer than 200 characters."""

    code = "invalid_webhook_key"
    status = 422
    title = "Invalid event key"


@register
class InvalidEndpointUrl(WebhookError):
    """An endpoint URL that is not an absolute http or https URL with a host."""

    code = "invalid_endpoint_url"
    status = 422
    title = "Invalid webhook endpoint URL"


@register
class InvalidCursor(WebhookError):
    """A list cursor this service did not issue."""

    code = "invalid_webhook_cursor"
    status = 422
    title = "Invalid cursor"


@register
class InvalidEndpointDescription(WebhookError):
    """A description longer than 500 characters or holding a NUL character."""

    code = "invalid_webhook_description"
    status = 422
    title = "Invalid webhook endpoint description"


@register
class EndpointNotFound(WebhookError):
    code = "webhook_endpoint_not_found"
    status = 404
    title = "Webhook endpoint not found"


@register
class EndpointDisabled(WebhookError):
    """The endpoint is disabled: it gets no new deliveries and cannot be rotated or
    replayed to."""

    code = "webhook_endpoint_disabled"
    status = 409
    title = "Webhook endpoint disabled"


@register
class EventNotFound(WebhookError):
    code = "webhook_event_not_found"
    status = 404
    title = "Webhook event not found"


@register
class SignatureInvalid(WebhookError):
    """A webhook signature that does not verify: ``detail["reason"]`` is one of
    ``malformed_timestamp``, ``stale_timestamp``, ``malformed_header`` or
    ``no_matching_signature``."""

    code = "webhook_signature_invalid"
    status = 400
    title = "Webhook signature does not verify"
