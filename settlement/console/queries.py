"""What the console reads that the domain services do not list: the exceptions queue
with date filters, the records behind one outcome, the counterparts a manual match
may name, exception counts per run. Reads only: every change goes through the
reconciliation service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from settlement.console.rendering import money
from settlement.reconciliation.models import (
    Expectation,
    ExpectationStatus,
    FileItem,
    Match,
    MatchBatch,
    MatchExpectation,
    MatchItem,
    MatchLine,
    Outcome,
    ReconException,
    ReconFile,
    SettlementBatch,
    StatementLine,
)
from settlement.reconciliation.service.booking import STATEMENT

CANDIDATES = 50


@dataclass(frozen=True)
class ExceptionFilter:
    rail: str | None = None
    kind: str | None = None
    status: str | None = None
    #: None: anyone; "" : nobody (unassigned); otherwise exactly this assignee.
    assignee: str | None = None
    created_from: dt.datetime | None = None
    created_before: dt.datetime | None = None
    run_id: int | None = None


def list_exceptions(session: Session, filters: ExceptionFilter, *, after: int | None,
                    limit: int) -> tuple[list[ReconException], int | None, int]:
    """Oldest first after the cursor ``after`` (an id); returns the page, the next
    cursor (None on the last page) and how many match the filters in all."""
    clauses = []
    for column, value in ((ReconException.rail, filters.rail), (ReconException.kind, filters.kind),
                          (ReconException.status, filters.status), (ReconException.run_id, filters.run_id)):
        if value is not None:
            clauses.append(column == value)
    if filters.assignee == "":
        clauses.append(ReconException.assigned_to.is_(None))
    elif filters.assignee is not None:
        clauses.append(ReconException.assigned_to == filters.assignee)
    if filters.created_from is not None:
        clauses.append(ReconException.created_at >= filters.created_from)
    if filters.created_before is not None:
        clauses.append(ReconException.created_at < filters.created_before)
    total = int(session.execute(select(func.count()).select_from(ReconException).where(*clauses)).scalar_one())
    query = select(ReconException).where(*clauses).order_by(ReconException.id).limit(limit + 1)
    if after is not None:
        query = query.where(ReconException.id > after)
    rows = list(session.execute(query).scalars())
    page = rows[:limit]
    return page, (page[-1].id if len(rows) > limit else None), total


def assignees(session: Session) -> list[str]:
    rows = session.execute(select(ReconException.assigned_to).where(ReconException.assigned_to.is_not(None))
                           .distinct().order_by(ReconException.assigned_to)).scalars()
    return [str(r) for r in rows]


def exceptions_per_run(session: Session, run_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Run id -> exceptions per status."""
    if not run_ids:
        return {}
    rows = session.execute(select(ReconException.run_id, ReconException.status, func.count())
                           .where(ReconException.run_id.in_(run_ids))
                           .group_by(ReconException.run_id, ReconException.status)).all()
    found: dict[int, dict[str, int]] = {}
    for run_id, status, count in rows:
        found.setdefault(int(run_id), {})[str(status)] = int(count)
    return found


@dataclass
class Behind:
    """The records behind one outcome: the file's lines, the statement's lines, what we
    expected, the settlement batches."""

    match: Match
    items: list[FileItem] = field(default_factory=list)
    lines: list[StatementLine] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    batches: list[SettlementBatch] = field(default_factory=list)


def behind(session: Session, match: Match) -> Behind:
    found = Behind(match)
    found.items = list(session.execute(select(FileItem).join(MatchItem, MatchItem.item_id == FileItem.id)
                                       .where(MatchItem.match_id == match.id).order_by(FileItem.line_number))
                       .scalars())
    found.lines = list(session.execute(select(StatementLine).join(MatchLine, MatchLine.line_id == StatementLine.id)
                                       .where(MatchLine.match_id == match.id).order_by(StatementLine.line_number))
                       .scalars())
    found.expectations = list(session.execute(
        select(Expectation).join(MatchExpectation, MatchExpectation.expectation_id == Expectation.id)
        .where(MatchExpectation.match_id == match.id).order_by(Expectation.id)).scalars())
    found.batches = list(session.execute(
        select(SettlementBatch).join(MatchBatch, MatchBatch.batch_id == SettlementBatch.id)
        .where(MatchBatch.match_id == match.id).order_by(SettlementBatch.id)).scalars())
    return found


@dataclass(frozen=True)
class Candidate:
    """Something a manual match may name: ``field`` is the resolve argument
    (``expectation_id``, ``item_id``, ``line_id`` or ``batch_id``)."""

    field: str
    id: int
    text: str

    @property
    def value(self) -> str:
        return f"{self.field}:{self.id}"


def counterpart_field(exception: ReconException, match: Match) -> str | None:
    """What a manual match of this exception names (None: nothing, the pair is accepted as it is)."""
    if exception.kind == Outcome.AMOUNT_MISMATCH.value:
        return None
    missing = exception.kind == Outcome.MISSING.value
    if match.kind == STATEMENT:
        return "line_id" if missing else "batch_id"
    return "item_id" if missing else "expectation_id"


def candidates(session: Session, exception: ReconException, match: Match) -> list[Candidate]:
    """Open counterparts of the same rail, currency and kind, closest in amount first."""
    find = {"expectation_id": _open_expectations, "item_id": _unsettled_items, "batch_id": _open_batches,
            "line_id": _unmatched_lines}.get(counterpart_field(exception, match) or "")
    return find(session, exception) if find else []


def _open_expectations(session: Session, exception: ReconException) -> list[Candidate]:
    item = session.get(FileItem, exception.item_id) if exception.item_id is not None else None
    file = session.get(ReconFile, item.file_id) if item is not None else None
    if item is None or file is None:
        return []
    settled = exists().where(and_(MatchExpectation.expectation_id == Expectation.id, MatchExpectation.claimed))
    found = session.execute(select(Expectation).where(
        Expectation.status == ExpectationStatus.OPEN.value, ~settled, Expectation.rail == file.rail,
        Expectation.kind == item.record_type, Expectation.currency == item.currency)
        .order_by(func.abs(Expectation.signed_amount - item.gross), Expectation.id).limit(CANDIDATES)).scalars()
    return [Candidate("expectation_id", e.id, f"Expectation {e.id}: {e.kind} {e.reference}, "
                      f"{money(e.signed_amount, e.currency)}, made {e.transaction_date}") for e in found]


def _unsettled_items(session: Session, exception: ReconException) -> list[Candidate]:
    expected = session.get(Expectation, exception.expectation_id) if exception.expectation_id is not None else None
    if expected is None:
        return []
    claimed = exists().where(and_(MatchItem.item_id == FileItem.id, MatchItem.claimed))
    rows: Sequence[Any] = session.execute(
        select(FileItem, ReconFile.filename).join(ReconFile, ReconFile.id == FileItem.file_id).where(
            ReconFile.rail == expected.rail, FileItem.record_type == expected.kind,
            FileItem.currency == expected.currency, ~claimed)
        .order_by(func.abs(FileItem.gross - expected.signed_amount), FileItem.id).limit(CANDIDATES)).all()
    return [Candidate("item_id", i.id, f"{name} line {i.line_number}: {i.reference or i.rail_reference}, "
                      f"{money(i.gross, i.currency)}") for i, name in rows]


def _open_batches(session: Session, exception: ReconException) -> list[Candidate]:
    found = session.execute(select(SettlementBatch).where(
        SettlementBatch.status == "open", SettlementBatch.currency == exception.currency)
        .order_by(SettlementBatch.settlement_date, SettlementBatch.id).limit(CANDIDATES)).scalars()
    return [Candidate("batch_id", b.id, f"Batch {b.id}: {b.rail} {b.settlement_date}, "
                      f"{money(b.amount, b.currency)}") for b in found]


def _unmatched_lines(session: Session, exception: ReconException) -> list[Candidate]:
    claimed = exists().where(and_(MatchLine.line_id == StatementLine.id, MatchLine.claimed))
    found = session.execute(select(StatementLine).where(StatementLine.currency == exception.currency, ~claimed)
                            .order_by(StatementLine.id).limit(CANDIDATES)).scalars()
    return [Candidate("line_id", s.id, f"Statement line {s.line_number}: {s.bank_reference or s.end_to_end_id}, "
                      f"{money(s.amount, s.currency)}") for s in found]
