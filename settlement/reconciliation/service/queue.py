"""The exceptions queue: what a live run could not book becomes an exception; finance
lists, filters and assigns them (resolution is in :mod:`.resolve`).

An exception's ``amount`` is what a write-off would book, in ``currency``: the
difference of an amount mismatch, the expected amount of a missing expectation or
batch, what the rail paid (net, or in its settlement currency) for an unexpected or
duplicate record, the line's amount for an unexpected statement line.

Who: an actor is ``key:<id>:<name>`` for an API key, ``cli:<user>`` for the command
line, ``system`` for the service itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.reconciliation.errors import ExceptionNotFound, ReasonRequired
from settlement.reconciliation.models import (
    ExceptionAction,
    ExceptionStatus,
    Outcome,
    ReconException,
    Resolution,
    WriteOffApproval,
)
from settlement.reconciliation.service.sql import sql

SYSTEM = "system"
KINDS = (Outcome.AMOUNT_MISMATCH, Outcome.MISSING, Outcome.UNEXPECTED, Outcome.DUPLICATE)


def check_reason(reason: str | None) -> str:
    text_ = (reason or "").strip()
    if not text_:
        raise ReasonRequired("say why: every action on an exception needs a reason", field="reason")
    return text_[:1000]


def record_action(session: Session, exception_id: int, action: str, actor: str, reason: str, *,
                  detail: dict[str, Any] | None = None, entry_id: int | None = None,
                  idempotency_key: str | None = None) -> ExceptionAction:
    row = ExceptionAction(exception_id=exception_id, action=action, actor=actor[:200], reason=reason,
                          detail=detail or {}, entry_id=entry_id, idempotency_key=idempotency_key,
                          created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def open_for_run(session: Session, run_id: int) -> int:
    """Open an exception for every unbooked outcome of a live run (a missing
    expectation or batch already in the queue keeps its open exception). Returns how
    many were opened."""
    q = sql(session)
    kinds = ", ".join(f"'{k.value}'" for k in KINDS)
    now = utcnow()
    opened: Sequence[int] = q.run(f"""
        INSERT INTO recon_exceptions (kind, status, rail, currency, amount, run_id, match_id, expectation_id,
                                      item_id, line_id, batch_id, created_at, updated_at)
        SELECT m.outcome, 'open', m.rail,
               CASE WHEN m.outcome IN ('{Outcome.UNEXPECTED}', '{Outcome.DUPLICATE}')
                    THEN COALESCE(m.settlement_currency, m.currency) ELSE m.currency END,
               CASE m.outcome WHEN '{Outcome.AMOUNT_MISMATCH}' THEN abs(m.gross - m.expected_amount)
                              WHEN '{Outcome.MISSING}' THEN abs(m.expected_amount)
                              ELSE abs(COALESCE(m.settlement_amount, m.net)) END,
               m.run_id, m.id,
               (SELECT min(expectation_id) FROM recon_match_expectations x WHERE x.match_id = m.id),
               (SELECT min(item_id) FROM recon_match_items x WHERE x.match_id = m.id),
               (SELECT min(line_id) FROM recon_match_lines x WHERE x.match_id = m.id),
               (SELECT min(batch_id) FROM recon_match_batches x WHERE x.match_id = m.id),
               :now, :now
        FROM recon_matches m WHERE m.run_id = :run AND m.live AND m.outcome IN ({kinds})
        ORDER BY m.id
        ON CONFLICT DO NOTHING
        RETURNING id""", run=run_id, now=now).scalars().all()
    if opened:
        # The run's exceptions with no action yet are the ones just opened (an
        # exception is opened with its first action, in the same transaction).
        empty = "CAST('{}' AS JSONB)" if q.postgres else "'{}'"
        q.x(f"""
            INSERT INTO recon_exception_actions (exception_id, action, actor, reason, detail, created_at)
            SELECT x.id, 'opened', :actor, 'run ' || x.run_id || ': ' || x.kind, {empty}, :now
            FROM recon_exceptions x WHERE x.run_id = :run
              AND NOT EXISTS (SELECT 1 FROM recon_exception_actions a WHERE a.exception_id = x.id)
            ORDER BY x.id""", run=run_id, actor=SYSTEM, now=now)
    return len(opened)


def close_arrived_late(session: Session, run_id: int) -> int:
    """Missing-in-file exceptions whose expectation this run matched late are
    resolved (``arrived_late``, by ``system``); a write-off waiting for approval on
    one is rejected."""
    q = sql(session)
    now = utcnow()
    rows: Sequence[Any] = q.rows("""
        SELECT x.id, m.id FROM recon_exceptions x
        JOIN recon_match_expectations l ON l.expectation_id = x.expectation_id AND l.claimed
        JOIN recon_matches m ON m.id = l.match_id
        WHERE m.run_id = :run AND m.outcome = :late AND x.kind = :missing AND x.status <> 'resolved'
        ORDER BY x.id""", run=run_id, late=Outcome.LATE.value, missing=Outcome.MISSING.value)
    for exception_id, match_id in rows:
        q.x("""UPDATE recon_exceptions SET status = 'resolved', resolution = :resolution, resolved_by = :actor,
                      resolved_at = :now, updated_at = :now WHERE id = :id""",
            resolution=Resolution.ARRIVED_LATE.value, actor=SYSTEM, now=now, id=exception_id)
        q.x("""UPDATE recon_writeoff_approvals SET status = 'rejected', decided_by = :actor, decided_at = :now,
                      decision_reason = 'the record arrived late' WHERE exception_id = :id AND status = 'pending'""",
            actor=SYSTEM, now=now, id=exception_id)
        record_action(session, exception_id, "arrived_late", SYSTEM,
                      f"matched late by run {run_id}", detail={"match_id": match_id})
    return len(rows)


def get_exception(session: Session, exception_id: int, *, lock: bool = False) -> ReconException:
    query = select(ReconException).where(ReconException.id == exception_id)
    found = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if found is None:
        raise ExceptionNotFound(f"exception {exception_id} does not exist", exception_id=exception_id)
    return found


def list_exceptions(session: Session, *, status: str | None = None, kind: str | None = None,
                    rail: str | None = None, assigned_to: str | None = None, run_id: int | None = None,
                    after: int | None = None, limit: int = 50) -> list[ReconException]:
    """Oldest first; ``after`` is the cursor (the last id of the previous page)."""
    query = select(ReconException).order_by(ReconException.id).limit(limit)
    for column, value in ((ReconException.status, status), (ReconException.kind, kind),
                          (ReconException.rail, rail), (ReconException.assigned_to, assigned_to),
                          (ReconException.run_id, run_id)):
        if value is not None:
            query = query.where(column == value)
    if after is not None:
        query = query.where(ReconException.id > after)
    return list(session.execute(query).scalars())


def actions(session: Session, exception_id: int) -> Sequence[ExceptionAction]:
    return list(session.execute(select(ExceptionAction).where(ExceptionAction.exception_id == exception_id)
                                .order_by(ExceptionAction.id)).scalars())


def approvals(session: Session, exception_id: int) -> Sequence[WriteOffApproval]:
    return list(session.execute(select(WriteOffApproval).where(WriteOffApproval.exception_id == exception_id)
                                .order_by(WriteOffApproval.id)).scalars())


def assign(session: Session, exception_id: int, *, assignee: str | None, actor: str,
           reason: str | None = None) -> ReconException:
    """Give the exception to ``assignee`` (None: unassign)."""
    exception = get_exception(session, exception_id, lock=True)
    why = check_reason(reason or (f"assigned to {assignee}" if assignee else "unassigned"))
    exception.assigned_to = assignee[:200] if assignee else None
    exception.updated_at = utcnow()
    record_action(session, exception.id, "assign", actor, why, detail={"assignee": assignee})
    return exception


def counts(session: Session) -> dict[str, int]:
    rows: Sequence[Any] = sql(session).rows("SELECT status, count(*) FROM recon_exceptions GROUP BY status")
    found = {s.value: 0 for s in ExceptionStatus}
    found.update({str(status): int(n) for status, n in rows})
    return found
