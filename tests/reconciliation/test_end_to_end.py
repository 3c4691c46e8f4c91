"""Acceptance: a day of payments across the three rails through the payments API, each
rail's simulator writes its settlement file with a discrepancy of every kind, finance
reconciles over the API; then a second day's files (the late records, and a date past
the SLA of the missing ones). Exact counts of each outcome; exact ledger balances:
receivables cleared for what was booked, fees and FX gain/loss equal to the file's
fees and the injected differences. On every rail a pre-authorization is captured in
two equal parts: each capture is its own line, listed under the authorization's
references, and pairs 1:1 with its own expectation by the operation's RRN (Alipay's
capture trade_no). The whole day runs on PostgreSQL and on SQLite, with the same
numbers."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from adapters.alipay.files import parse_settlement
from adapters.base import Discrepancy, DiscrepancyKind, FeeSchedule, SettlementRecord
from adapters.registry import get_rail_plugin
from settlement.payments.models import PaymentAttempt
from settlement.payments.rails import Rails
from settlement.reconciliation.models import Expectation, Match, MatchExpectation
from tests.api.conftest import bearer
from tests.api.payflow import CARDS, merchant, net, post
from tests.conftest import Database
from tests.ledger.invariants import ledger_violations

RAILS = ("mir", "unionpay", "alipay")
CURRENCY = {"mir": "RUB", "unionpay": "CNY", "alipay": "CNY"}
ZONES = {"mir": dt.timezone(dt.timedelta(hours=3)), "unionpay": dt.timezone(dt.timedelta(hours=8)),
         "alipay": dt.timezone(dt.timedelta(hours=8))}
FEES = {"mir": FeeSchedule(Decimal("0.015")), "unionpay": FeeSchedule(Decimal("0.006")),
        "alipay": FeeSchedule(Decimal("0.006"))}
#: Sales per rail on day one; which of them get which discrepancy (by position).
SALES = 9
ON = {DiscrepancyKind.FEE_DIFFERS: 1, DiscrepancyKind.AMOUNT_DIFFERS: 2, DiscrepancyKind.DUPLICATE: 3,
      DiscrepancyKind.MISSING: 4, DiscrepancyKind.LATE: 5, DiscrepancyKind.REFUND: 6, DiscrepancyKind.CHARGEBACK: 7}
FEE_DELTA, AMOUNT_DELTA = 37, 250


@pytest.fixture
def simulators() -> Iterator[dict[str, Any]]:
    """Fresh simulators: their books hold this test's operations only."""
    started: dict[str, Any] = {}
    try:
        for name in RAILS:
            options = {"notify_attempts": "1"} if name == "unionpay" else {}
            started[name] = get_rail_plugin(name).create_simulator(**options)
            started[name].start()
        yield started
    finally:
        for simulator in started.values():
            simulator.stop()


@pytest.fixture
def api(app: FastAPI, client: TestClient, simulators: dict[str, Any], tmp_path: Path) -> Iterator[TestClient]:
    config = tmp_path / "rails.json"
    config.write_text(json.dumps({name: sim.adapter_config() for name, sim in simulators.items()}))
    rails = Rails(json.loads(config.read_text()))
    app.state.rails = rails
    yield client
    rails.close()


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def _sale(api: TestClient, headers: dict[str, str], seller: int, rail: str, minor: int,
          currency: str | None = None) -> dict[str, Any]:
    made = post(api, "/v1/payments", {"amount": _amount(minor), "currency": currency or CURRENCY[rail],
                                      "merchant_id": seller, "rail": rail, "payment_method": CARDS[rail]}, headers)
    assert made.status_code == 201, made.text
    (operation,) = api.get(f"/v1/payments/{made.json()['id']}/operations", headers=headers).json()["data"]
    return {"id": made.json()["id"], "reference": operation["reference"], "amount": minor}


def _captured_twice(api: TestClient, headers: dict[str, str], seller: int, rail: str, minor: int) -> list[int]:
    """A pre-authorization of ``minor``, captured in two equal parts; the parts."""
    made = post(api, "/v1/payments", {"amount": _amount(minor), "currency": CURRENCY[rail], "merchant_id": seller,
                                      "rail": rail, "payment_method": CARDS[rail], "capture_method": "manual"},
                headers)
    assert made.status_code == 201, made.text
    half = minor // 2
    first = post(api, f"/v1/payments/{made.json()['id']}/capture", {"amount": _amount(half), "final": False},
                 headers)
    assert first.status_code in (200, 201), first.text
    second = post(api, f"/v1/payments/{made.json()['id']}/capture", {"final": True}, headers)
    assert second.status_code in (200, 201), second.text
    assert second.json()["state"] == "captured", second.json()
    return [half, minor - half]


def _reconcile(api: TestClient, finance: dict[str, str], rail: str, data: bytes, name: str) -> dict[str, Any]:
    uploaded = api.post("/v1/reconciliation/files", headers=finance, data={"kind": "settlement", "rail": rail},
                        files={"file": (name, data, "application/octet-stream")})
    assert uploaded.status_code == 201, uploaded.text
    started = api.post("/v1/reconciliation/runs", headers=finance, json={"file_id": uploaded.json()["id"]})
    assert started.status_code == 202, started.text
    run = api.get(f"/v1/reconciliation/runs/{started.json()['id']}", headers=finance).json()
    assert run["status"] == "completed", run
    return run


def _next_business_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _write(simulator: Any, day: dt.date, discrepancies: list[Discrepancy]) -> tuple[bytes, list[Discrepancy]]:
    out = io.BytesIO()
    applied = simulator.write_settlement_file(out, day, discrepancies)
    return out.getvalue(), applied


def test_a_day_of_payments_reconciled_across_three_rails(
        api: TestClient, simulators: dict[str, Any], make_key: Callable[..., str], database: Database) -> None:
    checkout, finance = bearer(make_key("checkout")), bearer(make_key("finance"))
    sellers = {"RUB": merchant(api, checkout, "RUB"),
               "CNY": merchant(api, checkout, "CNY", payout_rail="unionpay",
                               payout_destination="6216261000000000018", payout_beneficiary="Li Wei")}
    sales: dict[str, list[dict[str, Any]]] = {rail: [] for rail in RAILS}
    for rail in RAILS:
        for n in range(SALES):
            sales[rail].append(_sale(api, checkout, sellers[CURRENCY[rail]], rail, 10_000 + 1_100 * n))
    # A refund on each rail (the last sale), a forex sale priced in RUB on Alipay, a payout over UnionPay.
    refunds = {}
    for rail in RAILS:
        refunded = post(api, f"/v1/payments/{sales[rail][-1]['id']}/refunds", {"amount": "20.00"}, checkout)
        assert refunded.status_code == 201, refunded.text
        refunds[rail] = 2_000
    forex = _sale(api, checkout, sellers["RUB"], "alipay", 123_400, currency="RUB")
    captures = {rail: _captured_twice(api, checkout, sellers[CURRENCY[rail]], rail, 6_000) for rail in RAILS}
    paid = post(api, "/v1/payouts", {"merchant_id": sellers["CNY"], "amount": "50.00"}, checkout)
    assert paid.status_code == 201, paid.text
    assert paid.json()["state"] == "paid"

    # Day one's files, a discrepancy of every kind on every rail (FX on Alipay's forex sale).
    day_one = {rail: _next_business_day(dt.datetime.now(ZONES[rail]).date()) for rail in RAILS}
    injected: dict[str, list[Discrepancy]] = {}
    files: dict[str, bytes] = {}
    runs_one = {}
    for rail in RAILS:
        wanted = [Discrepancy(kind, reference=sales[rail][position]["reference"],
                              delta=FEE_DELTA if kind is DiscrepancyKind.FEE_DIFFERS else
                              AMOUNT_DELTA if kind is DiscrepancyKind.AMOUNT_DIFFERS else 0)
                  for kind, position in ON.items()]
        wanted.append(Discrepancy(DiscrepancyKind.UNKNOWN, delta=4_321))
        if rail == "alipay":
            wanted.append(Discrepancy(DiscrepancyKind.FX_RATE_DIFFERS, reference=forex["reference"]))
        data, applied = _write(simulators[rail], day_one[rail], wanted)
        assert len(applied) == len(wanted)
        injected[rail] = applied
        files[rail] = data
        runs_one[rail] = _reconcile(api, finance, rail, data, f"{rail}-day1")

    # Day two: one more sale each; the file is dated a week later, past the SLA of the missing records.
    for rail in RAILS:
        sales[rail].append(_sale(api, checkout, sellers[CURRENCY[rail]], rail, 55_500))
    runs_two = {}
    for rail in RAILS:
        data, _ = _write(simulators[rail], day_one[rail] + dt.timedelta(days=7), [])
        runs_two[rail] = _reconcile(api, finance, rail, data, f"{rail}-day2")

    zero = {"matched": 0, "fee_variance": 0, "fx_variance": 0, "late": 0, "amount_mismatch": 0,
            "missing_in_file": 0, "unexpected_in_file": 0, "duplicate": 0}
    for rail in RAILS:
        # Day one: 9 sales, a refund and two captures (and the payout, the forex sale); 4 sales not
        # plainly matched.
        extra = {"unionpay": 1, "alipay": 0, "mir": 0}[rail]
        matched = SALES + 1 + len(captures[rail]) + extra - 4
        one = {**zero, "matched": matched, "fee_variance": 1, "amount_mismatch": 1, "duplicate": 1,
               "unexpected_in_file": 3}
        if rail == "alipay":
            one["fx_variance"] = 1
        assert runs_one[rail]["summary"]["outcomes"] == one, rail
        assert runs_two[rail]["summary"]["outcomes"] == {**zero, "matched": 1, "late": 1, "missing_in_file": 1}, rail
    # Each capture of the pre-authorizations paired with its own expectation, one to one, by its RRN.
    paired = [(rail, shape, rule) for rail, shape, rule, _ in _capture_matches(database)]
    assert sorted(paired) == sorted((rail, "1:1", "exact:rrn") for rail in RAILS for _ in (1, 2))

    balances = net(database.factory)     # credits - debits
    # FX: the rail paid the forex sale's net at a rate 1 % above the one it quoted.
    (paid_fx,) = [r for r in parse_settlement(io.BytesIO(files["alipay"]))
                  if isinstance(r, SettlementRecord) and r.reference == forex["reference"]]
    with database.factory() as session:
        quoted = session.execute(select(Expectation.fx_rate).where(Expectation.reference == forex["reference"])
                                 ).scalar_one()
    at_quote = int((Decimal(paid_fx.net) * quoted).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert paid_fx.settlement_amount is not None
    assert paid_fx.settlement_amount > at_quote
    assert balances["fx:gain_loss:CNY"] == paid_fx.settlement_amount - at_quote
    assert balances["rail:alipay:receivable:RUB"] == 0
    assert -balances["fx:liquidity:RUB"] == paid_fx.net
    clearing = {"RUB": 0, "CNY": paid_fx.settlement_amount}
    for rail in RAILS:
        cur = CURRENCY[rail]
        amounts = [s["amount"] for s in sales[rail]]
        unbooked = amounts[ON[DiscrepancyKind.AMOUNT_DIFFERS]] + amounts[ON[DiscrepancyKind.MISSING]]
        # The receivable keeps exactly what was not booked: the mismatched and the missing sale.
        assert -balances[f"rail:{rail}:receivable:{cur}"] == unbooked, rail
        booked = [a for n, a in enumerate(amounts) if n not in (ON[DiscrepancyKind.AMOUNT_DIFFERS],
                                                               ON[DiscrepancyKind.MISSING])] + captures[rail]
        fees = sum(FEES[rail].fee_for(a) for a in booked) + FEE_DELTA
        assert -balances[f"rail:{rail}:fees:{cur}"] == fees, rail
        clearing[cur] += sum(booked) - fees - refunds[rail] - (5_000 if rail == "unionpay" else 0)
    assert balances["rail:unionpay:payouts:CNY"] == 0
    assert -balances["bank:clearing:RUB"] == clearing["RUB"]
    assert -balances["bank:clearing:CNY"] == clearing["CNY"]
    with database.factory() as session:
        assert ledger_violations(session) == []
    exceptions = api.get("/v1/reconciliation/exceptions", headers=finance, params={"limit": 100}).json()["data"]
    assert sorted((e["rail"], e["kind"]) for e in exceptions if e["status"] == "open") == sorted(
        (rail, kind) for rail in RAILS for kind in ("amount_mismatch", "duplicate", "unexpected_in_file",
                                                    "unexpected_in_file", "unexpected_in_file", "missing_in_file"))


def _capture_matches(database: Database) -> list[tuple[str, str, str, str]]:
    """(rail, shape, rule, outcome) of every match covering a capture's expectation."""
    with database.factory() as session:
        return [tuple(row) for row in session.execute(
            select(Match.rail, Match.shape, Match.rule, Match.outcome)
            .join(MatchExpectation, MatchExpectation.match_id == Match.id)
            .join(Expectation, Expectation.id == MatchExpectation.expectation_id)
            .join(PaymentAttempt, PaymentAttempt.reference == Expectation.reference)
            .where(PaymentAttempt.operation == "capture", MatchExpectation.claimed))]
