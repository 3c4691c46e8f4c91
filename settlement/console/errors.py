"""Console refusals, each with one stable code (the console shows them as sentences)."""

from __future__ import annotations

from settlement.errors import SettlementError, register

__all__ = ["ConsoleError", "CsrfRefused", "InvalidInput", "NotSignedIn", "ReadOnly", "SignInRefused"]


class ConsoleError(SettlementError):
    """Base of the console's refusals."""

    code = "console_error"
    status = 400
    title = "Console request refused"


@register
class NotSignedIn(ConsoleError):
    """No session cookie, or a session that ended: expired, signed out, or its API key
    was revoked. ``detail.reason`` says which."""

    code = "console_not_signed_in"
    status = 401
    title = "Sign in to the console"


@register
class SignInRefused(ConsoleError):
    """The key is valid but has neither the finance nor the auditor scope (a checkout
    key, for instance): it cannot use the console."""

    code = "console_sign_in_refused"
    status = 403
    title = "This key cannot sign in to the console"


@register
class CsrfRefused(ConsoleError):
    """A form came without the session's token (or from another origin)."""

    code = "console_csrf_refused"
    status = 403
    title = "The form was not sent from this console"


@register
class ReadOnly(ConsoleError):
    """The signed-in key reads only (auditor): it cannot act on the exceptions queue."""

    code = "console_read_only"
    status = 403
    title = "Read-only access"


@register
class InvalidInput(ConsoleError):
    """A filter or form field the console cannot read; ``detail.fields`` maps each bad
    field to what is wrong with it."""

    code = "console_invalid_input"
    status = 422
    title = "Some values cannot be used"
