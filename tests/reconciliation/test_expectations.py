"""Expectations: the contract the payments service calls at capture, refund and payout."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from adapters.base import FxDetail, RailResult, TxnStatus
from settlement.config import get_settings
from settlement.db import unit_of_work
from settlement.money import FloatAmount, NonPositiveAmount, UnknownCurrency
from settlement.reconciliation.errors import ExpectationConflict, InvalidExpectation, UnknownRail
from settlement.reconciliation.expectations import ExpectationSpec, expect, expect_many, expect_operation
from settlement.reconciliation.models import Expectation
from tests.conftest import Database

FRIDAY = dt.date(2026, 11, 20)


def _expect(db: Database, **overrides: Any) -> None:
    args: dict[str, Any] = {"rail": "mir", "kind": "payment", "reference": "ref-1", "rail_reference": "123456789012",
                            "amount": 150_000, "currency": "RUB", "transaction_date": FRIDAY}
    args.update(overrides)
    with unit_of_work(db.factory) as session:
        expect(session, **args)


def _rows(db: Database) -> list[Any]:
    """Through the ORM, so dates are dates on SQLite too."""
    e = Expectation
    with db.factory() as session:
        return [tuple(row) for row in session.execute(select(
            e.reference, e.kind, e.amount, e.signed_amount, e.expected_fee, e.expected_settlement_date,
            e.missing_after, e.settlement_currency, e.fx_rate, e.rrn, e.status).order_by(e.id))]


def test_dates_follow_the_rails_calendar_and_signs_the_file(database: Database) -> None:
    _expect(database, expected_fee=2_250, rrn="000000000001")
    _expect(database, kind="refund", reference="ref-2", amount=5_000, expected_fee=0)
    rows = _rows(database)
    # Friday: settles Monday (T+1 business day), missing after Wednesday.
    assert rows[0][:7] == ("ref-1", "payment", 150_000, 150_000, 2_250, dt.date(2026, 11, 23), dt.date(2026, 11, 25))
    assert rows[1][3:5] == (-5_000, 0)
    assert rows[0][9:] == ("000000000001", "open")


def test_the_same_operation_twice_is_recorded_once(database: Database) -> None:
    _expect(database)
    _expect(database, metadata={"note": "a retry"})
    assert len(_rows(database)) == 1
    with pytest.raises(ExpectationConflict) as conflict:
        _expect(database, amount=150_001)
    assert conflict.value.detail["fields"] == ["amount"]
    assert len(_rows(database)) == 1


@pytest.mark.parametrize(("overrides", "error"), [
    ({"kind": "chargeback"}, InvalidExpectation),
    ({"amount": 0}, NonPositiveAmount),
    ({"amount": 1.5}, FloatAmount),
    ({"currency": "XYZ"}, UnknownCurrency),
    ({"reference": ""}, InvalidExpectation),
    ({"reference": "x" * 101}, InvalidExpectation),
    ({"transaction_date": dt.datetime(2026, 11, 20, tzinfo=dt.UTC)}, InvalidExpectation),
    ({"settlement_currency": "CNY"}, InvalidExpectation),
    ({"settlement_currency": "CNY", "fx_rate": 0.0785}, InvalidExpectation),
    ({"settlement_currency": "RUB", "fx_rate": Decimal("1")}, InvalidExpectation),
    ({"metadata": {"when": dt.date(2026, 1, 1)}}, InvalidExpectation),
    ({"rail": "visa"}, UnknownRail),
])
def test_bad_expectations_are_refused(pg_database: Database, overrides: dict[str, Any],
                                      error: type[Exception]) -> None:
    with pytest.raises(error):
        _expect(pg_database, **overrides)
    assert _rows(pg_database) == []


def test_sla_override(pg_database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SETTLEMENT_RECON_SLA_DAYS", '{"mir": 5}')
    get_settings.cache_clear()
    try:
        _expect(pg_database)
    finally:
        get_settings.cache_clear()
    assert _rows(pg_database)[0][6] == dt.date(2026, 11, 30)


def test_from_the_rails_answer(pg_database: Database) -> None:
    answer = RailResult(rail="alipay", reference="out-1", rail_reference="2026112022001", status=TxnStatus.CAPTURED,
                        amount=100_000, currency="RUB",
                        fx=FxDetail(rate=Decimal("0.0785"), settlement_amount=7_850, settlement_currency="CNY"))
    at = dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC)
    with unit_of_work(pg_database.factory) as session:
        expect_operation(session, rail="alipay", kind="payment", reference="out-1", rail_reference="2026112022001",
                         amount=100_000, currency="RUB", result=answer, at=at, payment_id=7)
        domestic = RailResult(rail="unionpay", reference="o-2", rail_reference="q-2", status=TxnStatus.CAPTURED,
                              amount=10_000, currency="CNY", rrn="0000011120233000")
        expect_operation(session, rail="unionpay", kind="payment", reference="o-2", rail_reference="q-2",
                         amount=10_000, currency="CNY", result=domestic, at=at)
    forex, card = _rows(pg_database)
    # A converted trade's fee is not checked; the rail's rate and currency are kept.
    assert (forex[4], forex[7], forex[8]) == (None, "CNY", Decimal("0.078500000000"))
    # UnionPay's 0.6 % on 100.00 CNY; the RRN is traceNo + traceTime.
    assert (card[4], card[9]) == (60, "0000011120233000")


def test_bulk_path(pg_database: Database) -> None:
    specs = [ExpectationSpec("mir", "payment", f"b-{n}", f"{n:012d}", 1_000 + n, "RUB", FRIDAY,
                             metadata={"n": n} if n == 3 else None) for n in range(200)]
    with unit_of_work(pg_database.factory) as session:
        assert expect_many(session, specs) == 200
    with pg_database.factory() as session:
        rows = session.execute(text("SELECT count(*), sum(amount), max(missing_after) FROM recon_expectations")).one()
        meta = session.execute(text("SELECT metadata FROM recon_expectations WHERE reference = 'b-3'")).scalar()
    assert tuple(rows) == (200, sum(1_000 + n for n in range(200)), dt.date(2026, 11, 25))
    assert meta == {"n": 3}



def test_the_bulk_path_stores_what_expect_stores(pg_database: Database) -> None:
    # Text COPY must escape, NULLs must stay NULL, signs and FX terms as expect() has them.
    specs = [
        ExpectationSpec("mir", "payment", "tab\there", "back\\slash", 1_000, "RUB", FRIDAY, rrn="nl\nrrn",
                        expected_fee=15, metadata={"note": "a\tb\\c"}),
        ExpectationSpec("alipay", "refund", "fx", "q-1", 2_000, "USD", FRIDAY, expected_fee=3,
                        settlement_currency="CNY", settlement_amount=14_200, fx_rate=Decimal("7.1234"),
                        payment_id=7, batch_reference="cr\rbatch"),
        ExpectationSpec("unionpay", "payout", "plain", "", 3_000, "CNY", FRIDAY),
    ]
    with unit_of_work(pg_database.factory) as session:
        expect_many(session, [dataclasses.replace(s, reference=f"bulk:{s.reference}") for s in specs])
        for s in specs:
            expect(session, rail=s.rail, kind=s.kind, reference=f"one:{s.reference}", rail_reference=s.rail_reference,
                   amount=s.amount, currency=s.currency, transaction_date=s.transaction_date, rrn=s.rrn,
                   expected_fee=s.expected_fee, settlement_currency=s.settlement_currency,
                   settlement_amount=s.settlement_amount, fx_rate=s.fx_rate, payment_id=s.payment_id,
                   metadata=s.metadata, batch_reference=s.batch_reference)
    with pg_database.factory() as session:
        rows = session.execute(text(
            "SELECT split_part(reference, ':', 1), substr(reference, strpos(reference, ':') + 1), rail, kind, "
            "rail_reference, rrn, batch_reference, amount, signed_amount, currency, expected_fee, "
            "settlement_currency, settlement_amount, fx_rate, transaction_date, expected_settlement_date, "
            "missing_after, payment_id, status, metadata FROM recon_expectations ORDER BY id")).all()
    bulk = [tuple(row[1:]) for row in rows if row[0] == "bulk"]
    one = [tuple(row[1:]) for row in rows if row[0] == "one"]
    assert len(bulk) == 3
    assert bulk == one
    assert bulk[0][:5] == ("tab\there", "mir", "payment", "back\\slash", "nl\nrrn")
    assert bulk[0][-1] == {"note": "a\tb\\c"}
    assert bulk[2][4:6] == (None, None)
