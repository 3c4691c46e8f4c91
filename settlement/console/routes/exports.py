"""Exports for auditors (and finance): start one, follow it, download its archive, and
see whether it verifies. Starting an export changes nothing in the ledger (as in the
API, the read-only auditor may do it); it runs as a task.

The export page verifies the archive on disk with the journal's own key, as
``settlement verify`` does offline with the public key (offered for download here).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from settlement.console.deps import ViewerDep, check_form, factory_of, reading, settings_of
from settlement.console.forms import MAX_ID, Fields, day_start
from settlement.console.rendering import base_path, render, sentence
from settlement.db import unit_of_work
from settlement.errors import SettlementError
from settlement.exports import jobs
from settlement.exports.models import ExportStatus
from settlement.exports.service import ExportRequest
from settlement.exports.verify import Report, verify_path
from settlement.journal.keys import load_signing_key
from settlement.tasks.app import get_celery
from settlement.tasks.base import send_after_commit

router = APIRouter()
PAGE = 25
FORMATS = ("csv", "jsonl", "xml")
RUN_EXPORT = "settlement.exports.run"
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
FormText = Annotated[str | None, Form(max_length=200)]


def _list_context(request: Request, before: int | None) -> dict[str, Any]:
    with reading(request) as session:
        found = jobs.list_jobs(session, before=before, limit=PAGE + 1)
    return {"section": "exports", "jobs": found[:PAGE], "older": found[PAGE - 1].id if len(found) > PAGE else None,
            "formats": FORMATS, "values": {"format": "csv", "period_from": "", "period_to": ""}}


@router.get("/exports", name="exports")
def exports_page(*, request: Request, viewer: ViewerDep,
                 before: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    fields = Fields()
    cursor = fields.integer("before", before, "The page cursor")
    context = _list_context(request, cursor)
    if fields.errors:
        context.update(field_errors=fields.errors, error="The page address cannot be used.", jobs=[], older=None)
        return render(request, "exports.html", viewer=viewer, status=422, context=context)
    return render(request, "exports.html", viewer=viewer, context=context)


@router.post("/exports")
def start_export(*, request: Request, viewer: ViewerDep, csrf_token: FormText = None, format: FormText = None,
                 period_from: FormText = None, period_to: FormText = None) -> Response:
    check_form(request, viewer, csrf_token, acting=False)
    values = {"format": format or "", "period_from": period_from or "", "period_to": period_to or ""}
    try:
        fields = Fields()
        chosen = fields.choice("format", format, FORMATS, "Format") or ("csv" if not format else None)
        start = fields.date("period_from", period_from, "From")
        end = fields.date("period_to", period_to, "To")
        fields.period("period_from", start, end)
        fields.done()
        assert chosen is not None
        wanted = ExportRequest(chosen, day_start(start) if start else None,
                                 day_start(end + dt.timedelta(days=1)) if end else None)
        with unit_of_work(factory_of(request)) as session:
            job = jobs.create_job(session, wanted, requested_by=viewer.key_id)
            send_after_commit(session, get_celery().tasks[RUN_EXPORT], job.id)
            export_id = job.id
    except SettlementError as error:
        context = _list_context(request, None)
        fields_ = error.detail.get("fields") if isinstance(error.detail.get("fields"), dict) else {}
        context.update(values=values, error=sentence(error), field_errors=fields_)
        return render(request, "exports.html", viewer=viewer, status=error.status, context=context)
    return RedirectResponse(f"{base_path(request)}/exports/{export_id}?notice=started", status_code=303)


def _verify(request: Request, archive: Any) -> tuple[Report | None, str | None]:
    try:
        key = load_signing_key(settings_of(request)).public
    except SettlementError as error:
        return None, sentence(error)
    return verify_path(archive, key), None


@router.get("/exports/public-key.pem", name="export_public_key")
def public_key(*, request: Request, viewer: ViewerDep) -> Response:
    key = load_signing_key(settings_of(request)).public
    return Response(key.pem, media_type="application/x-pem-file",
                    headers={"Content-Disposition": 'attachment; filename="journal-public-key.pem"'})


@router.get("/exports/{export_id}", name="export")
def export_page(*, request: Request, export_id: Id, viewer: ViewerDep,
                notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    with reading(request) as session:
        job = jobs.get_job(session, export_id)
    context: dict[str, Any] = {"section": "exports", "job": job, "report": None, "verify_error": None,
                               "notice": "The export was started." if notice == "started" else None}
    if job.status == ExportStatus.DONE.value:
        try:
            context["report"], context["verify_error"] = _verify(request, jobs.archive_path(settings_of(request), job))
        except SettlementError as error:
            context["verify_error"] = sentence(error)
    return render(request, "export.html", viewer=viewer, context=context)


@router.get("/exports/{export_id}/archive", name="export_archive")
def export_archive(*, request: Request, export_id: Id, viewer: ViewerDep) -> Response:
    with reading(request) as session:
        job = jobs.get_job(session, export_id)
    path = jobs.archive_path(settings_of(request), job)
    return FileResponse(path, media_type="application/zip", filename=f"settlement-export-{job.id}.zip",
                        headers={"X-Content-SHA256": job.archive_sha256 or ""})
