"""The ledger for finance and auditors: accounts with their balances, and one account's
balance as of a date with its postings (newest first, cursor pagination)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from settlement.console.deps import ViewerDep, reading
from settlement.console.forms import Fields, day_end
from settlement.console.rendering import render, sentence
from settlement.errors import SettlementError
from settlement.ledger import Ledger
from settlement.money import check_currency

router = APIRouter()
PAGE = 50
Text = Annotated[str | None, Query(max_length=200)]


@router.get("/accounts", name="accounts")
def accounts_page(*, request: Request, viewer: ViewerDep, currency: Text = None, prefix: Text = None,
                  cursor: Text = None) -> Response:
    fields = Fields()
    code = fields.text("currency", currency, "Currency", limit=3)
    if code is not None:
        try:
            check_currency(code.upper())
            code = code.upper()
        except SettlementError:
            fields.errors["currency"] = f"Currency must be an ISO 4217 code such as RUB or CNY (not {code!r})."
    start = fields.text("prefix", prefix, "Code starts with")
    context: dict[str, Any] = {"section": "ledger", "filters": {"currency": currency or "", "prefix": prefix or ""},
                               "field_errors": fields.errors, "accounts": [], "next_cursor": None,
                               "paged": bool(cursor)}
    if fields.errors:
        context["error"] = "Some filters cannot be used; see below."
        return render(request, "accounts.html", viewer=viewer, status=422, context=context)
    with reading(request) as session:
        try:
            found = Ledger(session).list_accounts(cursor=cursor or None, limit=PAGE, currency=code,
                                                  code_prefix=start)
        except SettlementError as error:
            context.update(error=sentence(error), field_errors={"cursor": "This page address is out of date."})
            return render(request, "accounts.html", viewer=viewer, status=error.status, context=context)
        context.update(accounts=found.items, next_cursor=found.next_cursor)
    return render(request, "accounts.html", viewer=viewer, context=context)


@router.get("/accounts/{code:path}", name="account")
def account_page(*, request: Request, viewer: ViewerDep, code: Annotated[str, Path(max_length=200)],
                 as_of: Text = None, cursor: Text = None) -> Response:
    fields = Fields()
    day = fields.date("as_of", as_of, "The date")
    with reading(request) as session:
        ledger = Ledger(session)
        account = ledger.get_account(code)
        context: dict[str, Any] = {"section": "ledger", "account": account, "now": ledger.balance(account.id),
                                   "as_of": day, "then": None, "lines": [], "next_cursor": None,
                                   "filters": {"as_of": as_of or ""}, "field_errors": fields.errors,
                                   "paged": bool(cursor)}
        if fields.errors:
            context["error"] = "The date cannot be used; see below."
            return render(request, "account.html", viewer=viewer, status=422, context=context)
        if day is not None:
            context["then"] = ledger.balance(account.id, as_of=day_end(day))
        try:
            page = ledger.account_lines(account.id, cursor=cursor or None, limit=PAGE)
        except SettlementError as error:
            context.update(error=sentence(error), field_errors={"cursor": "This page address is out of date."})
            return render(request, "account.html", viewer=viewer, status=error.status, context=context)
        debit_normal = account.type.debit_normal
        context["lines"] = [{"line": line, "after": (line.debits_posted_after - line.credits_posted_after)
                             * (1 if debit_normal else -1)} for line in page.items]
        context["next_cursor"] = page.next_cursor
    return render(request, "account.html", viewer=viewer, context=context)
