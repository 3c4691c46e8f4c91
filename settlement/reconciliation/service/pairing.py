"""The pairings finance makes by hand, with the checks that keep each expectation,
record, statement line and settlement batch settled at most once."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.reconciliation.errors import (
    CounterpartClaimed,
    ExpectationNotFound,
    InvalidResolution,
    ItemNotFound,
)
from settlement.reconciliation.models import (
    ExceptionStatus,
    Expectation,
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
from settlement.reconciliation.service.sql import sql


@dataclass
class Paired:
    match: Match
    counterpart_exceptions: list[ReconException] = field(default_factory=list)


def settle_pair(session: Session, match: Match) -> None:
    """An amount-mismatch pair is accepted: its batches are confirmed (its expectations
    are settled by their claimed links already)."""
    sql(session).x("""
        UPDATE recon_settlement_batches SET status = 'confirmed'
        WHERE id IN (SELECT batch_id FROM recon_match_batches WHERE match_id = :m AND claimed)""", m=match.id)


def claim_leftover(session: Session, match: Match) -> None:
    """The record (or statement line) of an unexpected or duplicate result is used up."""
    q = sql(session)
    for table, column in (("recon_match_items", "item_id"), ("recon_match_lines", "line_id")):
        taken = q.run(f"""
            SELECT 1 FROM {table} o JOIN {table} mine ON mine.{column} = o.{column}
            WHERE mine.match_id = :m AND o.claimed AND o.match_id <> :m""", m=match.id).first()
        if taken is not None:
            raise CounterpartClaimed("this line was matched meanwhile", match_id=match.id)
        q.x(f"UPDATE {table} SET claimed = true WHERE match_id = :m", m=match.id)


def _claimed(session: Session, table: str, column: str, value: int) -> bool:
    return sql(session).run(f"SELECT 1 FROM {table} WHERE {column} = :v AND claimed", v=value).first() is not None


def _open_exceptions(session: Session, column: str, value: int, exclude: int) -> list[ReconException]:
    return list(session.execute(select(ReconException).where(
        getattr(ReconException, column) == value, ReconException.id != exclude,
        ReconException.status == ExceptionStatus.OPEN.value).with_for_update()).scalars())


def manual_pair(session: Session, exception: ReconException, result: Match, *, expectation_id: int | None,
                item_id: int | None, line_id: int | None, batch_id: int | None) -> Paired:
    """Pair the exception's own side with the counterpart named by id, as a new live
    match of the exception's run (rule ``manual``, outcome ``matched``)."""
    statement = result.kind == STATEMENT
    missing = exception.kind == Outcome.MISSING.value
    if statement:
        line_id = line_id if missing else exception.line_id
        batch_id = exception.batch_id if missing else batch_id
        if line_id is None or batch_id is None:
            raise InvalidResolution("a manual match needs the " + ("statement line_id" if missing else "batch_id"))
        return _pair_statement(session, exception, line_id, batch_id)
    item_id = item_id if missing else exception.item_id
    expectation_id = exception.expectation_id if missing else expectation_id
    if item_id is None or expectation_id is None:
        raise InvalidResolution("a manual match needs the " + ("file record item_id" if missing else "expectation_id"))
    return _pair_settlement(session, exception, item_id, expectation_id)


def _pair_settlement(session: Session, exception: ReconException, item_id: int, expectation_id: int) -> Paired:
    from settlement.reconciliation.service.resolve import expected_settlement

    e = session.execute(select(Expectation).where(Expectation.id == expectation_id)
                        .with_for_update()).scalar_one_or_none()
    if e is None:
        raise ExpectationNotFound(f"expectation {expectation_id} does not exist", expectation_id=expectation_id)
    found = session.execute(select(FileItem, ReconFile.rail).join(ReconFile, ReconFile.id == FileItem.file_id)
                            .where(FileItem.id == item_id)).first()
    if found is None:
        raise ItemNotFound(f"file record {item_id} does not exist", item_id=item_id)
    i, rail = found
    if e.status != "open" or _claimed(session, "recon_match_expectations", "expectation_id", expectation_id):
        raise CounterpartClaimed(f"expectation {expectation_id} is {e.status}", expectation_id=expectation_id)
    if _claimed(session, "recon_match_items", "item_id", item_id):
        raise CounterpartClaimed(f"file record {item_id} is already matched", item_id=item_id)
    problems = [what for what, bad in (
        ("rail", rail != e.rail), ("kind", i.record_type != e.kind), ("currency", i.currency != e.currency),
        ("settlement currency", e.settlement_currency is not None
         and i.settlement_currency != e.settlement_currency)) if bad]
    if problems:
        raise InvalidResolution(f"record {item_id} and expectation {expectation_id} differ in {', '.join(problems)}",
                                item_id=item_id, expectation_id=expectation_id)
    match = Match(run_id=exception.run_id, live=True, outcome=Outcome.MATCHED.value, rule="manual", shape="1:1",
                  rail=e.rail, kind=e.kind, currency=e.currency, expected_amount=e.signed_amount,
                  expected_fee=e.expected_fee, gross=i.gross, fee=i.fee, net=i.net,
                  settlement_currency=i.settlement_currency, settlement_amount=i.settlement_amount,
                  expected_settlement=expected_settlement(i.net, e.fx_rate, i.settlement_amount),
                  created_at=utcnow())
    session.add(match)
    session.flush()
    session.add_all([MatchItem(match_id=match.id, item_id=item_id, claimed=True),
                     MatchExpectation(match_id=match.id, expectation_id=expectation_id, claimed=True)])
    others = _open_exceptions(session, "item_id", item_id, exception.id) + _open_exceptions(
        session, "expectation_id", expectation_id, exception.id)
    session.flush()
    return Paired(match, others)


def _pair_statement(session: Session, exception: ReconException, line_id: int, batch_id: int) -> Paired:
    b = session.execute(select(SettlementBatch).where(SettlementBatch.id == batch_id)
                        .with_for_update()).scalar_one_or_none()
    line = session.get(StatementLine, line_id)
    if b is None or line is None:
        raise ItemNotFound("no such statement line or settlement batch", line_id=line_id, batch_id=batch_id)
    if b.status != "open" or _claimed(session, "recon_match_batches", "batch_id", batch_id):
        raise CounterpartClaimed(f"settlement batch {batch_id} is {b.status}", batch_id=batch_id)
    if _claimed(session, "recon_match_lines", "line_id", line_id):
        raise CounterpartClaimed(f"statement line {line_id} is already matched", line_id=line_id)
    if b.currency != line.currency:
        raise InvalidResolution("the line and the batch are in different currencies")
    match = Match(run_id=exception.run_id, live=True, outcome=Outcome.MATCHED.value, rule="manual", shape="1:1",
                  rail=b.rail, kind=STATEMENT, currency=b.currency, expected_amount=b.amount,
                  gross=line.amount, fee=0, net=line.amount, created_at=utcnow())
    session.add(match)
    session.flush()
    session.add_all([MatchLine(match_id=match.id, line_id=line_id, claimed=True),
                     MatchBatch(match_id=match.id, batch_id=batch_id, claimed=True)])
    b.status = "confirmed"
    others = _open_exceptions(session, "line_id", line_id, exception.id) + _open_exceptions(
        session, "batch_id", batch_id, exception.id)
    session.flush()
    return Paired(match, others)
