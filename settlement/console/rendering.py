"""Pages: the Jinja2 environment, the filters every template uses, and refusals turned
into sentences a person can act on.

Amounts are always shown with their currency and exactly the currency's decimals
(``format_minor``), digits grouped by thousands: ``1,234,500.00 RUB``, ``1,500 JPY``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from settlement.console.service import Viewer
from settlement.errors import SettlementError
from settlement.money import format_minor

_env = jinja2.Environment(loader=jinja2.PackageLoader("settlement.console", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)


def money(minor: int | None, currency: str | None) -> str:
    """``1234500, "RUB"`` -> ``"12,345.00 RUB"``: the currency's own decimals, never rounded."""
    if minor is None or currency is None:
        return "-"
    return f"{Decimal(format_minor(minor, currency)):,f} {currency}"


def when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return value.isoformat()


def label(value: str | None) -> str:
    """``amount_mismatch`` -> ``amount mismatch``."""
    return "-" if not value else value.replace("_", " ")


_env.filters.update(money=money, when=when, label=label)

#: Refusals as sentences; ``{message}`` and the error's detail fields may be used.
SENTENCES: dict[str, str] = {
    "unauthenticated": "That API key is unknown or was revoked. Check the key and try again.",
    "console_sign_in_refused": "This key cannot sign in to the console: it needs the finance or the auditor scope "
                               "({message}).",
    "console_not_signed_in": "You are not signed in: {message}.",
    "console_csrf_refused": "This form was not sent from this console page, or the page is out of date. "
                            "Reload the page and try again.",
    "console_read_only": "You are signed in with an auditor key: you can look at everything but change nothing.",
    "console_invalid_input": "Some values cannot be used; see the fields marked below.",
    "recon_reason_required": "Say why: every action on an exception needs a reason.",
    "recon_writeoff_self_approval": "You asked for this write-off, so another finance user has to approve or "
                                    "reject it.",
    "recon_exception_closed": "This exception is {status} and takes no such action now.",
    "recon_no_pending_writeoff": "No write-off is waiting for approval on this exception.",
    "recon_counterpart_claimed": "What you chose to match with was matched meanwhile ({message}). Pick another.",
    "recon_invalid_resolution": "That does not fit this exception: {message}.",
    "recon_exception_not_found": "There is no exception {exception_id}.",
    "recon_run_not_found": "There is no reconciliation run {run_id}.",
    "recon_expectation_not_found": "There is no expectation {expectation_id}.",
    "recon_item_not_found": "That file record or statement line does not exist.",
    "account_not_found": "There is no ledger account {account}.",
    "export_not_found": "There is no export {export_id}.",
    "export_not_ready": "The archive cannot be downloaded: {message}.",
    "signing_key_missing": "No journal signing key is configured, so exports cannot be made or verified.",
    "invalid_period": "The period does not work: {message}.",
    "journal_empty": "There is nothing in the ledger to export yet.",
}


def sentence(error: SettlementError) -> str:
    """What to tell a person about ``error`` (for bad fields: every field's message, which
    the page also shows beside the field)."""
    fields = error.detail.get("fields")
    if error.code == "console_invalid_input" and isinstance(fields, dict) and fields:
        return "Some values cannot be used: " + " ".join(str(m) for m in fields.values())
    template = SENTENCES.get(error.code)
    if template is None:
        return f"{error.title}: {error.message}."
    values: dict[str, Any] = {"message": error.message}
    values.update({k: v for k, v in error.detail.items() if isinstance(v, str | int)})
    if isinstance(values.get("status"), str):
        values["status"] = label(values["status"])
    try:
        return template.format(**values)
    except (KeyError, IndexError):
        return f"{error.title}: {error.message}."


def base_path(request: Request) -> str:
    """Where the console is mounted (``/console``), behind any proxy prefix."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(request: Request, template: str, *, viewer: Viewer | None, status: int = 200,
           context: Mapping[str, Any] | None = None) -> HTMLResponse:
    values: dict[str, Any] = {"base": base_path(request), "viewer": viewer, "notice": None, "error": None,
                              "field_errors": {}, "section": ""}
    values.update(context or {})
    return HTMLResponse(_env.get_template(template).render(values), status_code=status)


def grouped(text: str | None, currency: str | None) -> str:
    """A decimal string already in the currency's unit (``"1500.00"``) shown like
    :func:`money`: ``1,500.00 RUB``."""
    if not text or not currency:
        return "-"
    return f"{Decimal(text):,f} {currency}"


_env.filters.update(grouped=grouped)
