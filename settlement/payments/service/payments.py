"""Payment intents and the first half of every operation: checks, then an attempt
written as ``pending`` (committed by the caller *before* the rail is called).

One operation per payment is at the rail at a time (``in_flight_attempt_id``); the
payment row is locked (``SELECT ... FOR UPDATE``) by every step that changes it.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, TextClause, bindparam, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import NamedColumn

from adapters.base import PaymentMethod, PaymentRail
from settlement.db.direct import Direct
from settlement.db.types import UTCDateTime
from settlement.errors import SettlementError
from settlement.fx import service as fx
from settlement.fx.errors import QuoteMismatch
from settlement.ledger import HoldStatus, Ledger, LedgerError
from settlement.money import check_currency, check_minor, to_minor
from settlement.payments import accounts
from settlement.payments.booking import ledger_key, split_refund
from settlement.payments.errors import (
    AuthorizationExpired,
    ExceedsAuthorized,
    ExceedsCaptured,
    InvalidState,
    MerchantNotFound,
    NothingToVoid,
    OperationInProgress,
    PaymentNotFound,
    RailUnsupported,
)
from settlement.payments.models import (
    AttemptState,
    CaptureMethod,
    Operation,
    Payment,
    PaymentAttempt,
    PaymentState,
)
from settlement.payments.service.merchants import forget_settlement_currency, get_merchant, settlement_currency


@dataclass(frozen=True)
class PaymentTerms:
    """Settings the payment operations need."""

    fx_spread: Decimal = Decimal("0.005")
    fx_quote_ttl_seconds: int = 300
    hold_timeout_seconds: int = 7 * 24 * 3600
    janitor_grace_seconds: int = 120


@dataclass(frozen=True)
class NewPayment:
    merchant_id: int
    amount: int
    currency: str
    rail: str
    method: PaymentMethod
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC
    fx_quote_id: int | None = None
    description: str = ""
    buyer_reference: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


def new_reference(operation: Operation) -> str:
    """Our reference of one rail operation: two letters and 22 hex digits (every rail
    accepts 8-32 letters and digits), unique across databases and simulators."""
    return {Operation.AUTHORIZE: "au", Operation.CAPTURE: "ca", Operation.VOID: "vo",
            Operation.REFUND: "rf"}[operation] + secrets.token_hex(11)


def payment_accounts(payment: Payment) -> list[str]:
    cur, scur = payment.currency, payment.settlement_currency
    codes = [accounts.receivable(payment.rail, cur), accounts.clearing(cur), accounts.commission(cur),
             accounts.payable(payment.merchant_id, scur), accounts.refunds_in_flight(scur)]
    if cur != scur:
        codes += [accounts.fx_liquidity(cur), accounts.fx_liquidity(scur), accounts.fx_income(scur)]
    return codes


def create_payment(session: Session, command: NewPayment, rail: PaymentRail, *, terms: PaymentTerms,
                   now: dt.datetime, authorize: bool = False, _reread: bool = False
                   ) -> tuple[Payment, PaymentAttempt | None]:
    """Check and store a payment intent (``requires_authorization``). A seller who
    settles in another currency needs FX terms: the quote given (unexpired, for this
    pair) or, without one, a quote made now from the newest rates.

    With ``authorize`` the payment is stored ``authorizing`` together with its
    authorization attempt (``pending``, in flight): what
    :func:`begin_authorization` would write next, in the same transaction.

    On PostgreSQL that is one statement, which takes the commission rate from the
    merchant's row itself; the merchant's settlement currency comes from a
    per-process cache, checked by the same statement."""
    check_minor(command.amount)
    check_currency(command.currency)
    if command.currency not in rail.currencies:
        raise RailUnsupported(f"rail {command.rail} does not take {command.currency}; it takes "
                              f"{', '.join(sorted(rail.currencies))}", rail=command.rail, currency=command.currency)
    in_one = authorize and session.get_bind().dialect.name == "postgresql"
    commission: Decimal | None = None
    if in_one:
        scur = settlement_currency(session, command.merchant_id)
    else:
        merchant = get_merchant(session, command.merchant_id)
        scur, commission = merchant.settlement_currency, merchant.commission_rate
    quote = None
    try:
        if scur != command.currency:
            quote = (fx.usable_quote(session, command.fx_quote_id, command.currency, scur, now)
                     if command.fx_quote_id is not None else
                     fx.create_quote(session, command.currency, scur, spread=terms.fx_spread,
                                     ttl_seconds=terms.fx_quote_ttl_seconds, now=now))
        elif command.fx_quote_id is not None:
            raise QuoteMismatch(f"merchant {command.merchant_id} settles in {scur}, the payment's own currency: "
                                "no FX quote applies", quote_id=command.fx_quote_id)
    except SettlementError:
        if in_one and not _reread:
            # Refused on the cached currency: decide again on the merchant's row.
            forget_settlement_currency(session, command.merchant_id)
            return create_payment(session, command, rail, terms=terms, now=now, authorize=authorize, _reread=True)
        raise
    payment = Payment(
        merchant_id=command.merchant_id, rail=command.rail, amount=command.amount, currency=command.currency,
        capture_method=command.capture_method.value, state=PaymentState.REQUIRES_AUTHORIZATION.value,
        method_kind=command.method.kind.value, method_display=command.method.masked[:64],
        buyer_reference=command.buyer_reference, description=command.description, settlement_currency=scur,
        commission_rate=commission, fx_quote_id=quote.id if quote else None,
        fx_rate=quote.rate if quote else None, fx_mid_rate=quote.mid_rate if quote else None,
        fx_source=quote.source if quote else None, amount_authorized=0, amount_captured=0, amount_voided=0,
        amount_refunded=0, commission_captured=0, seller_captured=0, fx_mid_captured=0, commission_refunded=0,
        seller_refunded=0, fx_mid_refunded=0, meta=dict(command.metadata), created_at=now, updated_at=now)
    attempt = None
    if in_one:
        payment.state = PaymentState.AUTHORIZING.value
        attempt = _attempt(payment, Operation.AUTHORIZE, payment.amount, now=now, terms=terms)
        if not _insert_authorizing(session, payment, attempt):
            # The merchant's row does not say the cached currency: read it afresh.
            forget_settlement_currency(session, command.merchant_id)
            if _reread:
                raise MerchantNotFound(f"no merchant {command.merchant_id}", merchant_id=command.merchant_id)
            return create_payment(session, command, rail, terms=terms, now=now, authorize=authorize, _reread=True)
    else:
        session.add(payment)
        session.flush()
    accounts.ensure(session, payment_accounts(payment))
    if authorize and attempt is None:
        attempt = begin_authorization(session, payment.id, terms, now, created=payment)
    return payment, attempt


@functools.cache
def _columns(model: type[Payment] | type[PaymentAttempt]) -> list[tuple[str, NamedColumn[Any]]]:
    """(attribute, column) of every mapped column but the id."""
    return [(prop.key, prop.columns[0]) for prop in model.__mapper__.column_attrs if prop.columns[0].name != "id"]


@functools.cache
def _counters() -> frozenset[str]:
    """The payment's running totals: every one starts at zero (its column default)."""
    return frozenset(key for key, column in _columns(Payment)
                     if column.default is not None and getattr(column.default, "arg", None) == 0
                     and isinstance(column.type, BigInteger))


def _insert_sql() -> TextClause:
    """PostgreSQL: a payment and its first attempt in one statement. Both ids come
    from their identity sequences first, so the payment row is inserted already
    pointing at its in-flight attempt (no INSERT, INSERT, UPDATE). The running totals
    of a new payment are zero, written as literals: that keeps the statement within
    the parameters psycopg caches the conversion of (50), which it otherwise parses
    afresh at every call."""
    pay, att = _columns(Payment), _columns(PaymentAttempt)
    counters = _counters()
    pay_cols = [c for key, c in pay
                if c.name not in ("in_flight_attempt_id", "commission_rate") and key not in counters]
    zero_cols = [c for key, c in pay if key in counters]
    att_cols = [c for _, c in att if c.name != "payment_id"]
    sql = (
        "WITH ids AS (SELECT nextval(pg_get_serial_sequence('payments', 'id')) AS p, "
        "nextval(pg_get_serial_sequence('payment_attempts', 'id')) AS a), "
        "m AS (SELECT commission_rate FROM merchants WHERE id = :p_merchant_id "
        "AND settlement_currency = :p_settlement_currency), "
        "pay AS (INSERT INTO payments (id, in_flight_attempt_id, commission_rate, "
        f"{', '.join(c.name for c in pay_cols + zero_cols)}) SELECT ids.p, ids.a, m.commission_rate, "
        f"{', '.join([':p_' + c.name for c in pay_cols] + ['0'] * len(zero_cols))} "
        f"FROM ids, m RETURNING id, commission_rate, {ROW_VERSION.format(table='payments')} AS v), "
        f"att AS (INSERT INTO payment_attempts (id, payment_id, {', '.join(c.name for c in att_cols)}) "
        f"SELECT ids.a, pay.id, {', '.join(':a_' + c.name for c in att_cols)} FROM ids, pay "
        f"RETURNING id, {ROW_VERSION.format(table='payment_attempts')} AS v) "
        "SELECT ids.p, ids.a, pay.commission_rate AS c, pay.v || ' ' || att.v AS v FROM ids, pay, att")
    return text(sql).bindparams(*(bindparam("p_" + c.name, type_=c.type) for c in pay_cols),
                                *(bindparam("a_" + c.name, type_=c.type) for c in att_cols))


def _start_sql() -> TextClause:
    """PostgreSQL: a new attempt of an existing (locked) payment, and the payment
    marked as having it in flight, in one statement."""
    att = [c for _, c in _columns(PaymentAttempt)]
    sql = (f"WITH att AS (INSERT INTO payment_attempts ({', '.join(c.name for c in att)}) "
           f"VALUES ({', '.join(':a_' + c.name for c in att)}) RETURNING id) "
           "UPDATE payments SET in_flight_attempt_id = att.id, updated_at = :now FROM att "
           "WHERE payments.id = :payment_id RETURNING att.id AS a")
    return text(sql).bindparams(*(bindparam("a_" + c.name, type_=c.type) for c in att),
                                bindparam("now", type_=UTCDateTime()))


#: A row version on PostgreSQL: the transaction that wrote the row and where it is
#: stored. Any later change of the row (an UPDATE, even by the same transaction)
#: makes a new row version with another location.
ROW_VERSION = "{table}.xmin::text || '/' || {table}.ctid::text"

#: The rows each stored authorizing attempt was written as: ``attempt -> version``
#: of its payment and itself (see :func:`fresh_rows`).
_VERSIONS: weakref.WeakKeyDictionary[PaymentAttempt, str] = weakref.WeakKeyDictionary()

_INSERT_AUTHORIZING: list[Direct] = []
_START: list[TextClause] = []
_HELD = "settlement.payments.held"


def _start_in_one(session: Session, payment: Payment, attempt: PaymentAttempt, now: dt.datetime) -> None:
    """Store ``attempt`` (kept outside the session) and mark ``payment`` (in the
    session, locked) as having it in flight, in one statement."""
    if not _START:
        _START.append(_start_sql())
    params: dict[str, Any] = {"a_" + column.name: getattr(attempt, key) for key, column in _columns(PaymentAttempt)}
    params.update(now=now, payment_id=payment.id)
    attempt.id = int(session.execute(_START[0], params).mappings().one()["a"])
    # Written already: recorded as the row's state, not as changes to flush.
    set_committed_value(payment, "in_flight_attempt_id", attempt.id)
    set_committed_value(payment, "updated_at", now)
    # A clean object is held weakly by the session: keep the locked payment for the
    # rest of the transaction, so reading it again costs no query.
    session.info.setdefault(_HELD, []).append(payment)


def _insert_authorizing(session: Session, payment: Payment, attempt: PaymentAttempt) -> bool:
    """Store ``payment`` and ``attempt`` (one statement) and give both their ids, and
    the payment the merchant's commission rate. The objects stay outside the session:
    nothing else in this transaction changes them. False, with nothing stored, when
    the merchant does not settle in ``payment.settlement_currency``."""
    if not _INSERT_AUTHORIZING:
        _INSERT_AUTHORIZING.append(Direct(_insert_sql()))
    counters = _counters()
    if any(getattr(payment, key) for key in counters):
        raise ValueError(f"payment {payment.id}: a new payment's totals start at zero")
    params = {"p_" + column.name: getattr(payment, key) for key, column in _columns(Payment)
              if column.name not in ("in_flight_attempt_id", "commission_rate") and key not in counters}
    params.update({"a_" + column.name: getattr(attempt, key) for key, column in _columns(PaymentAttempt)
                   if column.name != "payment_id"})
    ids = _INSERT_AUTHORIZING[0].first(session, params)
    if ids is None:
        return False
    payment.id, attempt.id = int(ids[0]), int(ids[1])
    payment.commission_rate = ids[2]
    attempt.payment_id = payment.id
    payment.in_flight_attempt_id = attempt.id
    # Every column as written (None where nothing was set), so the objects are the rows.
    for obj, model in ((payment, Payment), (attempt, PaymentAttempt)):
        for key, _ in _columns(model):
            if key not in obj.__dict__:
                setattr(obj, key, None)
    _VERSIONS[attempt] = str(ids[3])
    return True


def fresh_rows(attempt: PaymentAttempt) -> str | None:
    """The version of the payment's and ``attempt``'s rows as :func:`create_payment`
    stored them (None for an attempt it did not store in one statement): the
    ``payment`` and ``attempt`` objects it returned are those rows exactly for as
    long as the database still has this version."""
    return _VERSIONS.get(attempt)


def forget_rows(attempt: PaymentAttempt) -> None:
    _VERSIONS.pop(attempt, None)


def get_payment(session: Session, payment_id: int, *, lock: bool = False) -> Payment:
    payment = session.get(Payment, payment_id, with_for_update=lock or None, populate_existing=lock)
    if payment is None:
        raise PaymentNotFound(f"no payment {payment_id}", payment_id=payment_id)
    return payment


def _attempt(payment: Payment, operation: Operation, amount: int, *, now: dt.datetime, terms: PaymentTerms,
             **extra: object) -> PaymentAttempt:
    """A new ``pending`` attempt of ``operation`` (not yet stored)."""
    values: dict[str, object] = {"final": False, "reason": "", "hold_id": None, "response_code": None,
                                 "approval_code": None, "failure_code": None, "failure_message": None,
                                 "completed_at": None, **extra}
    return PaymentAttempt(payment_id=payment.id, operation=operation.value, reference=new_reference(operation),
                          amount=amount, currency=payment.currency, state=AttemptState.PENDING.value,
                          rail_reference=payment.rail_reference, created_at=now, checks=0,
                          next_check_at=now + dt.timedelta(seconds=terms.janitor_grace_seconds), booking={},
                          **values)


def _start(session: Session, payment: Payment, operation: Operation, amount: int, *, now: dt.datetime,
           terms: PaymentTerms, stored: bool = False, **extra: object) -> PaymentAttempt:
    """A new attempt, in flight. ``stored``: nothing changes the attempt afterwards in
    this transaction, so it may be written at once, outside the session."""
    if payment.in_flight_attempt_id is not None:
        raise OperationInProgress(f"payment {payment.id} has operation {payment.in_flight_attempt_id} at the rail",
                                  payment_id=payment.id, attempt_id=payment.in_flight_attempt_id)
    attempt = _attempt(payment, operation, amount, now=now, terms=terms, **extra)
    if stored and session.get_bind().dialect.name == "postgresql":
        _start_in_one(session, payment, attempt, now)
        return attempt
    session.add(attempt)
    session.flush()
    payment.in_flight_attempt_id = attempt.id
    payment.updated_at = now
    return attempt


def begin_authorization(session: Session, payment_id: int, terms: PaymentTerms, now: dt.datetime, *,
                        created: Payment | None = None) -> PaymentAttempt:
    """Start authorizing; ``created`` is the payment this transaction just inserted
    (no other transaction can see it yet, so it need not be read back and locked)."""
    payment = created if created is not None and created.id == payment_id else get_payment(session, payment_id,
                                                                                             lock=True)
    if payment.state != PaymentState.REQUIRES_AUTHORIZATION.value:
        raise InvalidState(f"payment {payment.id} is {payment.state}; only a payment that requires authorization "
                           "can be authorized", payment_id=payment.id, state=payment.state)
    attempt = _start(session, payment, Operation.AUTHORIZE, payment.amount, now=now, terms=terms)
    payment.state = PaymentState.AUTHORIZING.value
    return attempt


def remaining_authorized(payment: Payment) -> int:
    return payment.amount_authorized - payment.amount_captured - payment.amount_voided


def _check_hold_open(session: Session, payment: Payment, now: dt.datetime) -> None:
    expires = payment.authorization_expires_at
    if expires is not None and expires <= now:
        raise AuthorizationExpired(f"payment {payment.id}'s authorization expired at {expires.isoformat()}",
                                   payment_id=payment.id)
    if payment.hold_id is not None and Ledger(session).get_hold(payment.hold_id).status is not HoldStatus.PENDING:
        raise AuthorizationExpired(f"payment {payment.id}'s authorization is no longer held", payment_id=payment.id)


def _amount(amount: int | str | None, currency: str, default: int) -> int:
    """An amount in minor units, or a decimal string in the payment's currency."""
    if amount is None:
        return default
    if isinstance(amount, str):
        return to_minor(amount, currency, positive=True)
    return check_minor(amount)


def begin_capture(session: Session, payment_id: int, amount: int | str | None, *, final: bool, terms: PaymentTerms,
                  now: dt.datetime) -> PaymentAttempt:
    """Capture ``amount`` (default: all that remains authorized). Never more than what
    remains authorized; ``final`` releases the rest."""
    payment = get_payment(session, payment_id, lock=True)
    remaining = remaining_authorized(payment)
    if payment.capture_method != CaptureMethod.MANUAL.value or payment.amount_authorized == 0:
        raise InvalidState(f"payment {payment.id} is {payment.state}: nothing was authorized for capture",
                           payment_id=payment.id, state=payment.state)
    if remaining <= 0:
        raise InvalidState(f"payment {payment.id} has nothing left to capture", payment_id=payment.id,
                           state=payment.state)
    wanted = _amount(amount, payment.currency, remaining)
    if wanted > remaining:
        raise ExceedsAuthorized(f"capture of {wanted} exceeds the {remaining} that remains authorized",
                                payment_id=payment.id, remaining=remaining, amount=wanted)
    _check_hold_open(session, payment, now)
    return _start(session, payment, Operation.CAPTURE, wanted, now=now, terms=terms, stored=True,
                  final=final or wanted == remaining)


def begin_void(session: Session, payment_id: int, terms: PaymentTerms, now: dt.datetime) -> PaymentAttempt:
    """Release what remains authorized."""
    payment = get_payment(session, payment_id, lock=True)
    remaining = remaining_authorized(payment)
    if payment.amount_authorized == 0 or payment.capture_method != CaptureMethod.MANUAL.value:
        raise InvalidState(f"payment {payment.id} is {payment.state}: there is no authorization to void",
                           payment_id=payment.id, state=payment.state)
    if remaining <= 0:
        raise NothingToVoid(f"payment {payment.id} has nothing left authorized", payment_id=payment.id)
    return _start(session, payment, Operation.VOID, remaining, now=now, terms=terms, stored=True)


def begin_refund(session: Session, payment_id: int, amount: int | str | None, *, reason: str,
                 terms: PaymentTerms, now: dt.datetime) -> PaymentAttempt:
    """Refund ``amount`` (default: all that remains captured), never more than what
    was captured and not yet refunded. The seller's share is held on its payable."""
    payment = get_payment(session, payment_id, lock=True)
    remaining = payment.amount_captured - payment.amount_refunded
    if payment.amount_captured == 0:
        raise InvalidState(f"payment {payment.id} is {payment.state}: nothing was captured to refund",
                           payment_id=payment.id, state=payment.state)
    wanted = _amount(amount, payment.currency, remaining)
    if wanted > remaining:
        raise ExceedsCaptured(f"refund of {wanted} exceeds the {remaining} captured and not yet refunded",
                              payment_id=payment.id, remaining=remaining, amount=wanted)
    attempt = _start(session, payment, Operation.REFUND, wanted, now=now, terms=terms, reason=reason)
    fx_used = payment.currency != payment.settlement_currency
    split = split_refund(wanted, remaining_gross=remaining,
                         remaining_commission=payment.commission_captured - payment.commission_refunded,
                         remaining_seller=payment.seller_captured - payment.seller_refunded,
                         remaining_mid=payment.fx_mid_captured - payment.fx_mid_refunded, fx=fx_used)
    attempt.booking = {"gross": split.gross, "commission": split.commission, "seller": split.seller,
                       "fx_mid": split.fx_mid}
    if split.seller:
        try:
            hold = Ledger(session).create_hold(
                ledger_key(attempt.id, "reserve"), debit=accounts.payable(payment.merchant_id,
                                                                          payment.settlement_currency),
                credit=accounts.refunds_in_flight(payment.settlement_currency), amount=split.seller,
                currency=payment.settlement_currency, kind="payment.refund_reserve",
                description=f"seller's share of refund {attempt.id} of payment {payment.id}")
        except LedgerError as error:
            # The attempt is rolled back with it: nothing of this refund may stay.
            error.durable = False
            raise
        attempt.hold_id = hold.hold.id
    return attempt


def get_attempt(session: Session, attempt_id: int) -> PaymentAttempt:
    attempt = session.get(PaymentAttempt, attempt_id)
    if attempt is None:
        raise PaymentNotFound(f"no payment operation {attempt_id}", attempt_id=attempt_id)
    return attempt


def attempts_of(session: Session, payment_id: int, operation: Operation | None = None) -> list[PaymentAttempt]:
    query = select(PaymentAttempt).where(PaymentAttempt.payment_id == payment_id).order_by(PaymentAttempt.id)
    if operation is not None:
        query = query.where(PaymentAttempt.operation == operation.value)
    return list(session.scalars(query))


@dataclass(frozen=True)
class PaymentFilter:
    state: str | None = None
    merchant_id: int | None = None
    rail: str | None = None
    currency: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None


def list_payments(session: Session, filters: PaymentFilter, *, after: int | None, limit: int) -> list[Payment]:
    """Newest first; ``after`` is the id of the last payment of the previous page."""
    query = select(Payment).order_by(Payment.id.desc()).limit(limit)
    if after is not None:
        query = query.where(Payment.id < after)
    if filters.state is not None:
        query = query.where(Payment.state == filters.state)
    if filters.merchant_id is not None:
        query = query.where(Payment.merchant_id == filters.merchant_id)
    if filters.rail is not None:
        query = query.where(Payment.rail == filters.rail)
    if filters.currency is not None:
        query = query.where(Payment.currency == filters.currency)
    if filters.created_from is not None:
        query = query.where(Payment.created_at >= filters.created_from)
    if filters.created_to is not None:
        query = query.where(Payment.created_at < filters.created_to)
    return list(session.scalars(query))
