"""The second half of every operation: record what the rail answered, and book it.

:func:`apply_outcome` is the one place an attempt's outcome is recorded, whoever
learned it: the request that called the rail, the janitor that asked the rail
later, or a notification. It locks the payment, does nothing if the attempt was
settled already, and writes the ledger with keys derived from the attempt, so an
outcome is booked exactly once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, make_transient_to_detached

from settlement.db.changes import write_changes
from settlement.db.session import first_row
from settlement.fx.conversion import FxTerms
from settlement.ledger import EntrySpec, HoldStatus, Ledger, LedgerError, credit, debit
from settlement.payments import accounts, events
from settlement.payments.booking import Split, entry, ledger_key, split_capture, split_postings
from settlement.payments.errors import PaymentNotFound
from settlement.payments.models import AttemptState, CaptureMethod, Operation, Payment, PaymentAttempt, PaymentState
from settlement.payments.service.outcomes import Kind, Outcome
from settlement.payments.service.payments import (
    ROW_VERSION,
    PaymentTerms,
    forget_rows,
    fresh_rows,
    remaining_authorized,
)
from settlement.reconciliation.expectations import expect_operation

log = logging.getLogger("settlement.payments")

#: How soon to ask the rail again about an operation it said is pending or whose
#: answer was lost.
RECHECK = dt.timedelta(seconds=5)


def derive_state(payment: Payment) -> PaymentState:
    """The state that summarises the payment's amounts (DESIGN section 6)."""
    if payment.amount_refunded:
        fully = payment.amount_refunded == payment.amount_captured and remaining_authorized(payment) == 0
        return PaymentState.REFUNDED if fully else PaymentState.PARTIALLY_REFUNDED
    if payment.amount_captured:
        return PaymentState.PARTIALLY_CAPTURED if remaining_authorized(payment) else PaymentState.CAPTURED
    if payment.amount_authorized:
        return PaymentState.AUTHORIZED if remaining_authorized(payment) else PaymentState.VOIDED
    return PaymentState(payment.state)


def fx_terms(payment: Payment) -> FxTerms | None:
    if payment.settlement_currency == payment.currency:
        return None
    assert payment.fx_rate is not None
    assert payment.fx_mid_rate is not None
    assert payment.fx_quote_id is not None
    return FxTerms(payment.currency, payment.settlement_currency, Decimal(payment.fx_mid_rate),
                   Decimal(payment.fx_rate), payment.fx_quote_id, payment.fx_source or "")


def _metadata(payment: Payment, attempt: PaymentAttempt) -> dict[str, str]:
    meta = {"payment_id": str(payment.id), "attempt_id": str(attempt.id), "merchant_id": str(payment.merchant_id),
            "rail": payment.rail, "reference": attempt.reference}
    terms = fx_terms(payment)
    if terms is not None:
        meta.update(terms.metadata())
    return meta


_WRITES = "settlement.payments.ledger_writes"
_LAST_BATCH = "settlement.payments.ledger_last_batch"
_COMMIT_WITH_BATCH = "settlement.payments.commit_with_batch"
_GROUPED = "settlement.payments.grouped_outcomes"


def commit_with_ledger(session: Session) -> None:
    """Let ``session``'s commit send its last ledger batch and the COMMIT in one round
    trip (:meth:`~settlement.ledger.service.Ledger.post_batch_with_commit`). The
    caller must then be ready for :class:`~settlement.ledger.errors.BatchNotCommitted`
    from the commit, and run the unit of work again without this."""
    session.info[_COMMIT_WITH_BATCH] = True


def _at_commit(session: Session, write: Callable[[Ledger], None]) -> None:
    """Run ``write`` when ``session`` commits, after everything else it wrote.

    The ledger locks its accounts (the rail's receivable, clearing, commission: rows
    every payment shares) until the commit; writing it last keeps those locks for
    the ledger's own statements and the commit only, not for the payment's."""
    writes: list[Callable[[Ledger], None]] | None = session.info.get(_WRITES)
    if writes is None:
        writes = session.info[_WRITES] = []
        if not session.info.get(_WRITES + ".hooked"):
            session.info[_WRITES + ".hooked"] = True
            event.listen(session, "before_commit", _write_ledger)
    writes.append(write)


def group_last_batches(session: Session) -> None:
    """Let several outcomes recorded in ``session`` each leave a last batch: they are
    posted together, as one batch (:mod:`~settlement.payments.service.groups`)."""
    session.info[_GROUPED] = True


def _at_commit_last(session: Session, entries: list[EntrySpec]) -> None:
    """Post ``entries`` when ``session`` commits, after every other write: entries
    whose results nobody reads, so that (see :func:`commit_with_ledger`) they can go
    out with the COMMIT itself."""
    if _LAST_BATCH in session.info:
        assert session.info.get(_GROUPED), "one last batch per transaction"
        session.info[_LAST_BATCH] = [*session.info[_LAST_BATCH], *entries]
        return
    session.info[_LAST_BATCH] = entries
    _at_commit(session, _nothing)   # hooks the commit; the batch follows the other writes


def _nothing(_ledger: Ledger) -> None:
    return None


def _write_ledger(session: Session) -> None:
    writes = session.info.pop(_WRITES, None)
    if not writes:
        return
    last = session.info.pop(_LAST_BATCH, None)
    # The payment and its attempt in one statement where it can; the flush writes
    # whatever else changed.
    write_changes(session, list(session.dirty))
    session.flush()
    ledger = Ledger(session)
    try:
        for write in writes:
            write(ledger)
        if last is None:
            return
        if session.dirty or session.new or session.deleted:
            write_changes(session, list(session.dirty))
            session.flush()
        if session.info.get(_COMMIT_WITH_BATCH) and ledger.post_batch_with_commit(last):
            return
        ledger.post_batch(last)
    except LedgerError as error:
        # Never commit the payment's side without its ledger side.
        error.durable = False
        raise


def apply_outcome(session: Session, attempt_id: int, outcome: Outcome, terms: PaymentTerms,
                  now: dt.datetime, *, payment_id: int | None = None,
                  stored: tuple[Payment, PaymentAttempt] | None = None) -> tuple[Payment, PaymentAttempt]:
    """Record ``outcome`` for the attempt (see the module docstring). The ledger
    entries are written when the session commits, last.

    ``stored``: the payment and attempt as :func:`~settlement.payments.service.
    payments.create_payment` stored them (outside any session). When their rows are
    still those versions, they are locked and taken as they are, not read again."""
    locked = _adopt(session, stored) if stored is not None else None
    payment, attempt = locked or _lock(session, attempt_id, payment_id)
    if attempt.state in (AttemptState.SUCCEEDED.value, AttemptState.FAILED.value):
        if outcome.kind in (Kind.SUCCEEDED, Kind.FAILED) and outcome.kind.value != attempt.state:
            log.warning("attempt %s was settled %s; a later answer says %s", attempt.id, attempt.state, outcome.kind)
        return payment, attempt
    result = outcome.result
    if result is not None:
        attempt.rail_reference = result.rail_reference or attempt.rail_reference
        attempt.response_code = result.response_code or attempt.response_code
        attempt.approval_code = result.approval_code or attempt.approval_code
    if outcome.kind in (Kind.PENDING, Kind.UNKNOWN):
        attempt.state = AttemptState.PENDING.value if outcome.kind is Kind.PENDING else AttemptState.UNKNOWN.value
        attempt.failure_code, attempt.failure_message = outcome.code or None, outcome.message or None
        attempt.next_check_at = now + RECHECK
        if attempt.operation == Operation.AUTHORIZE.value:
            payment.state = (PaymentState.AUTHORIZING if outcome.kind is Kind.PENDING else PaymentState.UNKNOWN).value
        payment.updated_at = now
        return payment, attempt
    attempt.completed_at = now
    attempt.next_check_at = None
    payment.in_flight_attempt_id = None
    payment.updated_at = now
    if outcome.kind is Kind.FAILED:
        _fail(session, payment, attempt, outcome, now)
    else:
        _succeed(session, payment, attempt, outcome, terms=terms, now=now)
    return payment, attempt


_LOCK = (select(Payment, PaymentAttempt).join(PaymentAttempt, PaymentAttempt.payment_id == Payment.id)
         .where(PaymentAttempt.id == bindparam("attempt_id")).with_for_update(of=(Payment, PaymentAttempt))
         .execution_options(populate_existing=True))
_LOCK_OF_PAYMENT = _LOCK.where(Payment.id == bindparam("payment_id"))


def _lock(session: Session, attempt_id: int, payment_id: int | None) -> tuple[Payment, PaymentAttempt]:
    """The attempt and its payment, both rows locked and read afresh: one statement.
    Both are locked because PostgreSQL, after waiting for a lock, re-reads only the
    locked rows: with the payment alone locked, a second applier of the same outcome
    (the request and the rail's notification at once) would see the attempt as it was
    before the first committed, still pending, and apply it again."""
    if payment_id is None:
        row = session.execute(_LOCK, {"attempt_id": attempt_id}).first()
    else:
        row = session.execute(_LOCK_OF_PAYMENT, {"attempt_id": attempt_id, "payment_id": payment_id}).first()
    if row is None:
        raise PaymentNotFound(f"no payment operation {attempt_id}", attempt_id=attempt_id)
    return row[0], row[1]


_LOCK_VERSIONS = (
    f"SELECT {ROW_VERSION.format(table='p')} || ' ' || {ROW_VERSION.format(table='a')} "
    "FROM payments p JOIN payment_attempts a ON a.payment_id = p.id "
    "WHERE a.id = %(attempt_id)s AND p.id = %(payment_id)s FOR UPDATE OF p, a")


def _adopt(session: Session, stored: tuple[Payment, PaymentAttempt]) -> tuple[Payment, PaymentAttempt] | None:
    """Lock the rows of ``stored`` and, if neither changed since they were written,
    put the objects in ``session`` as loaded (no read); None otherwise (the caller
    reads them; the locks are held either way)."""
    payment, attempt = stored
    version = fresh_rows(attempt)
    if version is None or session.get_bind().dialect.name != "postgresql":
        return None
    row = first_row(session, _LOCK_VERSIONS, {"attempt_id": attempt.id, "payment_id": payment.id})
    if row is None or row[0] != version:
        return None
    forget_rows(attempt)
    for obj in (payment, attempt):
        make_transient_to_detached(obj)
        session.add(obj)
    return payment, attempt


def _fail(session: Session, payment: Payment, attempt: PaymentAttempt, outcome: Outcome, now: dt.datetime) -> None:
    attempt.state = AttemptState.FAILED.value
    attempt.failure_code = outcome.code
    attempt.failure_message = outcome.message[:2000] if outcome.message else None
    if outcome.rail_code:
        attempt.response_code = outcome.rail_code
    if attempt.operation == Operation.AUTHORIZE.value:
        payment.state = PaymentState.FAILED.value
        payment.failure_code = outcome.code
        payment.failure_message = attempt.failure_message
        events.payment_event(session, payment, "failed", attempt)
    elif attempt.operation == Operation.REFUND.value:
        hold_id = attempt.hold_id
        if hold_id is not None:
            _at_commit(session, lambda ledger: _void(ledger, ledger_key(attempt.id, "release"), hold_id,
                                                     f"refund {attempt.id} refused by the rail"))
        events.refund_event(session, payment, attempt, "failed")


def _succeed(session: Session, payment: Payment, attempt: PaymentAttempt, outcome: Outcome, *, terms: PaymentTerms,
             now: dt.datetime) -> None:
    attempt.state = AttemptState.SUCCEEDED.value
    attempt.failure_code = attempt.failure_message = None
    operation = Operation(attempt.operation)
    if operation is Operation.AUTHORIZE:
        _authorized(session, payment, attempt, outcome, terms=terms, now=now)
    elif operation is Operation.CAPTURE:
        _captured(session, payment, attempt, now)
        events.payment_event(session, payment, "captured", attempt)
    elif operation is Operation.VOID:
        _voided(session, payment, attempt)
        events.payment_event(session, payment, "voided", attempt)
    else:
        _refunded(session, payment, attempt)
    if operation in (Operation.CAPTURE, Operation.REFUND) or (
            operation is Operation.AUTHORIZE and payment.capture_method == CaptureMethod.AUTOMATIC.value):
        # What the rail now owes (or takes back): matched later against its settlement file.
        expect_operation(session, rail=payment.rail, kind="refund" if operation is Operation.REFUND else "payment",
                         reference=attempt.reference, rail_reference=attempt.rail_reference or payment.rail_reference,
                         amount=attempt.amount, currency=payment.currency, result=outcome.result, at=now,
                         payment_id=payment.id)
    payment.state = derive_state(payment).value
    if operation is Operation.AUTHORIZE:
        # A sale is announced once, as captured (it was authorized and captured at once).
        events.payment_event(session, payment, "captured" if payment.amount_captured else "authorized", attempt)
    elif operation is Operation.REFUND:
        events.refund_event(session, payment, attempt, "succeeded")


def _void(ledger: Ledger, key: str, hold_id: int, description: str) -> None:
    if ledger.get_hold(hold_id).status is HoldStatus.PENDING:
        ledger.void_hold(key, hold_id, description=description)


def _authorized(session: Session, payment: Payment, attempt: PaymentAttempt, outcome: Outcome, *,
                terms: PaymentTerms, now: dt.datetime) -> None:
    cur = payment.currency
    if outcome.result is not None and outcome.result.rail_reference:
        payment.rail_reference = outcome.result.rail_reference
    payment.amount_authorized = attempt.amount
    receivable, clearing = accounts.receivable(payment.rail, cur), accounts.clearing(cur)
    meta = _metadata(payment, attempt)
    if payment.capture_method == CaptureMethod.AUTOMATIC.value:
        split = split_capture(attempt.amount, Decimal(payment.commission_rate), fx_terms(payment))
        entries = [entry(ledger_key(attempt.id, "capture"), "payment.capture",
                         [debit(receivable, attempt.amount, cur), credit(clearing, attempt.amount, cur)],
                         description=f"sale of payment {payment.id}", metadata=meta),
                   _split_entry(payment, attempt, split, meta)]
        _at_commit_last(session, entries)
        payment.amount_captured = attempt.amount
        _add_split(payment, split)
        return
    expires = now + dt.timedelta(seconds=terms.hold_timeout_seconds)
    payment.authorization_expires_at = expires

    def hold(ledger: Ledger) -> None:
        held = ledger.create_hold(ledger_key(attempt.id, "hold"), debit=receivable, credit=clearing,
                                  amount=attempt.amount, currency=cur, expires_at=expires,
                                  kind="payment.authorization", description=f"authorization of payment {payment.id}",
                                  metadata=meta)
        payment.hold_id = held.hold.id
    _at_commit(session, hold)


def _split_entry(payment: Payment, attempt: PaymentAttempt, split: Split, meta: dict[str, str]) -> EntrySpec:
    postings = split_postings(split, currency=payment.currency, settlement_currency=payment.settlement_currency,
                              merchant_id=payment.merchant_id, source=accounts.clearing(payment.currency))
    return entry(ledger_key(attempt.id, "split"), "payment.split", postings,
                 description=f"split of capture {attempt.id} of payment {payment.id}", metadata=meta)


def _add_split(payment: Payment, split: Split) -> None:
    payment.commission_captured += split.commission
    payment.seller_captured += split.seller
    payment.fx_mid_captured += split.fx_mid


def _captured(session: Session, payment: Payment, attempt: PaymentAttempt, now: dt.datetime) -> None:
    cur = payment.currency
    meta = _metadata(payment, attempt)
    remaining = remaining_authorized(payment) - attempt.amount
    keep = remaining > 0 and not attempt.final
    split = split_capture(attempt.amount, Decimal(payment.commission_rate), fx_terms(payment))
    split_entry = _split_entry(payment, attempt, split, meta)
    hold_id = payment.hold_id
    if not keep:
        # No hold continues after this capture: said now, the payment row is written
        # with the rest, before the ledger locks the shared accounts, not after.
        payment.hold_id = None

    def book(ledger: Ledger) -> None:
        hold = ledger.get_hold(hold_id) if hold_id is not None else None
        if hold is not None and hold.status is HoldStatus.PENDING and (hold.expires_at is None
                                                                        or hold.expires_at > now):
            posted = ledger.post_hold(ledger_key(attempt.id, "post"), hold.id, attempt.amount, keep_remainder=keep,
                                      description=f"capture {attempt.id} of payment {payment.id}", metadata=meta)
            if keep:
                payment.hold_id = posted.continuation.id if posted.continuation is not None else None
        else:
            # The ledger released the hold (it expired) but the rail captured: book the
            # capture outright.
            log.warning("payment %s captured at the rail after its ledger hold ended", payment.id)
            ledger.post(entry(ledger_key(attempt.id, "post"), "payment.capture",
                              [debit(accounts.receivable(payment.rail, cur), attempt.amount, cur),
                               credit(accounts.clearing(cur), attempt.amount, cur)],
                              description=f"capture {attempt.id} of payment {payment.id}", metadata=meta))
            payment.hold_id = None
        ledger.post(split_entry)
    _at_commit(session, book)
    payment.amount_captured += attempt.amount
    _add_split(payment, split)
    if not keep and remaining > 0:
        payment.amount_voided += remaining


def _voided(session: Session, payment: Payment, attempt: PaymentAttempt) -> None:
    remaining = remaining_authorized(payment)
    hold_id = payment.hold_id
    if hold_id is not None:
        _at_commit(session, lambda ledger: _void(ledger, ledger_key(attempt.id, "void"), hold_id,
                                                 f"void of payment {payment.id}"))
    payment.hold_id = None
    payment.amount_voided += remaining


def _refunded(session: Session, payment: Payment, attempt: PaymentAttempt) -> None:
    meta = _metadata(payment, attempt)
    booking = attempt.booking
    split = Split(int(booking["gross"]), int(booking["commission"]), int(booking["seller"]), int(booking["fx_mid"]))
    postings = split_postings(split, currency=payment.currency, settlement_currency=payment.settlement_currency,
                              merchant_id=payment.merchant_id, source=accounts.receivable(payment.rail,
                                                                                           payment.currency),
                              reverse=True)
    refund_entry = entry(ledger_key(attempt.id, "refund"), "payment.refund", postings,
                         description=f"refund {attempt.id} of payment {payment.id}", metadata=meta)
    hold_id = attempt.hold_id

    def book(ledger: Ledger) -> None:
        if hold_id is not None:
            ledger.post_hold(ledger_key(attempt.id, "post"), hold_id,
                             description=f"seller's share of refund {attempt.id}", metadata=meta)
        ledger.post(refund_entry)
    _at_commit(session, book)
    payment.amount_refunded += split.gross
    payment.commission_refunded += split.commission
    payment.seller_refunded += split.seller
    payment.fx_mid_refunded += split.fx_mid
