"""Auditor exports: ask for one (it runs as a task), follow it, download its archive.

Creating an export changes nothing in the ledger (it seals and checkpoints what is
committed, then writes files), so the read-only auditor scope may do it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Security
from fastapi.responses import FileResponse

from settlement.api.deps import AUDITOR_READ, Id, SessionDep, settings
from settlement.auth.service import Principal
from settlement.config import Settings
from settlement.exports import jobs
from settlement.exports.schemas import ExportCreate, ExportList, ExportOut
from settlement.tasks.app import get_celery
from settlement.tasks.base import send_after_commit

router = APIRouter(prefix="/v1/exports", tags=["exports"])
Auditor = Annotated[Principal, Security(AUDITOR_READ)]


@router.post("", status_code=202, response_model=ExportOut,
             summary="Export the ledger of a period (runs as a task; poll the export, then download it)")
def create_export(body: ExportCreate, session: SessionDep, principal: Auditor) -> ExportOut:
    job = jobs.create_job(session, body.request(), requested_by=principal.key_id)
    send_after_commit(session, get_celery().tasks["settlement.exports.run"], job.id)
    return ExportOut.of(job)


@router.get("", response_model=ExportList, summary="Exports, newest first")
def list_exports(session: SessionDep, _: Auditor,
                 cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> ExportList:
    rows = jobs.list_jobs(session, before=int(cursor) if cursor else None, limit=limit + 1)
    page = rows[:limit]
    return ExportList(data=[ExportOut.of(j) for j in page],
                      next_cursor=str(page[-1].id) if len(rows) > limit else None)


@router.get("/{export_id}", response_model=ExportOut, summary="An export's status and download URL")
def get_export(export_id: Id, session: SessionDep, _: Auditor) -> ExportOut:
    return ExportOut.of(jobs.get_job(session, export_id))


@router.get("/{export_id}/archive", summary="The export as a zip archive (files, manifest and its signature)",
            response_class=FileResponse, responses={200: {"content": {"application/zip": {}}}})
def download_export(export_id: Id, session: SessionDep, _: Auditor,
                    config: Annotated[Settings, Depends(settings)]) -> FileResponse:
    job = jobs.get_job(session, export_id)
    path = jobs.archive_path(config, job)
    return FileResponse(path, media_type="application/zip", filename=f"settlement-export-{job.id}.zip",
                        headers={"X-Content-SHA256": job.archive_sha256 or ""})
