"""Export refusals, each with one stable code."""

from __future__ import annotations

from settlement.errors import SettlementError, register


@register
class ExportError(SettlementError):
    code = "export_error"
    status = 422
    title = "The export was refused"


@register
class InvalidPeriod(ExportError):
    """``from`` must be before ``to``; both are times with a zone."""

    code = "invalid_period"
    title = "Invalid export period"


@register
class InvalidExportFormat(ExportError):
    """Formats are ``csv``, ``jsonl`` and ``xml``."""

    code = "invalid_export_format"
    title = "Unknown export format"


@register
class MissingExchangeRate(ExportError):
    """The SAF-T journal states every line in one reporting currency: postings in
    another currency need its rate (``--rate CNY=12.5``: reporting units per unit)."""

    code = "missing_exchange_rate"
    title = "An exchange rate is missing"


@register
class InvalidExchangeRate(ExportError):
    """Rates are positive decimal strings between known currencies."""

    code = "invalid_exchange_rate"
    title = "Invalid exchange rate"


@register
class JournalEmpty(ExportError):
    """Nothing is sealed yet, so there is no checkpoint to anchor an export to."""

    code = "journal_empty"
    status = 409
    title = "The journal is empty"


@register
class PeriodNotSealed(ExportError):
    """Entries recorded in the period are committed but not in the latest checkpoint
    (their transactions committed after the sealer's horizon). Retry shortly."""

    code = "period_not_sealed"
    status = 409
    title = "The period is not sealed yet"


@register
class PeriodOpen(ExportError):
    """The period has not ended yet, or a transaction that began before its end is
    still running and could still record an entry in it. Retry when it ends, end the
    period earlier, or leave the end out to export as of the latest checkpoint."""

    code = "period_open"
    status = 409
    title = "The period is still open"


@register
class ExportDirectoryNotEmpty(ExportError):
    """Exports are written into a new or empty directory, never over other files."""

    code = "export_directory_not_empty"
    status = 409
    title = "The export directory is not empty"


@register
class ExportNotFound(ExportError):
    code = "export_not_found"
    status = 404
    title = "No such export"


@register
class ExportNotReady(ExportError):
    """The export has not finished (or failed): there is no archive to download."""

    code = "export_not_ready"
    status = 409
    title = "The export is not ready"
