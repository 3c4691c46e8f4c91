"""The demo's day is reproducible and every discrepancy lands where it has exactly
one outcome; its bank statement is one the service's parser reads back."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from adapters.base import DiscrepancyKind
from adapters.statements import StatementLine as ParsedLine
from adapters.statements import parse_camt053
from settlement.demo.plan import CURRENCY, INJECTED, MIN_PAYMENTS, Scenario, make_plan
from settlement.demo.statement import StatementLine, camt053


def test_same_seed_same_day_other_seed_other_day() -> None:
    assert make_plan(120, 5) == make_plan(120, 5)
    assert make_plan(120, 5).payments != make_plan(120, 6).payments


@pytest.mark.parametrize("seed", range(20))
def test_discrepancies_land_on_plain_sales(seed: int) -> None:
    plan = make_plan(MIN_PAYMENTS, seed)
    assert sorted(d.kind for d in plan.discrepancies) == sorted(k for kinds in INJECTED.values() for k in kinds)
    targets = [d.payment for d in plan.discrepancies if d.payment is not None]
    assert len(targets) == len(set(targets)), "two discrepancies on one payment"
    for d in plan.discrepancies:
        if d.payment is None:
            assert d.kind is DiscrepancyKind.UNKNOWN
            continue
        payment = plan.by_index(d.payment)
        assert payment.rail == d.rail
        assert payment.scenario is Scenario.SALE
        converted = payment.currency != CURRENCY[payment.rail]
        assert converted == (d.kind is DiscrepancyKind.FX_RATE_DIFFERS)


def test_every_rail_takes_pre_authorizations() -> None:
    scenarios = {rail: {p.scenario for p in make_plan(300, 7).payments if p.rail == rail} for rail in CURRENCY}
    for rail, seen in scenarios.items():
        assert {Scenario.CAPTURE, Scenario.PARTIAL_CAPTURE, Scenario.TWO_CAPTURES, Scenario.VOID} <= seen, rail


def test_amounts_avoid_the_simulators_special_minor_units() -> None:
    for p in make_plan(600, 1).payments:
        assert p.amount % 100 not in (3, 5, 6, 33, 51, 68, 91)
        assert p.amount > 0


def test_too_few_payments_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        make_plan(MIN_PAYMENTS - 1, 1)


def test_statement_reads_back_line_for_line() -> None:
    day = dt.date(2026, 11, 26)
    lines = [StatementLine(1_234_567, "RUB", day, "MIR-1", "mir settlement"),
             StatementLine(-50_001, "CNY", day, "UP-1", "unionpay settlement"),
             StatementLine(99, "CNY", day + dt.timedelta(days=4), "X-1", "incoming transfer")]
    parsed = [item for item in parse_camt053(io.BytesIO(camt053(lines, created=dt.datetime(2026, 11, 30, 18))))
              if isinstance(item, ParsedLine)]
    assert [(p.signed_amount, p.currency, p.booking_date, p.end_to_end_id) for p in parsed] == sorted(
        [(line.amount, line.currency, line.day, line.reference) for line in lines], key=lambda t: (t[1], t[2]))
