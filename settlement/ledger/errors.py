"""The ledger's refusals. Every class has one stable ``code`` with one meaning.

Amount and currency problems are the money module's errors (``invalid_amount`` and
its precise subclasses ``float_amount``, ``too_many_decimals``,
``non_positive_amount``, ``amount_out_of_range``, ``malformed_amount``; and
``unknown_currency``); they are re-exported here because the ledger raises them
for postings too.
"""

from __future__ import annotations

from settlement.errors import SettlementError, register
from settlement.money import (
    AmountOutOfRange,
    FloatAmount,
    InvalidAmount,
    MalformedAmount,
    NonPositiveAmount,
    TooManyDecimals,
    UnknownCurrency,
)

__all__ = [
    "AccountConflict",
    "AccountNotFound",
    "AlreadyReversed",
    "AmountOutOfRange",
    "CurrencyMismatch",
    "EntryNotFound",
    "EntryNotReversible",
    "ExceedsHoldAmount",
    "FloatAmount",
    "HoldAlreadyResolved",
    "HoldExpired",
    "HoldNotFound",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidAccount",
    "InvalidAmount",
    "InvalidEntry",
    "LedgerError",
    "MalformedAmount",
    "NonPositiveAmount",
    "TooManyDecimals",
    "UnbalancedEntry",
    "UnknownCurrency",
]


class BatchNotCommitted(Exception):
    """:meth:`~settlement.ledger.service.Ledger.post_batch_with_commit` found that the
    batch needs the general path (a key seen before, or an entry it would refuse):
    the whole transaction was rolled back, nothing of it is written. Run the
    transaction again, posting the batch with ``post_batch`` and committing as usual.
    """


@register
class LedgerError(SettlementError):
    code = "ledger_error"
    status = 422
    title = "Ledger refused the operation"


@register
class AccountNotFound(LedgerError):
    """A posting or query names an account (by id or code) that does not exist."""

    code = "account_not_found"
    status = 404
    title = "Account not found"


@register
class AccountConflict(LedgerError):
    """An account with this code exists with different attributes."""

    code = "account_conflict"
    status = 409
    title = "Account exists with different attributes"


@register
class InvalidAccount(LedgerError):
    """Account attributes are inconsistent (both limit flags, negative credit limit...)."""

    code = "invalid_account"
    title = "Invalid account"


@register
class CurrencyMismatch(LedgerError):
    """A posting's currency differs from its account's currency."""

    code = "currency_mismatch"
    title = "Currency does not match the account"


@register
class UnbalancedEntry(LedgerError):
    """Debits and credits of an entry differ in some currency."""

    code = "unbalanced_entry"
    title = "Entry does not balance"


@register
class InvalidEntry(LedgerError):
    """The entry is malformed (no postings, one side only, bad side, reserved kind...)."""

    code = "invalid_entry"
    title = "Invalid entry"


@register
class InsufficientFunds(LedgerError):
    """Applying the entry would take a limited account beyond its limit:
    debits beyond credits (plus credit limit) for ``debits_must_not_exceed_credits``,
    or credits beyond debits for ``credits_must_not_exceed_debits``. Pending amounts
    count against the limit."""

    code = "insufficient_funds"
    status = 402
    title = "Insufficient funds"


@register
class EntryNotFound(LedgerError):
    code = "entry_not_found"
    status = 404
    title = "Entry not found"


@register
class AlreadyReversed(LedgerError):
    code = "already_reversed"
    status = 409
    title = "Entry already reversed"


@register
class EntryNotReversible(LedgerError):
    """Entries with pending postings (holds) are voided, not reversed."""

    code = "entry_not_reversible"
    status = 409
    title = "Entry cannot be reversed"


@register
class HoldNotFound(LedgerError):
    code = "hold_not_found"
    status = 404
    title = "Hold not found"


@register
class HoldExpired(LedgerError):
    """The hold's ``expires_at`` has passed; it can no longer be posted."""

    code = "hold_expired"
    status = 409
    title = "Hold expired"


@register
class HoldAlreadyResolved(LedgerError):
    """The hold was already posted, voided or expired."""

    code = "hold_already_resolved"
    status = 409
    title = "Hold already resolved"


@register
class ExceedsHoldAmount(LedgerError):
    code = "exceeds_hold_amount"
    title = "Amount exceeds the hold"


@register
class IdempotencyConflict(LedgerError):
    """The idempotency key was used before with a different request."""

    code = "idempotency_conflict"
    status = 409
    title = "Idempotency key reused with a different request"

