"""FX refusals."""

from __future__ import annotations

from settlement.errors import SettlementError, register


@register
class FxError(SettlementError):
    code = "fx_error"
    status = 422
    title = "FX request refused"


@register
class RateUnavailable(FxError):
    """No stored rate snapshot converts between the two currencies."""

    code = "fx_rate_unavailable"
    status = 409
    title = "No FX rate for this currency pair"


@register
class QuoteNotFound(FxError):
    code = "fx_quote_not_found"
    status = 404
    title = "FX quote not found"


@register
class QuoteExpired(FxError):
    """The quote's ``expires_at`` has passed: ask for a new quote."""

    code = "fx_quote_expired"
    status = 409
    title = "FX quote expired"


@register
class QuoteMismatch(FxError):
    """The quote converts another pair of currencies than the one needed."""

    code = "fx_quote_mismatch"
    title = "FX quote is for another currency pair"


@register
class InvalidRate(FxError):
    """A rate source gave something that is not a positive decimal rate."""

    code = "fx_invalid_rate"
    title = "Invalid FX rate"


@register
class SourceUnavailable(FxError):
    """No rate source is configured, or it could not be read."""

    code = "fx_source_unavailable"
    status = 503
    title = "FX rate source unavailable"


@register
class SourceNotConfigured(FxError):
    """``SETTLEMENT_FX_RATES_SOURCE`` names no usable source."""

    code = "fx_source_not_configured"
    status = 409
    title = "No FX rate source configured"
