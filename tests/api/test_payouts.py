"""Payouts: a hold on the seller's payable, posted when the rail pays, voided when it
refuses; never more than what is available."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from settlement.payments.service import janitor
from tests.api.payflow import CARDS, ledger_counts, merchant, net, post
from tests.conftest import Database


def _funded(pay: TestClient, checkout: dict[str, str], rail: str, destination: str) -> int:
    seller = merchant(pay, checkout, "CNY", "0.05", payout_rail=rail, payout_destination=destination,
                      payout_beneficiary="Li Wei")
    sale = post(pay, "/v1/payments", {"amount": "1000.00", "currency": "CNY", "merchant_id": seller,
                                      "rail": "unionpay", "payment_method": CARDS["unionpay"]}, checkout)
    assert sale.status_code == 201, sale.text
    return seller


def test_payout_over_unionpay(pay: TestClient, checkout: dict[str, str], pg_database: Database) -> None:
    seller = _funded(pay, checkout, "unionpay", "6216261000000000018")
    balance = pay.get(f"/v1/merchants/{seller}/balance", headers=checkout).json()
    assert (balance["balance"], balance["available"]) == ("950.00", "950.00")
    paid = post(pay, "/v1/payouts", {"merchant_id": seller, "amount": "900.00"}, checkout)
    assert paid.status_code == 201, paid.text
    assert paid.json()["state"] == "paid"
    assert paid.json()["destination"] == "621626*********0018"
    balances = net(pg_database.factory)
    assert balances[f"merchant:{seller}:payable:CNY"] == 5000
    assert balances["rail:unionpay:payouts:CNY"] == 90000

    before = ledger_counts(pg_database.factory)
    refused = post(pay, "/v1/payouts", {"merchant_id": seller, "amount": "50.01"}, checkout)
    assert refused.status_code == 402
    assert refused.json()["code"] == "insufficient_funds"
    assert ledger_counts(pg_database.factory) == before
    assert [p["state"] for p in pay.get("/v1/payouts", headers=checkout).json()["data"]] == ["paid"]
    wrong = post(pay, "/v1/payouts", {"merchant_id": seller, "amount": "1.00", "currency": "RUB"}, checkout)
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "payment_currency_mismatch"


def test_refused_payout_releases_the_hold(pay: TestClient, checkout: dict[str, str], pg_database: Database) -> None:
    seller = _funded(pay, checkout, "alipay", "2088102100000009")  # a payee Alipay does not know
    refused = post(pay, "/v1/payouts", {"merchant_id": seller, "amount": "100.00"}, checkout)
    assert refused.status_code == 402
    assert refused.json()["code"] == "rail_declined"
    payout = pay.get("/v1/payouts", headers=checkout).json()["data"][0]
    assert payout["state"] == "failed"
    balance = pay.get(f"/v1/merchants/{seller}/balance", headers=checkout).json()
    assert balance["available"] == "950.00"


def test_payout_the_rail_confirms_later(pay: TestClient, checkout: dict[str, str], pg_database: Database,
                                       ctx: Any) -> None:
    seller = _funded(pay, checkout, "unionpay", "6216261000000000018")
    accepted = post(pay, "/v1/payouts", {"merchant_id": seller, "amount": "100.05"}, checkout)  # respCode 05
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["state"] == "processing"
    assert pay.get(f"/v1/merchants/{seller}/balance", headers=checkout).json()["available"] == "849.95"
    import datetime as dt
    import time

    from settlement.db.types import utcnow
    from settlement.payments.service.flows import Context

    time.sleep(0.2)  # the simulator resolves respCode 05 a moment later
    later = Context(ctx.factory, ctx.rails, ctx.terms, clock=lambda: utcnow() + dt.timedelta(seconds=30))
    assert janitor.reconcile(later).payouts_settled == [accepted.json()["id"]]
    assert pay.get(f"/v1/payouts/{accepted.json()['id']}", headers=checkout).json()["state"] == "paid"
    assert net(pg_database.factory)[f"merchant:{seller}:payable:CNY"] == 95000 - 10005
