"""Runs: one reconciliation of one file, in three steps (load, match, book) whose rows
in ``recon_run_steps`` are the checkpoints and the progress a caller sees.

A file is reconciled for real once (``recon_file_already_reconciled`` names the run
that did it); dry runs compute the same outcomes, book nothing, claim nothing and
open no exceptions, as often as wanted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.reconciliation.errors import FileAlreadyReconciled, RunNotFound
from settlement.reconciliation.models import FileItem, Match, Outcome, ReconFile, Run, RunStatus, RunStep, Step
from settlement.reconciliation.models import StatementLine as Line
from settlement.reconciliation.service.files import get_file

STEPS = (Step.LOAD, Step.MATCH, Step.BOOK)
#: SQL condition on ``recon_expectations e``: still waiting for its settlement.
UNSETTLED = ("e.status = 'open' AND NOT EXISTS (SELECT 1 FROM recon_match_expectations m "
             "WHERE m.expectation_id = e.id AND m.claimed)")


def create_run(session: Session, *, file_id: int, dry_run: bool, actor: str) -> Run:
    """A queued run of the file (its steps pending)."""
    file = get_file(session, file_id)
    if not dry_run:
        existing = live_run_of(session, file_id)
        if existing is not None:
            raise FileAlreadyReconciled(f"file {file_id} ({file.filename}) was already reconciled by run "
                                        f"{existing.id}", file_id=file_id, run_id=existing.id)
    now = utcnow()
    run = Run(kind=file.kind, rail=file.rail, file_id=file.id, dry_run=dry_run, status=RunStatus.QUEUED.value,
              summary={}, requested_by=actor[:200], attempts=0, created_at=now)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        existing = live_run_of(session, file_id)
        raise FileAlreadyReconciled(f"file {file_id} was already reconciled", file_id=file_id,
                                    run_id=existing.id if existing else None) from None
    for step in STEPS:
        session.add(RunStep(run_id=run.id, step=step.value, status="pending", done=0, total=0))
    session.flush()
    return run


def live_run_of(session: Session, file_id: int) -> Run | None:
    return session.execute(select(Run).where(Run.file_id == file_id, Run.dry_run.is_(False))).scalar_one_or_none()


def get_run(session: Session, run_id: int, *, lock: bool = False) -> Run:
    query = select(Run).where(Run.id == run_id)
    found = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        raise RunNotFound(f"reconciliation run {run_id} does not exist", run_id=run_id)
    return found


def list_runs(session: Session, *, rail: str | None = None, status: str | None = None, before: int | None = None,
              limit: int = 50) -> list[Run]:
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if rail is not None:
        query = query.where(Run.rail == rail)
    if status is not None:
        query = query.where(Run.status == status)
    if before is not None:
        query = query.where(Run.id < before)
    return list(session.execute(query).scalars())


def steps(session: Session, run_id: int) -> list[RunStep]:
    rows = {s.step: s for s in session.execute(select(RunStep).where(RunStep.run_id == run_id)).scalars()}
    return [rows[s.value] for s in STEPS if s.value in rows]


def set_step(session: Session, run_id: int, step: Step, *, status: str | None = None, done: int | None = None,
             total: int | None = None) -> None:
    values: dict[str, Any] = {}
    now = utcnow()
    if status is not None:
        values["status"] = status
        if status == "running":
            values["started_at"] = func.coalesce(RunStep.started_at, now)
        if status in ("done", "skipped"):
            values["finished_at"] = now
    if done is not None:
        values["done"] = done
    if total is not None:
        values["total"] = total
    session.execute(update(RunStep).where(RunStep.run_id == run_id, RunStep.step == step.value).values(**values))
    session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=now))


def start(session: Session, run_id: int) -> Run:
    run = get_run(session, run_id, lock=True)
    now = utcnow()
    if run.status in (RunStatus.QUEUED.value, RunStatus.RUNNING.value):
        run.status = RunStatus.RUNNING.value
        run.attempts += 1
        run.started_at = run.started_at or now
        run.heartbeat_at = now
    return run


def fail(session: Session, run_id: int, code: str, message: str) -> None:
    session.execute(update(Run).where(Run.id == run_id).values(
        status=RunStatus.FAILED.value, error_code=code, error_message=message, finished_at=utcnow()))


def set_cycle_date(session: Session, run: Run) -> dt.date | None:
    """The file's latest settlement date (a statement's latest booking date)."""
    # Typed selects: SQLite keeps dates as text, and these read them back as dates.
    if run.kind == "statement":
        day = session.execute(select(func.max(func.coalesce(Line.booking_date, Line.value_date)))
                              .where(Line.file_id == run.file_id)).scalar()
    else:
        day = session.execute(select(func.max(FileItem.settlement_date))
                              .where(FileItem.file_id == run.file_id)).scalar()
    run.cycle_date = day
    return day


def summarize(session: Session, run: Run) -> dict[str, Any]:
    """Counts per outcome (and amounts per outcome and currency), the file's records
    and error items, expectations still pending, and what was booked."""
    file = session.get(ReconFile, run.file_id)
    assert file is not None
    outcomes = {o.value: 0 for o in Outcome}
    amounts: dict[str, dict[str, int]] = {}
    rows: Sequence[Any] = session.execute(
        select(Match.outcome, Match.currency, func.count(), func.coalesce(func.sum(Match.gross), 0),
               func.coalesce(func.sum(Match.expected_amount), 0))
        .where(Match.run_id == run.id).group_by(Match.outcome, Match.currency)).all()
    for outcome, currency, count, gross, expected in rows:
        outcomes[outcome] += int(count)
        amounts.setdefault(outcome, {})[currency] = int(gross) if gross else int(expected)
    booked = session.execute(text("SELECT count(*), count(entry_id), COALESCE(sum(match_count), 0) "
                                  "FROM recon_bookings WHERE run_id = :r"), {"r": run.id}).one()
    pending = 0
    if run.kind == "settlement" and run.rail is not None:
        pending = int(session.execute(text(f"SELECT count(*) FROM recon_expectations e WHERE e.rail = :rail "
                                           f"AND {UNSETTLED}"), {"rail": run.rail}).scalar_one())
    return {
        "file": {"id": file.id, "filename": file.filename, "status": file.status, "records": file.record_count,
                 "errors": file.error_count, "error_code": file.error_code, "error_message": file.error_message},
        "outcomes": outcomes, "amounts": amounts, "expectations_open": pending,
        "chunks_booked": int(booked[0]), "entries": int(booked[1]), "matches_booked": int(booked[2]),
        "dry_run": run.dry_run,
    }


def complete(session: Session, run: Run) -> None:
    run.summary = summarize(session, run)
    run.status = RunStatus.COMPLETED.value
    run.finished_at = utcnow()
