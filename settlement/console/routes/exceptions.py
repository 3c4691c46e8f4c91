"""The exceptions queue: list with filters, one exception with its history, and the
actions finance takes (assign; resolve by manual match, write-off or ignore; approve
or reject a write-off waiting for a second person). Every action goes through the
reconciliation service, which records who, when and why and books what it implies.

Each action form carries a fresh idempotency key, so a form sent twice (a double
click, a reload after a lost answer) acts once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from settlement.console import queries
from settlement.console.deps import ViewerDep, check_form, factory_of, reading, settings_of
from settlement.console.forms import MAX_ID, Fields, day_start
from settlement.console.rendering import base_path, render, sentence
from settlement.console.routes.runs import known_rails
from settlement.console.service import Viewer
from settlement.db import unit_of_work
from settlement.errors import SettlementError
from settlement.reconciliation import accounts
from settlement.reconciliation.models import ApprovalStatus, ExceptionStatus, Match
from settlement.reconciliation.service import queue, resolve

router = APIRouter()
PAGE = 25
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str | None, Query(max_length=200)]
FormText = Annotated[str | None, Form(max_length=2000)]
KINDS = [k.value for k in queue.KINDS]
STATUSES = [s.value for s in ExceptionStatus]
UNASSIGNED = "none"
_KEY = re.compile(r"console:[0-9a-f]{32}")

NOTICES = {
    "assigned": "The assignment was saved.",
    "resolved_manual_match": "Matched by hand. The settlement entry was booked.",
    "resolved_write_off": "Written off. The entry was booked.",
    "resolved_ignore": "Ignored. Nothing was booked.",
    "write_off_requested": "The write-off is above the approval threshold: it now waits for another finance "
                           "user to approve it.",
    "approved": "The write-off was approved and booked.",
    "rejected": "The write-off was rejected; the exception is open again.",
}


@router.get("/exceptions", name="exceptions")
def exceptions_page(*, request: Request, viewer: ViewerDep, rail: Text = None, kind: Text = None, status: Text = None,
                    assignee: Text = None, created_from: Text = None, created_to: Text = None, run: Text = None,
                    after: Text = None) -> Response:
    fields = Fields()
    # Empty: anyone; UNASSIGNED: nobody; otherwise that assignee exactly.
    who = fields.text("assignee", assignee, "Assignee")
    filters = queries.ExceptionFilter(
        rail=fields.choice("rail", rail, known_rails(), "Rail"),
        kind=fields.choice("kind", kind, KINDS, "Outcome"),
        status=fields.choice("status", status, STATUSES, "Status"),
        assignee="" if who == UNASSIGNED else who,
        run_id=fields.integer("run", run, "Run"))
    start = fields.date("created_from", created_from, "From")
    end = fields.date("created_to", created_to, "To")
    fields.period("created_from", start, end)
    cursor = fields.integer("after", after, "The page cursor")
    values = {"rail": rail or "", "kind": kind or "", "status": status or "", "assignee": assignee or "",
              "created_from": created_from or "", "created_to": created_to or "", "run": run or ""}
    context: dict[str, Any] = {"section": "exceptions", "rails": known_rails(), "kinds": KINDS, "statuses": STATUSES,
                               "filters": values, "field_errors": fields.errors, "unassigned": UNASSIGNED}
    with reading(request) as session:
        context["assignees"] = queries.assignees(session)
        if fields.errors:
            context.update(rows=[], next_after=None, total=0, error="Some filters cannot be used; see below.")
            return render(request, "exceptions.html", viewer=viewer, status=422, context=context)
        filters = dataclasses.replace(
            filters, created_from=day_start(start) if start else None,
            created_before=day_start(end + dt.timedelta(days=1)) if end else None)
        rows, next_after, total = queries.list_exceptions(session, filters, after=cursor, limit=PAGE)
        context.update(rows=rows, next_after=next_after, total=total, paged=cursor is not None)
    return render(request, "exceptions.html", viewer=viewer, context=context)


def exception_page(request: Request, viewer: Viewer, exception_id: int, *, status: int = 200,
                   error: str | None = None, notice: str | None = None, field_errors: dict[str, str] | None = None,
                   values: dict[str, str] | None = None) -> Response:
    settings = settings_of(request)
    with reading(request) as session:
        exception = queue.get_exception(session, exception_id)
        match = session.get(Match, exception.match_id)
        assert match is not None
        approvals = queue.approvals(session, exception_id)
        pending = next((a for a in approvals if a.status == ApprovalStatus.PENDING.value), None)
        can_resolve = viewer.can_act and exception.status == ExceptionStatus.OPEN.value
        context: dict[str, Any] = {
            "section": "exceptions", "exception": exception, "match": match,
            "behind": queries.behind(session, match), "actions": queue.actions(session, exception_id),
            "approvals": approvals, "pending": pending, "can_resolve": can_resolve,
            "can_decide": viewer.can_act and pending is not None and pending.requested_by != viewer.actor,
            "own_pending": pending is not None and pending.requested_by == viewer.actor,
            "counterpart_field": queries.counterpart_field(exception, match),
            "candidates": queries.candidates(session, exception, match) if can_resolve else [],
            "threshold": settings.writeoff_approval_threshold,
            "needs_approval": exception.amount > settings.writeoff_approval_threshold,
            "writeoff_account": accounts.writeoff(exception.currency),
            "variance_account": accounts.variance(exception.rail, exception.currency),
            "keys": {name: f"console:{uuid.uuid4().hex}" for name in ("resolve", "approve", "reject")},
            "error": error, "notice": notice, "field_errors": field_errors or {}, "values": values or {},
        }
        return render(request, "exception.html", viewer=viewer, status=status, context=context)


@router.get("/exceptions/{exception_id}", name="exception")
def exception_detail(*, request: Request, exception_id: Id, viewer: ViewerDep,
                     notice: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    return exception_page(request, viewer, exception_id, notice=NOTICES.get(notice or ""))


def _done(request: Request, exception_id: int, notice: str) -> Response:
    return RedirectResponse(f"{base_path(request)}/exceptions/{exception_id}?notice={notice}", status_code=303)


def _refused(request: Request, viewer: Viewer, exception_id: int, error: SettlementError,
             values: dict[str, str]) -> Response:
    fields = error.detail.get("fields") if isinstance(error.detail.get("fields"), dict) else {}
    return exception_page(request, viewer, exception_id, status=error.status, error=sentence(error),
                          field_errors=fields, values=values)


def _key(raw: str | None) -> str | None:
    return raw if raw and _KEY.fullmatch(raw) else None


@router.post("/exceptions/{exception_id}/assign")
def assign(*, request: Request, exception_id: Id, viewer: ViewerDep, csrf_token: FormText = None,
           assignee: FormText = None, reason: FormText = None) -> Response:
    check_form(request, viewer, csrf_token, acting=True)
    values = {"form": "assign", "assignee": assignee or "", "reason": reason or ""}
    try:
        fields = Fields()
        who = fields.text("assignee", assignee, "Assignee")
        why = fields.text("reason", reason, "Reason", limit=1000)
        fields.done()
        with unit_of_work(factory_of(request)) as session:
            queue.assign(session, exception_id, assignee=who, actor=viewer.actor, reason=why)
    except SettlementError as error:
        return _refused(request, viewer, exception_id, error, values)
    return _done(request, exception_id, "assigned")


@router.post("/exceptions/{exception_id}/resolve")
def resolve_exception(*, request: Request, exception_id: Id, viewer: ViewerDep, csrf_token: FormText = None,
                      action: FormText = None, reason: FormText = None, counterpart: FormText = None,
                      idempotency_key: FormText = None) -> Response:
    check_form(request, viewer, csrf_token, acting=True)
    values = {"form": action or "", "reason": reason or "", "counterpart": counterpart or ""}
    try:
        fields = Fields()
        chosen = fields.choice("action", action, [a.value for a in resolve.Action], "Action")
        why = fields.text("reason", reason, "Reason", required=True, limit=1000)
        named: dict[str, int] = {}
        if chosen == resolve.Action.MANUAL_MATCH.value and counterpart:
            kind, _, number = counterpart.partition(":")
            value = fields.integer("counterpart", number, "The counterpart")
            if kind not in ("expectation_id", "item_id", "line_id", "batch_id"):
                fields.errors["counterpart"] = "Choose what to match this exception with from the list."
            elif value is not None:
                named[kind] = value
        fields.done()
        assert chosen is not None
        with unit_of_work(factory_of(request)) as session:
            exception = resolve.resolve(session, exception_id, action=resolve.Action(chosen), actor=viewer.actor,
                                        reason=why, threshold=settings_of(request).writeoff_approval_threshold,
                                        idempotency_key=_key(idempotency_key), **named)
            pending = exception.status == ExceptionStatus.PENDING_APPROVAL.value
    except SettlementError as error:
        return _refused(request, viewer, exception_id, error, values)
    return _done(request, exception_id, "write_off_requested" if pending else f"resolved_{chosen}")


def _decide(request: Request, exception_id: int, viewer: Viewer, *, approve: bool, csrf_token: str | None,
            reason: str | None, idempotency_key: str | None) -> Response:
    check_form(request, viewer, csrf_token, acting=True)
    values = {"form": "approve" if approve else "reject", "reason": reason or ""}
    try:
        fields = Fields()
        why = fields.text("reason", reason, "Reason", required=True, limit=1000)
        fields.done()
        with unit_of_work(factory_of(request)) as session:
            resolve.decide(session, exception_id, approve=approve, actor=viewer.actor, reason=why,
                           idempotency_key=_key(idempotency_key))
    except SettlementError as error:
        return _refused(request, viewer, exception_id, error, values)
    return _done(request, exception_id, "approved" if approve else "rejected")


@router.post("/exceptions/{exception_id}/approve")
def approve(*, request: Request, exception_id: Id, viewer: ViewerDep, csrf_token: FormText = None,
            reason: FormText = None, idempotency_key: FormText = None) -> Response:
    return _decide(request, exception_id, viewer, approve=True, csrf_token=csrf_token, reason=reason,
                   idempotency_key=idempotency_key)


@router.post("/exceptions/{exception_id}/reject")
def reject(*, request: Request, exception_id: Id, viewer: ViewerDep, csrf_token: FormText = None,
           reason: FormText = None, idempotency_key: FormText = None) -> Response:
    return _decide(request, exception_id, viewer, approve=False, csrf_token=csrf_token, reason=reason,
                   idempotency_key=idempotency_key)
