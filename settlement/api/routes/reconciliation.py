"""Reconciliation for finance: upload files, start runs, follow their progress, read
results and reports, work through the exceptions queue. The ``finance`` scope acts;
the auditor reads everything and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Response, Security, UploadFile
from fastapi.responses import HTMLResponse, StreamingResponse

from settlement.api.deps import FINANCE, FINANCE_READ, SessionDep, session_factory, settings
from settlement.auth.service import Principal
from settlement.config import Settings
from settlement.db import SessionFactory
from settlement.reconciliation.models import FileKind
from settlement.reconciliation.schemas import (
    MAX_ID,
    NO_NUL,
    AssignRequest,
    DecisionRequest,
    ExceptionList,
    ExceptionOut,
    FileErrorList,
    FileErrorOut,
    FileList,
    FileOut,
    ResolveRequest,
    ResultList,
    ResultOut,
    RunCreate,
    RunList,
    RunOut,
)
from settlement.reconciliation.service import files, queue, reports, resolve, runs
from settlement.reconciliation.tasks import IMPORT_FILE, RUN, enqueue

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])
Finance = Annotated[Principal, Security(FINANCE)]
Reader = Annotated[Principal, Security(FINANCE_READ)]
SettingsDep = Annotated[Settings, Depends(settings)]
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Cursor = Annotated[int | None, Query(ge=0, le=MAX_ID, description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=500)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def actor(principal: Principal) -> str:
    """Who acts, as recorded on every action (stable per API key)."""
    return f"key:{principal.key_id}:{principal.name}"


def _next(ids: list[int], limit: int) -> str | None:
    return str(ids[-1]) if len(ids) == limit else None


@router.post("/files", response_model=FileOut, status_code=201,
             summary="Upload a settlement file or bank statement (the same bytes again: 200, nothing applied)")
def upload(*, response: Response, session: SessionDep, principal: Finance, config: SettingsDep,
           file: Annotated[UploadFile, File(description="the file as received from the rail or bank")],
           kind: Annotated[Literal["settlement", "statement"], Form()] = "settlement",
           rail: Annotated[str | None, Form(max_length=32, pattern=NO_NUL)] = None) -> FileOut:
    registered = files.register_file(session, config, kind=FileKind(kind), rail=rail, source=file.file,
                                     filename=file.filename or "upload", actor=actor(principal))
    if registered.created:
        enqueue(session, IMPORT_FILE, registered.file.id)
    else:
        response.status_code = 200
    return FileOut.of(registered.file, duplicate=not registered.created)


@router.get("/files", response_model=FileList, summary="Files, newest first")
def list_files(session: SessionDep, _: Reader, cursor: Cursor = None, limit: Limit = 50) -> FileList:
    found = files.list_files(session, after=cursor, limit=limit)
    return FileList(data=[FileOut.of(f) for f in found], next_cursor=_next([f.id for f in found], limit))


@router.get("/files/{file_id}", response_model=FileOut, summary="One file and how its loading went")
def get_file(file_id: Id, session: SessionDep, _: Reader) -> FileOut:
    return FileOut.of(files.get_file(session, file_id))


@router.get("/files/{file_id}/errors", response_model=FileErrorList, summary="The file's unreadable lines")
def file_errors(file_id: Id, session: SessionDep, _: Reader, cursor: Cursor = None,
                limit: Limit = 100) -> FileErrorList:
    files.get_file(session, file_id)
    found = files.file_errors(session, file_id, after=cursor, limit=limit)
    return FileErrorList(data=[FileErrorOut(id=e.id, line_number=e.line_number, sub_index=e.sub_index,
                                            field=e.field, reason=e.reason, raw=e.raw) for e in found],
                         next_cursor=_next([e.id for e in found], limit))


@router.post("/runs", response_model=RunOut, status_code=202,
             summary="Start reconciling a file (a live run books; a file is reconciled for real once)")
def start_run(body: RunCreate, session: SessionDep, principal: Finance) -> RunOut:
    run = runs.create_run(session, file_id=body.file_id, dry_run=body.dry_run, actor=actor(principal))
    enqueue(session, RUN, run.id)
    return RunOut.of(run, runs.steps(session, run.id))


@router.get("/runs", response_model=RunList, summary="Runs, newest first")
def list_runs(session: SessionDep, _: Reader, rail: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
              status: Annotated[str | None, Query(max_length=16, pattern=NO_NUL)] = None, cursor: Cursor = None,
              limit: Limit = 50) -> RunList:
    found = runs.list_runs(session, rail=rail, status=status, before=cursor, limit=limit)
    return RunList(data=[RunOut.of(r, runs.steps(session, r.id)) for r in found],
                   next_cursor=_next([r.id for r in found], limit))


@router.get("/runs/{run_id}", response_model=RunOut, summary="A run's status, progress and summary")
def get_run(run_id: Id, session: SessionDep, _: Reader) -> RunOut:
    return RunOut.of(runs.get_run(session, run_id), runs.steps(session, run_id))


@router.get("/runs/{run_id}/results", response_model=ResultList, summary="A run's outcomes, one per match")
def results(run_id: Id, session: SessionDep, _: Reader,
            outcome: Annotated[str | None, Query(max_length=24, pattern=NO_NUL)] = None, cursor: Cursor = None,
            limit: Limit = 100) -> ResultList:
    runs.get_run(session, run_id)
    rows = reports.results(session, run_id, outcome=outcome, after=cursor or 0, limit=limit)
    return ResultList(data=[ResultOut(**row) for row in rows],
                      next_cursor=_next([int(r["match_id"]) for r in rows], limit))


@router.get("/runs/{run_id}/report.csv", summary="A run's outcomes as CSV", response_class=StreamingResponse)
def report_csv(run_id: Id, session: SessionDep, _: Reader,
               factory: Annotated[SessionFactory, Depends(session_factory)]) -> StreamingResponse:
    runs.get_run(session, run_id)

    def lines() -> Iterator[str]:
        # A session of its own, closed with the download: the request's has ended when
        # the body streams (a transaction left open there would hold SQLite's lock).
        with factory() as reading:
            yield from reports.csv_lines(reading, run_id)

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="run-{run_id}.csv"'})


@router.get("/runs/{run_id}/report.html", summary="A run's report page with a chart of outcomes",
            response_class=HTMLResponse)
def report_html(run_id: Id, session: SessionDep, _: Reader) -> HTMLResponse:
    run = runs.get_run(session, run_id)
    steps = [s.model_dump() for s in RunOut.of(run, runs.steps(session, run_id)).steps]
    return HTMLResponse(reports.html(session, run, steps=steps))


@router.get("/exceptions", response_model=ExceptionList, summary="The exceptions queue, oldest first")
def list_exceptions(*, session: SessionDep, _: Reader,
                    status: Annotated[str | None, Query(max_length=24, pattern=NO_NUL)] = None,
                    kind: Annotated[str | None, Query(max_length=24, pattern=NO_NUL)] = None,
                    rail: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
                    assigned_to: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
                    run_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    cursor: Cursor = None, limit: Limit = 50) -> ExceptionList:
    found = queue.list_exceptions(session, status=status, kind=kind, rail=rail, assigned_to=assigned_to,
                                  run_id=run_id, after=cursor, limit=limit)
    return ExceptionList(data=[ExceptionOut.of(e) for e in found], next_cursor=_next([e.id for e in found], limit))


@router.get("/exceptions/{exception_id}", response_model=ExceptionOut,
            summary="One exception with its actions and write-off approvals")
def get_exception(exception_id: Id, session: SessionDep, _: Reader) -> ExceptionOut:
    return _full(session, exception_id)


def _full(session: SessionDep, exception_id: int) -> ExceptionOut:
    return ExceptionOut.of(queue.get_exception(session, exception_id), actions=queue.actions(session, exception_id),
                           approvals=queue.approvals(session, exception_id))


@router.post("/exceptions/{exception_id}/assign", response_model=ExceptionOut, summary="Assign (or unassign)")
def assign(exception_id: Id, body: AssignRequest, session: SessionDep, principal: Finance) -> ExceptionOut:
    queue.assign(session, exception_id, assignee=body.assignee, actor=actor(principal), reason=body.reason)
    return _full(session, exception_id)


@router.post("/exceptions/{exception_id}/resolve", response_model=ExceptionOut,
             summary="Resolve by manual match, write-off (maker-checker above the threshold) or ignore")
def resolve_exception(*, exception_id: Id, body: ResolveRequest, session: SessionDep, principal: Finance,
                      config: SettingsDep, idempotency_key: IdempotencyKey = None) -> ExceptionOut:
    resolve.resolve(session, exception_id, action=resolve.Action(body.action), actor=actor(principal),
                    reason=body.reason, threshold=config.writeoff_approval_threshold,
                    expectation_id=body.expectation_id, item_id=body.item_id, line_id=body.line_id,
                    batch_id=body.batch_id, idempotency_key=idempotency_key)
    return _full(session, exception_id)


@router.post("/exceptions/{exception_id}/approve", response_model=ExceptionOut,
             summary="Approve a pending write-off (not your own): it is booked")
def approve(exception_id: Id, body: DecisionRequest, session: SessionDep, principal: Finance,
            idempotency_key: IdempotencyKey = None) -> ExceptionOut:
    resolve.decide(session, exception_id, approve=True, actor=actor(principal), reason=body.reason,
                   idempotency_key=idempotency_key)
    return _full(session, exception_id)


@router.post("/exceptions/{exception_id}/reject", response_model=ExceptionOut,
             summary="Reject a pending write-off (not your own): the exception is open again")
def reject(exception_id: Id, body: DecisionRequest, session: SessionDep, principal: Finance,
           idempotency_key: IdempotencyKey = None) -> ExceptionOut:
    resolve.decide(session, exception_id, approve=False, actor=actor(principal), reason=body.reason,
                   idempotency_key=idempotency_key)
    return _full(session, exception_id)
