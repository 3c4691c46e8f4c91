"""A sale writes its payment and attempt in one statement and, after the rail's
answer, takes them as stored instead of reading them again, but only while their
rows are still the versions it wrote: whatever changed them meanwhile (the janitor, a
notification) makes the outcome read them afresh. The merchant's settlement
currency comes from a per-process cache that the insert checks. The sale's ledger
batch goes out with the COMMIT; one the database sends to the general path is
recorded again the usual way."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, inspect, text

from adapters.base import MethodKind, PaymentMethod, RailResult
from settlement.db import unit_of_work
from settlement.payments.models import AttemptState, CaptureMethod, Payment, PaymentAttempt, PaymentState
from settlement.payments.service import apply, flows, merchants, outcomes
from settlement.payments.service.flows import Context
from settlement.payments.service.payments import NewPayment
from tests.conftest import Database
from tests.ledger.invariants import ledger_violations
from tests.payments.fixtures import load_rates, make_merchant

PAN = "2200000000000004"


class _Meddling:
    """A rail whose ``authorize`` runs ``meddle(reference)`` after the rail answered,
    before the caller records the answer."""

    def __init__(self, rail: Any, meddle: Callable[[str, RailResult], None]) -> None:
        self._rail, self._meddle = rail, meddle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rail, name)

    def authorize(self, request: Any) -> RailResult:
        result: RailResult = self._rail.authorize(request)
        self._meddle(request.reference, result)
        return result


class _Rails:
    def __init__(self, rails: Any, meddle: Callable[[str, RailResult], None]) -> None:
        self._rails, self._meddle = rails, meddle

    def get(self, name: str) -> Any:
        return _Meddling(self._rails.get(name), self._meddle)


def _sale(ctx: Context, merchant_id: int, amount: int = 123456, quote_id: int | None = None) -> Payment:
    return flows.create_payment(ctx, NewPayment(merchant_id=merchant_id, amount=amount, currency="RUB", rail="mir",
                                                method=PaymentMethod(MethodKind.CARD, pan=PAN, expiry="3112"),
                                                capture_method=CaptureMethod.AUTOMATIC, fx_quote_id=quote_id))


def _row(db: Database, model: type[Any], row_id: int) -> dict[str, Any]:
    with db.factory() as session:
        obj = session.get(model, row_id)
        assert obj is not None
        return {attr.key: getattr(obj, attr.key) for attr in inspect(model).column_attrs}


def _as_stored(db: Database, payment: Payment) -> bool:
    """Whether the payment a flow answered is its row as stored, column by column."""
    answered = {attr.key: getattr(payment, attr.key) for attr in inspect(Payment).column_attrs}
    return answered == _row(db, Payment, payment.id)


def _attempt_id(db: Database, reference: str) -> int:
    with unit_of_work(db.factory) as session:
        return int(session.execute(text("SELECT id FROM payment_attempts WHERE reference = :r"),
                                   {"r": reference}).scalar_one())


def _sound(db: Database) -> None:
    with db.factory() as session:
        assert ledger_violations(session) == []


def _entries(db: Database, payment_id: int) -> int:
    with db.factory() as session:
        return int(session.execute(text("SELECT count(*) FROM ledger_entries WHERE metadata->>'payment_id' = :p"),
                                   {"p": str(payment_id)}).scalar_one())


def test_a_sale_answers_exactly_what_is_stored(ctx: Context, pg_database: Database) -> None:
    seller = make_merchant(pg_database.factory, commission="0.035")
    statements: list[str] = []
    engine = pg_database.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - a one-line recorder
    event.listen(engine, "before_cursor_execute", listener)
    try:
        payment = _sale(ctx, seller)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    # Taken as stored: the outcome locked the rows by their version, never read them.
    assert not any(s.lstrip().upper().startswith("SELECT PAYMENTS.") for s in statements), statements
    assert _as_stored(pg_database, payment)
    assert payment.state == PaymentState.CAPTURED.value
    assert payment.commission_rate == Decimal("0.035")
    assert payment.seller_captured == 123456 - 4320   # 3.5 % of 1234.56 is 43.20 RUB (43.2096, rounded down)
    assert _entries(pg_database, payment.id) == 2
    _sound(pg_database)


def test_rows_changed_during_the_rail_call_are_read_again(ctx: Context, pg_database: Database) -> None:
    seller = make_merchant(pg_database.factory)

    def janitor_looked(reference: str, _result: RailResult) -> None:
        # What the janitor writes when it asks the rail about an attempt in flight, and
        # a change of the payment the outcome does not touch (so the answer shows it).
        with unit_of_work(pg_database.factory) as session:
            session.execute(text("UPDATE payment_attempts SET checks = checks + 1 WHERE reference = :r"),
                            {"r": reference})
            session.execute(text("UPDATE payments SET description = 'changed meanwhile' WHERE id = "
                                 "(SELECT payment_id FROM payment_attempts WHERE reference = :r)"), {"r": reference})

    meddling = dataclasses.replace(ctx, rails=_Rails(ctx.rails, janitor_looked))
    payment = _sale(meddling, seller)  # type: ignore[arg-type]
    with pg_database.factory() as session:
        attempt_id = session.execute(text("SELECT id FROM payment_attempts WHERE payment_id = :p"),
                                     {"p": payment.id}).scalar_one()
    stored = _row(pg_database, PaymentAttempt, attempt_id)
    assert stored["checks"] == 1                   # the change made meanwhile is kept
    assert stored["state"] == AttemptState.SUCCEEDED.value
    assert _as_stored(pg_database, payment)
    assert payment.description == "changed meanwhile"
    assert payment.state == PaymentState.CAPTURED.value
    assert _entries(pg_database, payment.id) == 2
    _sound(pg_database)


def test_an_outcome_applied_during_the_rail_call_is_booked_once(ctx: Context, pg_database: Database) -> None:
    seller = make_merchant(pg_database.factory)

    def notified(reference: str, result: RailResult) -> None:
        # The rail's notification arrives first and is applied by another transaction.
        attempt_id = _attempt_id(pg_database, reference)
        with unit_of_work(pg_database.factory) as session:
            apply.apply_outcome(session, attempt_id, outcomes.call(lambda: result), ctx.terms, ctx.clock())

    meddling = dataclasses.replace(ctx, rails=_Rails(ctx.rails, notified))
    payment = _sale(meddling, seller)  # type: ignore[arg-type]
    assert payment.state == PaymentState.CAPTURED.value
    assert payment.amount_captured == 123456
    assert _entries(pg_database, payment.id) == 2       # a capture and its split, once
    with pg_database.factory() as session:
        events = session.execute(text("SELECT count(*) FROM webhook_events WHERE data->>'payment_id' = :p"),
                                 {"p": str(payment.id)}).scalar_one()
    assert events == 1
    _sound(pg_database)


@pytest.mark.parametrize("with_quote", [False, True])
def test_a_wrong_cached_settlement_currency_is_read_again(ctx: Context, pg_database: Database,
                                                          with_quote: bool) -> None:
    from settlement.fx import service as fx

    load_rates(pg_database.factory)
    seller = make_merchant(pg_database.factory, "CNY")
    quote_id = None
    if with_quote:
        with unit_of_work(pg_database.factory) as session:
            quote_id = fx.create_quote(session, "RUB", "CNY", spread=Decimal("0.005"), ttl_seconds=300).id
    with pg_database.factory() as session:
        key = (session.get_bind().engine.url, seller)
    # As if the database had been recreated under the same URL with another merchant.
    # With a quote, the cached currency alone would refuse it ("no FX quote applies").
    merchants._CURRENCIES[key] = "RUB"
    try:
        payment = _sale(ctx, seller, quote_id=quote_id)
    finally:
        cached = merchants._CURRENCIES.pop(key, None)
    assert cached == "CNY"
    assert payment.settlement_currency == "CNY"
    assert payment.fx_rate is not None
    assert payment.fx_quote_id is not None
    if with_quote:
        assert payment.fx_quote_id == quote_id
    assert _row(pg_database, Payment, payment.id)["settlement_currency"] == "CNY"
    with pg_database.factory() as session:
        assert session.execute(text("SELECT count(*) FROM payments")).scalar_one() == 1
    _sound(pg_database)


def test_an_unknown_merchant_is_refused_before_anything_is_stored(ctx: Context, pg_database: Database) -> None:
    from settlement.payments.errors import MerchantNotFound

    with pytest.raises(MerchantNotFound):
        _sale(ctx, 987654)
    with pg_database.factory() as session:
        assert session.execute(text("SELECT count(*) FROM payment_attempts")).scalar_one() == 0


def test_a_batch_sent_to_the_general_path_is_recorded_again(ctx: Context, pg_database: Database) -> None:
    from settlement.ledger import EntrySpec, Ledger, credit, debit
    from settlement.ledger.errors import IdempotencyConflict
    from settlement.payments import accounts
    from settlement.payments.booking import ledger_key

    seller = make_merchant(pg_database.factory)

    def split_key_taken(reference: str, _result: RailResult) -> None:
        # Another entry already holds the key of the sale's split: the batch sent with
        # the COMMIT is declined, and the general path refuses the key's reuse.
        attempt_id = _attempt_id(pg_database, reference)
        with unit_of_work(pg_database.factory) as session:
            receivable, commission = accounts.receivable("mir", "RUB"), accounts.commission("RUB")
            Ledger(session).post(EntrySpec(ledger_key(attempt_id, "split"), [debit(receivable, 1, "RUB"),
                                                                             credit(commission, 1, "RUB")]))

    meddling = dataclasses.replace(ctx, rails=_Rails(ctx.rails, split_key_taken))
    with pytest.raises(IdempotencyConflict):
        _sale(meddling, seller)  # type: ignore[arg-type]
    with pg_database.factory() as session:
        states = session.execute(text("SELECT p.state, a.state FROM payments p JOIN payment_attempts a "
                                      "ON a.payment_id = p.id")).one()
        entries = session.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one()
        expected = session.execute(text("SELECT count(*) FROM recon_expectations")).scalar_one()
    # Nothing of the outcome was recorded: the janitor will ask the rail again.
    assert tuple(states) == (PaymentState.AUTHORIZING.value, AttemptState.PENDING.value)
    assert entries == 1
    assert expected == 0
    _sound(pg_database)
