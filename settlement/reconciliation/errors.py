"""Reconciliation refusals, each with one stable code."""

from __future__ import annotations

from settlement.errors import SettlementError, register

__all__ = [
    "CounterpartClaimed",
    "ExceptionClosed",
    "ExceptionNotFound",
    "ExpectationConflict",
    "ExpectationNotFound",
    "FileAlreadyReconciled",
    "FileNotFound",
    "FileUnusable",
    "InvalidExpectation",
    "InvalidResolution",
    "ItemNotFound",
    "NoPendingWriteOff",
    "ReasonRequired",
    "ReconciliationError",
    "RunInProgress",
    "RunNotFound",
    "SelfApproval",
    "UnknownRail",
    "WrongFileKind",
]


class ReconciliationError(SettlementError):
    """Base of the reconciliation refusals."""

    code = "reconciliation_error"
    status = 400
    title = "Reconciliation request refused"


@register
class UnknownRail(ReconciliationError):
    """No installed rail has this name."""

    code = "recon_unknown_rail"
    status = 422
    title = "Unknown payment rail"


@register
class WrongFileKind(ReconciliationError):
    """The file is a settlement file where a statement is needed, or the other way round."""

    code = "recon_wrong_file_kind"
    status = 422
    title = "Wrong kind of file"


@register
class InvalidExpectation(ReconciliationError):
    """An expectation with a bad field (kind, amount, currency, FX terms...)."""

    code = "recon_invalid_expectation"
    status = 422
    title = "Invalid expectation"


@register
class ExpectationConflict(ReconciliationError):
    """The (rail, kind, reference) of an expectation is already recorded with other
    money terms (amount, currency, rail reference)."""

    code = "recon_expectation_conflict"
    status = 409
    title = "Expectation recorded with other terms"


@register
class FileNotFound(ReconciliationError):
    code = "recon_file_not_found"
    status = 404
    title = "No such reconciliation file"


@register
class RunNotFound(ReconciliationError):
    code = "recon_run_not_found"
    status = 404
    title = "No such reconciliation run"


@register
class ExceptionNotFound(ReconciliationError):
    code = "recon_exception_not_found"
    status = 404
    title = "No such reconciliation exception"


@register
class ExpectationNotFound(ReconciliationError):
    code = "recon_expectation_not_found"
    status = 404
    title = "No such expectation"


@register
class ItemNotFound(ReconciliationError):
    code = "recon_item_not_found"
    status = 404
    title = "No such file record"


@register
class FileUnusable(ReconciliationError):
    """The file as a whole could not be read (empty, not the rail's format, too many
    bad lines in a row...). ``detail`` names the line and field where reading stopped."""

    code = "recon_file_unusable"
    status = 422
    title = "The file cannot be read"


@register
class FileAlreadyReconciled(ReconciliationError):
    """A file is reconciled for real once; ``detail.run_id`` is the run that did it."""

    code = "recon_file_already_reconciled"
    status = 409
    title = "The file was already reconciled"


@register
class RunInProgress(ReconciliationError):
    """Another process is executing this run right now."""

    code = "recon_run_in_progress"
    status = 409
    title = "The run is being executed elsewhere"


@register
class ReasonRequired(ReconciliationError):
    """Every action on an exception states why."""

    code = "recon_reason_required"
    status = 422
    title = "A reason is required"


@register
class ExceptionClosed(ReconciliationError):
    """The exception is resolved, or waiting for a write-off approval, and takes no
    other action now."""

    code = "recon_exception_closed"
    status = 409
    title = "The exception takes no such action now"


@register
class InvalidResolution(ReconciliationError):
    """A resolution that does not fit the exception (a manual match without a
    counterpart, with one of another rail, currency or kind...)."""

    code = "recon_invalid_resolution"
    status = 422
    title = "Resolution does not fit the exception"


@register
class CounterpartClaimed(ReconciliationError):
    """The expectation or file record chosen for a manual match is already settled."""

    code = "recon_counterpart_claimed"
    status = 409
    title = "Already matched"


@register
class NoPendingWriteOff(ReconciliationError):
    code = "recon_no_pending_writeoff"
    status = 409
    title = "No write-off is waiting for approval"


@register
class SelfApproval(ReconciliationError):
    """Maker-checker: whoever asked for a write-off cannot approve or reject it."""

    code = "recon_writeoff_self_approval"
    status = 403
    title = "A write-off needs a second person"
