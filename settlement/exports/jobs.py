"""Export jobs asked for over the API: recorded, run by a task, downloaded.

A job moves ``pending`` -> ``running`` -> ``done`` (with an archive) or ``failed``
(with the refusal's code and message). The task claims a job with a conditional
update, so a duplicate delivery of the task does not run it twice; a job left
``running`` by a worker that died is taken again after :data:`STALE_AFTER`.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work
from settlement.db.types import utcnow
from settlement.errors import SettlementError
from settlement.exports.errors import ExportNotFound, ExportNotReady
from settlement.exports.models import ExportJob, ExportStatus
from settlement.exports.saft import rate_text
from settlement.exports.service import ExportRequest, archive, export

log = logging.getLogger("settlement.exports")
STALE_AFTER = dt.timedelta(hours=1)


def exports_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "exports"


def create_job(session: Session, request: ExportRequest, *, requested_by: int | None,
               now: dt.datetime | None = None) -> ExportJob:
    """Record a job (checked first, so a bad request is refused before it is queued)."""
    request.check()
    options = {"reporting_currency": request.reporting_currency,
               "rates": {c: rate_text(r) for c, r in sorted(request.rates.items())}}
    job = ExportJob(status=ExportStatus.PENDING.value, format=request.format, period_from=request.period_from,
                    period_to=request.period_to, options=options, requested_by=requested_by,
                    created_at=now or utcnow())
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, export_id: int) -> ExportJob:
    job = session.get(ExportJob, export_id)
    if job is None:
        raise ExportNotFound(f"export {export_id} does not exist", export_id=export_id)
    return job


def list_jobs(session: Session, *, before: int | None, limit: int) -> list[ExportJob]:
    query = select(ExportJob).order_by(ExportJob.id.desc()).limit(limit)
    if before is not None:
        query = query.where(ExportJob.id < before)
    return list(session.scalars(query))


def archive_path(settings: Settings, job: ExportJob) -> Path:
    if job.status != ExportStatus.DONE.value or not job.archive_name:
        raise ExportNotReady(f"export {job.id} is {job.status}", export_id=job.id, status=job.status)
    path = exports_dir(settings) / job.archive_name
    if not path.is_file():
        raise ExportNotReady(f"the archive of export {job.id} is no longer on disk", export_id=job.id)
    return path


def run_job(factory: SessionFactory, settings: Settings, export_id: int, *,
            clock: Callable[[], dt.datetime] = utcnow) -> str:
    """Run a pending job to completion; returns its final status."""
    with unit_of_work(factory) as session:
        now = clock()
        claimed = session.execute(  # type: ignore[attr-defined]  # an UPDATE's result has rowcount
            update(ExportJob).where(ExportJob.id == export_id).where(
                (ExportJob.status == ExportStatus.PENDING.value)
                | ((ExportJob.status == ExportStatus.RUNNING.value) & (ExportJob.started_at < now - STALE_AFTER)))
            .values(status=ExportStatus.RUNNING.value, started_at=now)).rowcount
        job = get_job(session, export_id)
        if not claimed:
            return job.status
        options = dict(job.options or {})
        request = ExportRequest(job.format, job.period_from, job.period_to, options.get("reporting_currency"),
                                {c: Decimal(r) for c, r in (options.get("rates") or {}).items()})
    base = exports_dir(settings)
    base.mkdir(parents=True, exist_ok=True)
    directory = base / f"export-{export_id}"
    name = f"export-{export_id}.zip"
    shutil.rmtree(directory, ignore_errors=True)
    values: dict[str, object]
    try:
        result = export(factory, settings, request, directory, clock=clock)
        digest, _ = archive(directory, base / name)
        values = {"status": ExportStatus.DONE.value, "tree_size": result.tree_size, "entries": result.entries,
                  "postings": result.postings, "archive_name": name, "archive_sha256": digest}
    except SettlementError as error:
        values = {"status": ExportStatus.FAILED.value, "error_code": error.code, "error_message": error.message}
    except Exception:
        log.exception("export %s failed", export_id)
        values = {"status": ExportStatus.FAILED.value, "error_code": "internal_error",
                  "error_message": "the export failed; the error was logged"}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    with unit_of_work(factory) as session:
        session.execute(update(ExportJob).where(ExportJob.id == export_id).values(finished_at=clock(), **values))
    return str(values["status"])
