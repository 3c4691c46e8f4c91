"""Why a demo could not run. Each stops the demo with ``error [code]: message``;
what ran before is left in the demo's folder for inspection."""

from __future__ import annotations

from settlement.errors import SettlementError, register


class DemoError(SettlementError):
    code = "demo_failed"
    status = 409
    title = "The demo could not run"


@register
class DemoDatabaseUnavailable(DemoError):
    """The database (or the worker that needs it) could not be reached or started."""

    code = "demo_database_unavailable"


@register
class DemoDatabaseInUse(DemoError):
    """The database given already holds ledger entries: the demo's numbers would not
    be its own."""

    code = "demo_database_in_use"


@register
class DemoStepFailed(DemoError):
    """A step of the day did not end as the service promises (an answer, a status)."""

    code = "demo_step_failed"


@register
class DemoOutFolderNotEmpty(DemoError):
    """``--out`` names a folder with files in it."""

    code = "demo_out_not_empty"
