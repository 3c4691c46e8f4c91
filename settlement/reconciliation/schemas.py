"""API shapes of reconciliation. Amounts are decimal strings in the currency's own
unit, with the currency beside them. Lists carry ``next_cursor`` (pass it back as
``cursor``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from settlement.money import format_minor
from settlement.reconciliation.models import (
    ExceptionAction,
    ReconException,
    ReconFile,
    Run,
    RunStep,
    WriteOffApproval,
)

#: Ids are BIGINT; PostgreSQL text refuses NUL characters.
MAX_ID = 2**63 - 1
NO_NUL = r"^[^\x00]*$"


class FileOut(BaseModel):
    id: int
    kind: str
    rail: str | None
    filename: str
    sha256: str
    size_bytes: int
    status: str
    records: int
    errors: int
    error_code: str | None
    error_message: str | None
    registered_by: str
    created_at: dt.datetime
    loaded_at: dt.datetime | None
    #: True when these bytes were registered before (nothing new was stored).
    duplicate: bool = False

    @classmethod
    def of(cls, f: ReconFile, *, duplicate: bool = False) -> FileOut:
        return cls(id=f.id, kind=f.kind, rail=f.rail, filename=f.filename, sha256=f.sha256, size_bytes=f.size_bytes,
                   status=f.status, records=f.record_count, errors=f.error_count, error_code=f.error_code,
                   error_message=f.error_message, registered_by=f.registered_by, created_at=f.created_at,
                   loaded_at=f.loaded_at, duplicate=duplicate)


class FileList(BaseModel):
    data: list[FileOut]
    next_cursor: str | None


class FileErrorOut(BaseModel):
    id: int
    line_number: int
    sub_index: int
    field: str
    reason: str
    raw: str


class FileErrorList(BaseModel):
    data: list[FileErrorOut]
    next_cursor: str | None


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_id: int = Field(ge=1, le=MAX_ID)
    #: Compute the outcomes only: book nothing, claim nothing, open no exceptions.
    dry_run: bool = False


class StepOut(BaseModel):
    step: str
    status: str
    done: int
    total: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @classmethod
    def of(cls, s: RunStep) -> StepOut:
        return cls(step=s.step, status=s.status, done=s.done, total=s.total, started_at=s.started_at,
                   finished_at=s.finished_at)


class RunOut(BaseModel):
    id: int
    kind: str
    rail: str | None
    file_id: int
    dry_run: bool
    status: str
    cycle_date: dt.date | None
    #: Percent of the run done (load by bytes 30, match 30, book by chunks 40).
    progress_percent: int
    steps: list[StepOut]
    summary: dict[str, Any]
    error_code: str | None
    error_message: str | None
    requested_by: str
    attempts: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @classmethod
    def of(cls, r: Run, steps: Sequence[RunStep]) -> RunOut:
        weights = {"load": 30, "match": 30, "book": 40}
        share = 0
        for s in steps:
            if s.status in ("done", "skipped"):
                share += weights.get(s.step, 0)
            elif s.total:
                share += weights.get(s.step, 0) * min(s.done, s.total) // s.total
        if r.status == "completed":
            share = 100
        return cls(id=r.id, kind=r.kind, rail=r.rail, file_id=r.file_id, dry_run=r.dry_run, status=r.status,
                   cycle_date=r.cycle_date, progress_percent=share, steps=[StepOut.of(s) for s in steps],
                   summary=dict(r.summary or {}), error_code=r.error_code, error_message=r.error_message,
                   requested_by=r.requested_by, attempts=r.attempts, created_at=r.created_at,
                   started_at=r.started_at, finished_at=r.finished_at)


class RunList(BaseModel):
    data: list[RunOut]
    next_cursor: str | None


class ResultOut(BaseModel):
    """One outcome: what was expected, what the file said, and the variances."""

    model_config = ConfigDict(extra="allow")

    match_id: int
    outcome: str
    rule: str
    currency: str


class ResultList(BaseModel):
    data: list[ResultOut]
    next_cursor: str | None


class ActionOut(BaseModel):
    id: int
    action: str
    actor: str
    reason: str
    detail: dict[str, Any]
    entry_id: int | None
    created_at: dt.datetime

    @classmethod
    def of(cls, a: ExceptionAction) -> ActionOut:
        return cls(id=a.id, action=a.action, actor=a.actor, reason=a.reason, detail=dict(a.detail or {}),
                   entry_id=a.entry_id, created_at=a.created_at)


class ApprovalOut(BaseModel):
    id: int
    amount: str
    currency: str
    status: str
    requested_by: str
    requested_at: dt.datetime
    reason: str
    decided_by: str | None
    decided_at: dt.datetime | None
    decision_reason: str | None

    @classmethod
    def of(cls, a: WriteOffApproval) -> ApprovalOut:
        return cls(id=a.id, amount=format_minor(a.amount, a.currency), currency=a.currency, status=a.status,
                   requested_by=a.requested_by, requested_at=a.requested_at, reason=a.reason,
                   decided_by=a.decided_by, decided_at=a.decided_at, decision_reason=a.decision_reason)


class ExceptionOut(BaseModel):
    id: int
    kind: str
    status: str
    rail: str
    amount: str
    currency: str
    run_id: int
    match_id: int
    expectation_id: int | None
    item_id: int | None
    line_id: int | None
    batch_id: int | None
    assigned_to: str | None
    resolution: str | None
    resolved_by: str | None
    resolved_at: dt.datetime | None
    entry_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    actions: list[ActionOut] | None = None
    approvals: list[ApprovalOut] | None = None

    @classmethod
    def of(cls, e: ReconException, *, actions: Sequence[ExceptionAction] | None = None,
           approvals: Sequence[WriteOffApproval] | None = None) -> ExceptionOut:
        return cls(id=e.id, kind=e.kind, status=e.status, rail=e.rail, amount=format_minor(e.amount, e.currency),
                   currency=e.currency, run_id=e.run_id, match_id=e.match_id, expectation_id=e.expectation_id,
                   item_id=e.item_id, line_id=e.line_id, batch_id=e.batch_id, assigned_to=e.assigned_to,
                   resolution=e.resolution, resolved_by=e.resolved_by, resolved_at=e.resolved_at,
                   entry_id=e.entry_id, created_at=e.created_at, updated_at=e.updated_at,
                   actions=None if actions is None else [ActionOut.of(a) for a in actions],
                   approvals=None if approvals is None else [ApprovalOut.of(a) for a in approvals])


class ExceptionList(BaseModel):
    data: list[ExceptionOut]
    next_cursor: str | None


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    reason: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class ResolveRequest(BaseModel):
    """``manual_match`` names the counterpart: an open expectation for an unexpected or
    duplicate record, a file record for a missing expectation (for statements: a
    settlement batch for a line, a line for a missing batch); an amount mismatch
    names none."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["manual_match", "write_off", "ignore"]
    reason: str = Field(max_length=1000, pattern=NO_NUL)
    expectation_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    item_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    line_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    batch_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=1000, pattern=NO_NUL)
