"""Payment refusals, and the rails' errors as refusals with stable codes.

Rail errors keep the adapter's own code (``rail_declined``, ``rail_unsupported``...)
so a client sees the same code whichever rail refused.
"""

from __future__ import annotations

from adapters.base import RailError
from settlement.errors import SettlementError, register


@register
class PaymentError(SettlementError):
    code = "payment_error"
    status = 422
    title = "Payment request refused"


@register
class MerchantNotFound(PaymentError):
    code = "merchant_not_found"
    status = 404
    title = "Merchant not found"


@register
class MerchantConflict(PaymentError):
    """A merchant with this ``external_id`` exists already."""

    code = "merchant_conflict"
    status = 409
    title = "Merchant exists"


@register
class PaymentNotFound(PaymentError):
    code = "payment_not_found"
    status = 404
    title = "Payment not found"


@register
class RefundNotFound(PaymentError):
    code = "refund_not_found"
    status = 404
    title = "Refund not found"


@register
class PayoutNotFound(PaymentError):
    code = "payout_not_found"
    status = 404
    title = "Payout not found"


@register
class InvalidState(PaymentError):
    """The payment is not in a state that allows this operation (e.g. capturing a
    payment that was never authorized, or authorizing one twice)."""

    code = "invalid_payment_state"
    status = 409
    title = "Operation not allowed in the payment's state"


@register
class OperationInProgress(PaymentError):
    """Another operation of this payment is at the rail right now; one runs at a time."""

    code = "operation_in_progress"
    status = 409
    title = "Another operation of this payment is in progress"


@register
class ExceedsAuthorized(PaymentError):
    """A capture above what remains authorized (authorized - captured - voided)."""

    code = "capture_exceeds_authorized"
    status = 422
    title = "Capture exceeds the authorized amount"


@register
class ExceedsCaptured(PaymentError):
    """A refund above what was captured and not yet refunded."""

    code = "refund_exceeds_captured"
    status = 422
    title = "Refund exceeds the captured amount"


@register
class NothingToVoid(PaymentError):
    code = "nothing_to_void"
    status = 409
    title = "Nothing remains authorized"


@register
class AuthorizationExpired(PaymentError):
    code = "authorization_expired"
    status = 409
    title = "The authorization expired"


@register
class CurrencyMismatch(PaymentError):
    """An amount's currency differs from the payment's or the merchant's."""

    code = "payment_currency_mismatch"
    title = "Currency does not match"


@register
class InvalidCommission(PaymentError):
    code = "invalid_commission_rate"
    title = "Commission rate must be a decimal in [0, 1)"


@register
class RailNotConfigured(PaymentError):
    """No configuration for this rail in ``SETTLEMENT_RAILS_CONFIG_FILE``."""

    code = "rail_not_configured"
    title = "Rail not configured"


@register
class PayoutNotConfigured(PaymentError):
    code = "payout_not_configured"
    status = 409
    title = "The merchant has no payout rail and destination"


# -- rails ------------------------------------------------------------------------------


@register
class RailRefusal(SettlementError):
    """The rail refused the operation."""

    code = "rail_error"
    status = 502
    title = "The rail failed"


@register
class RailDeclined(RailRefusal):
    """The rail (issuer, wallet) declined; ``rail_code`` is the rail's own code."""

    code = "rail_declined"
    status = 402
    title = "Declined by the rail"


@register
class RailUnsupported(RailRefusal):
    """The rail does not offer this operation, currency or payment method."""

    code = "rail_unsupported"
    status = 422
    title = "Not supported by the rail"


@register
class RailUnavailable(RailRefusal):
    """The rail could not be reached or said it did nothing; retry later."""

    code = "rail_unavailable"
    status = 503
    title = "Rail unavailable"


@register
class RailUnknownRail(RailRefusal):
    code = "rail_unknown"
    status = 422
    title = "Unknown rail"


_BY_CODE: dict[str, type[RailRefusal]] = {
    "rail_declined": RailDeclined, "rail_unsupported": RailUnsupported, "rail_unavailable": RailUnavailable,
    "rail_unknown": RailUnknownRail,
}


def rail_refusal(error: RailError, **detail: object) -> SettlementError:
    """The refusal a client sees for ``error``."""
    cls = _BY_CODE.get(error.code, RailRefusal)
    extra = dict(error.detail)
    rail_code = getattr(error, "rail_code", None)
    if rail_code:
        extra["rail_code"] = rail_code
    return cls(error.message, rail=error.rail, **extra, **detail)


def refusal_from(code: str, message: str, **detail: object) -> SettlementError:
    """Rebuild a refusal recorded on an attempt (code and message)."""
    cls = _BY_CODE.get(code, RailRefusal)
    return cls(message, **detail)


@register
class InvalidCursor(PaymentError):
    code = "invalid_cursor"
    status = 400
    title = "Invalid pagination cursor"


@register
class NotificationTooLarge(PaymentError):
    code = "notification_too_large"
    status = 413
    title = "Notification too large"
