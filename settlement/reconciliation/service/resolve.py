"""Resolving exceptions: manual match, write-off (maker-checker above the threshold),
ignore. A reason is required; every action is recorded with who and when; a
resolution books the entry it implies (rules in :mod:`.booking`), under an
idempotency key derived from the exception, so it is booked once:

* **manual match**: an amount mismatch is accepted as paired (the difference goes
  to ``recon:<rail>:variance``); an unexpected or duplicate record is matched to an
  open expectation given by id, a missing expectation to an unsettled record (and
  the same for statement lines and settlement batches). The other side's own open
  exception, if any, is resolved with it.
* **write-off**: the difference of an amount mismatch, the receivable of a missing
  expectation, what an unexpected record paid (into bank clearing), a missing
  batch or an unexpected statement line goes to ``recon:writeoff:<CUR>``. Above
  ``writeoff_approval_threshold`` (minor units) it waits for a second finance
  user; the requester can neither approve nor reject it.
* **ignore**: closes the exception and books nothing (a missing expectation or
  batch stops being looked for).
"""

from __future__ import annotations

import enum
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.reconciliation import accounts
from settlement.reconciliation.errors import (
    ExceptionClosed,
    InvalidResolution,
    NoPendingWriteOff,
    SelfApproval,
)
from settlement.reconciliation.models import (
    ApprovalStatus,
    ExceptionAction,
    ExceptionStatus,
    Match,
    Outcome,
    ReconException,
    Resolution,
    WriteOffApproval,
)
from settlement.reconciliation.service import pairing
from settlement.reconciliation.service.booking import STATEMENT, Totals, book_one, post_amounts
from settlement.reconciliation.service.queue import check_reason, get_exception, record_action
from settlement.reconciliation.service.sql import sql


class Action(enum.StrEnum):
    MANUAL_MATCH = "manual_match"
    WRITE_OFF = "write_off"
    IGNORE = "ignore"


def resolve(session: Session, exception_id: int, *, action: Action, actor: str, reason: str | None,
            threshold: int, expectation_id: int | None = None, item_id: int | None = None,
            line_id: int | None = None, batch_id: int | None = None,
            idempotency_key: str | None = None) -> ReconException:
    """Apply ``action`` to an open exception (rules in the module docstring)."""
    why = check_reason(reason)
    exception = get_exception(session, exception_id, lock=True)
    if idempotency_key and _replayed(session, exception.id, idempotency_key):
        return exception
    if exception.status != ExceptionStatus.OPEN.value:
        raise ExceptionClosed(f"exception {exception.id} is {exception.status}", exception_id=exception.id,
                              status=exception.status)
    match = session.get(Match, exception.match_id)
    assert match is not None
    if action is Action.IGNORE:
        _close_counterpart_search(session, exception, "ignored")
        _resolve(session, exception, Resolution.IGNORE, actor, why, None, idempotency_key)
    elif action is Action.WRITE_OFF:
        if exception.amount > threshold:
            session.add(WriteOffApproval(exception_id=exception.id, amount=exception.amount,
                                         currency=exception.currency, status=ApprovalStatus.PENDING.value,
                                         requested_by=actor[:200], requested_at=utcnow(), reason=why))
            exception.status = ExceptionStatus.PENDING_APPROVAL.value
            exception.updated_at = utcnow()
            record_action(session, exception.id, "write_off_requested", actor, why,
                          detail={"amount": exception.amount, "currency": exception.currency,
                                  "threshold": threshold}, idempotency_key=idempotency_key)
        else:
            entry_id = _write_off(session, exception, match)
            _resolve(session, exception, Resolution.WRITE_OFF, actor, why, entry_id, idempotency_key)
    else:
        entry_id = _manual_match(session, exception, match, actor, why, expectation_id=expectation_id,
                                 item_id=item_id, line_id=line_id, batch_id=batch_id)
        _resolve(session, exception, Resolution.MANUAL_MATCH, actor, why, entry_id, idempotency_key)
    session.flush()
    return exception


def decide(session: Session, exception_id: int, *, approve: bool, actor: str, reason: str | None,
           idempotency_key: str | None = None) -> ReconException:
    """Approve (book the write-off, resolve) or reject (back to open) a pending write-off."""
    why = check_reason(reason)
    exception = get_exception(session, exception_id, lock=True)
    if idempotency_key and _replayed(session, exception.id, idempotency_key):
        return exception
    pending = session.execute(select(WriteOffApproval).where(
        WriteOffApproval.exception_id == exception.id,
        WriteOffApproval.status == ApprovalStatus.PENDING.value).with_for_update()).scalar_one_or_none()
    if pending is None or exception.status != ExceptionStatus.PENDING_APPROVAL.value:
        raise NoPendingWriteOff(f"exception {exception.id} has no write-off waiting for approval",
                                exception_id=exception.id)
    if pending.requested_by == actor[:200]:
        raise SelfApproval(f"{actor} asked for this write-off; another finance user must decide it",
                           exception_id=exception.id, requested_by=pending.requested_by)
    pending.decided_by = actor[:200]
    pending.decided_at = utcnow()
    pending.decision_reason = why
    if approve:
        pending.status = ApprovalStatus.APPROVED.value
        match = session.get(Match, exception.match_id)
        assert match is not None
        entry_id = _write_off(session, exception, match)
        _resolve(session, exception, Resolution.WRITE_OFF, actor, why, entry_id, idempotency_key,
                 action="write_off_approved", detail={"requested_by": pending.requested_by})
    else:
        pending.status = ApprovalStatus.REJECTED.value
        exception.status = ExceptionStatus.OPEN.value
        exception.updated_at = utcnow()
        record_action(session, exception.id, "write_off_rejected", actor, why,
                      detail={"requested_by": pending.requested_by}, idempotency_key=idempotency_key)
    session.flush()
    return exception


def _replayed(session: Session, exception_id: int, key: str) -> bool:
    return session.execute(select(ExceptionAction.id).where(ExceptionAction.exception_id == exception_id,
                                                            ExceptionAction.idempotency_key == key)).first() is not None


def _resolve(session: Session, exception: ReconException, resolution: Resolution, actor: str, reason: str,  # noqa: PLR0917
             entry_id: int | None, idempotency_key: str | None, *, action: str | None = None,
             detail: dict[str, object] | None = None) -> None:
    now = utcnow()
    exception.status = ExceptionStatus.RESOLVED.value
    exception.resolution = resolution.value
    exception.resolved_by = actor[:200]
    exception.resolved_at = now
    exception.updated_at = now
    exception.entry_id = entry_id
    record_action(session, exception.id, action or resolution.value, actor, reason, detail=detail,
                  entry_id=entry_id, idempotency_key=idempotency_key)


def _close_counterpart_search(session: Session, exception: ReconException, status: str) -> None:
    """A missing expectation or batch that is ignored or written off is no longer looked for."""
    if exception.kind != Outcome.MISSING.value:
        return
    q = sql(session)
    if exception.expectation_id is not None:
        q.x("UPDATE recon_expectations SET status = :s, closed_at = :now WHERE id = :id AND status = 'open'",
            s=status, now=utcnow(), id=exception.expectation_id)
    if exception.batch_id is not None:
        q.x("UPDATE recon_settlement_batches SET status = :s WHERE id = :id AND status = 'open'",
            s=status, id=exception.batch_id)


def _key(exception: ReconException) -> str:
    return f"recon:exception:{exception.id}"


def totals_of(match: Match) -> Totals:
    return Totals(match.rail, match.kind, match.currency, match.settlement_currency, match.expected_amount or 0,
                  match.fee or 0, match.gross or 0, match.net or 0, match.settlement_amount or 0,
                  match.expected_settlement or 0)


def _write_off(session: Session, exception: ReconException, match: Match) -> int | None:
    description = f"write-off of exception {exception.id} ({exception.kind})"
    meta = {"reconciliation_exception": exception.id, "match_id": match.id}
    kind = exception.kind
    if kind == Outcome.AMOUNT_MISMATCH.value:
        pairing.settle_pair(session, match)
        return book_one(session, _key(exception), [totals_of(match)], difference_to=accounts.writeoff(match.currency),
                        description=description, metadata=meta)
    if kind == Outcome.MISSING.value:
        _close_counterpart_search(session, exception, "written_off")
        expected = match.expected_amount or 0
        if match.kind == STATEMENT:
            amounts = {(accounts.bank_clearing(match.currency), match.currency): -expected,
                       (accounts.writeoff(match.currency), match.currency): expected}
            return post_amounts(session, _key(exception), amounts, description=description, metadata=meta)
        lost = Totals(match.rail, match.kind, match.currency, None, expected, 0, 0, 0, 0, 0)
        return book_one(session, _key(exception), [lost], difference_to=accounts.writeoff(match.currency),
                        description=description, metadata=meta)
    # Unexpected or duplicate: what the rail (or the bank) moved is kept and written off.
    pairing.claim_leftover(session, match)
    currency = exception.currency
    paid = match.settlement_amount if match.settlement_amount is not None else (match.net or 0)
    landed = accounts.bank_account(currency) if match.kind == STATEMENT else accounts.bank_clearing(currency)
    amounts = {(landed, currency): paid, (accounts.writeoff(currency), currency): -paid}
    return post_amounts(session, _key(exception), amounts, description=description, metadata=meta)


def _manual_match(session: Session, exception: ReconException, match: Match, actor: str, reason: str, *,
                  expectation_id: int | None, item_id: int | None, line_id: int | None,
                  batch_id: int | None) -> int | None:
    description = f"manual match of exception {exception.id} ({exception.kind}) by {actor}"
    meta = {"reconciliation_exception": exception.id, "reason": reason}
    if exception.kind == Outcome.AMOUNT_MISMATCH.value:
        if any(v is not None for v in (expectation_id, item_id, line_id, batch_id)):
            raise InvalidResolution("an amount mismatch is matched as it was paired: name no counterpart")
        pairing.settle_pair(session, match)
        return book_one(session, _key(exception), [totals_of(match)], difference_to=None, description=description,
                        metadata={**meta, "match_id": match.id})
    created = pairing.manual_pair(session, exception, match, expectation_id=expectation_id, item_id=item_id,
                                  line_id=line_id, batch_id=batch_id)
    for other in created.counterpart_exceptions:
        _resolve(session, other, Resolution.MANUAL_MATCH, actor, reason, None, None,
                 detail={"with_exception": exception.id, "match_id": created.match.id})
    return book_one(session, _key(exception), [totals_of(created.match)], difference_to=None,
                    description=description, metadata={**meta, "match_id": created.match.id})


def expected_settlement(net: int, rate: Decimal | None, settlement: int | None) -> int | None:
    """What the rail should pay for ``net`` at the quoted ``rate`` (half away from zero)."""
    if settlement is None:
        return None
    if rate is None:
        return settlement
    return int((Decimal(net) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
