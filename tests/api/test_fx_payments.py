"""A RUB payment to a seller who settles in CNY: both currencies booked at capture at
the quoted rate, the spread to FX income, refunds reversing at the same rate."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.api.payflow import CARDS, merchant, net, post
from tests.conftest import Database
from tests.ledger.invariants import ledger_violations
from tests.payments.fixtures import load_rates


def test_rub_payment_to_cny_seller(pay: TestClient, checkout: dict[str, str], pg_database: Database) -> None:
    load_rates(pg_database.factory)
    seller = merchant(pay, checkout, "CNY", "0.05")
    quote = pay.post("/v1/fx/quotes", json={"sell_currency": "RUB", "buy_currency": "CNY", "sell_amount": "950.00"},
                     headers=checkout)
    assert quote.status_code == 201, quote.text
    q = quote.json()
    # 0.0785 less the 0.5 % spread, rounded down to 12 places.
    assert (q["mid_rate"], q["rate"], q["buy_amount"]) == ("0.078500000000", "0.078107500000", "74.20")

    created = post(pay, "/v1/payments", {"amount": "1000.00", "currency": "RUB", "merchant_id": seller,
                                         "rail": "mir", "payment_method": CARDS["mir"], "fx_quote_id": q["id"]},
                   checkout)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["state"] == "captured"
    assert (payment["commission"], payment["seller_amount"], payment["settlement_currency"]) == ("50.00", "74.20",
                                                                                                 "CNY")
    balances = net(pg_database.factory)
    # Commission floor(1000.00 x 5 %) = 50.00 RUB; the seller's 950.00 RUB buys floor(95000 x 0.0781075) = 7420
    # fen at the client rate and takes floor(95000 x 0.0785) = 7457 fen from CNY liquidity: spread 37 fen.
    assert balances["marketplace:commission:RUB"] == 5000
    assert balances["fx:liquidity:RUB"] == 95000
    assert balances["fx:liquidity:CNY"] == -7457
    assert balances[f"merchant:{seller}:payable:CNY"] == 7420
    assert balances["fx:income:CNY"] == 37
    assert balances["rail:mir:receivable:RUB"] == -100000
    assert balances["payments:clearing:RUB"] == 0

    refund = post(pay, f"/v1/payments/{payment['id']}/refunds", {"amount": "400.00"}, checkout)
    assert refund.status_code == 201, refund.text
    balances = net(pg_database.factory)
    # 40 % of each unrefunded part, rounded down: commission 20.00 RUB, seller 29.68 CNY, spread 14 fen
    # (so 29.82 CNY back into liquidity); the seller's RUB share takes the rest: 380.00 RUB.
    assert balances["marketplace:commission:RUB"] == 3000
    assert balances[f"merchant:{seller}:payable:CNY"] == 7420 - 2968
    assert balances["fx:income:CNY"] == 37 - 14
    assert balances["fx:liquidity:RUB"] == 95000 - 38000
    assert balances["fx:liquidity:CNY"] == -(7457 - 2982)
    assert balances["rail:mir:receivable:RUB"] == -60000

    rest = post(pay, f"/v1/payments/{payment['id']}/refunds", {}, checkout)
    assert rest.status_code == 201, rest.text
    assert pay.get(f"/v1/payments/{payment['id']}", headers=checkout).json()["state"] == "refunded"
    balances = net(pg_database.factory)
    for code in ("marketplace:commission:RUB", f"merchant:{seller}:payable:CNY", "fx:income:CNY", "fx:liquidity:RUB",
                 "fx:liquidity:CNY", "rail:mir:receivable:RUB", "payments:clearing:RUB", "payments:refunds:CNY"):
        assert balances[code] == 0, code
    with pg_database.factory() as session:
        assert ledger_violations(session) == []


def test_without_a_quote_the_payment_takes_a_fresh_one(pay: TestClient, checkout: dict[str, str],
                                                      pg_database: Database) -> None:
    load_rates(pg_database.factory)
    seller = merchant(pay, checkout, "CNY", "0")
    created = post(pay, "/v1/payments", {"amount": "10.00", "currency": "RUB", "merchant_id": seller,
                                         "rail": "mir", "payment_method": CARDS["mir"]}, checkout)
    assert created.status_code == 201, created.text
    fx = created.json()["fx"]
    assert fx["rate"] == "0.078107500000"
    assert fx["quote_id"] >= 1
    assert created.json()["seller_amount"] == "0.78"  # floor(1000 x 0.0781075) = 78 fen


def test_expired_quote_is_refused_and_changes_nothing(pay: TestClient, checkout: dict[str, str],
                                                     pg_database: Database, make_key: Callable[..., str]) -> None:
    from sqlalchemy import text

    from tests.api.payflow import ledger_counts

    load_rates(pg_database.factory)
    seller = merchant(pay, checkout, "CNY")
    q = pay.post("/v1/fx/quotes", json={"sell_currency": "RUB", "buy_currency": "CNY"}, headers=checkout).json()
    with pg_database.factory() as session:
        session.execute(text("UPDATE fx_quotes SET expires_at = now() - interval '1 second' WHERE id = :id"),
                        {"id": q["id"]})
        session.commit()
    before = ledger_counts(pg_database.factory)
    refused = post(pay, "/v1/payments", {"amount": "10.00", "currency": "RUB", "merchant_id": seller, "rail": "mir",
                                         "payment_method": CARDS["mir"], "fx_quote_id": q["id"]}, checkout)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/fx_quote_expired"
    assert ledger_counts(pg_database.factory) == before
    with pg_database.factory() as session:
        assert session.execute(text("SELECT count(*) FROM payments")).scalar_one() == 0
    wrong_pair = post(pay, "/v1/payments", {"amount": "10.00", "currency": "CNY", "merchant_id": seller,
                                            "rail": "unionpay", "payment_method": CARDS["unionpay"],
                                            "fx_quote_id": q["id"]}, checkout)
    assert wrong_pair.status_code == 422
    assert wrong_pair.json()["code"] == "fx_quote_mismatch"
