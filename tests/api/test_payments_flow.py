"""End to end through HTTP, for each rail against its simulator: authorize, partial
capture, second capture, partial refund, void of the rest; every ledger account
checked to the minor unit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.payflow import CARDS, CURRENCY, merchant, net, post
from tests.conftest import Database
from tests.ledger.invariants import ledger_violations


@pytest.mark.parametrize("rail", ["mir", "unionpay", "alipay"])
def test_authorize_capture_twice_refund_void(rail: str, pay: TestClient, checkout: dict[str, str],
                                             pg_database: Database, simulators: dict[str, object]) -> None:
    cur = CURRENCY[rail]
    seller = merchant(pay, checkout, cur, "0.05")
    created = post(pay, "/v1/payments", {"amount": "1000.00", "currency": cur, "merchant_id": seller, "rail": rail,
                                         "payment_method": CARDS[rail], "capture_method": "manual"}, checkout)
    assert created.status_code == 201, created.text
    payment = created.json()
    assert payment["state"] == "authorized"
    assert payment["amount_capturable"] == "1000.00"
    pid = payment["id"]
    balances = net(pg_database.factory)
    assert balances[f"payments:clearing:{cur}"] == 0

    first = post(pay, f"/v1/payments/{pid}/capture", {"amount": "300.33"}, checkout)
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "partially_captured"
    second = post(pay, f"/v1/payments/{pid}/capture", {"amount": "200.00"}, checkout)
    assert second.status_code == 200, second.text
    assert second.json()["amount_captured"] == "500.33"

    refund = post(pay, f"/v1/payments/{pid}/refunds", {"amount": "100.00"}, checkout)
    assert refund.status_code == 201, refund.text
    assert refund.json()["state"] == "succeeded"

    voided = post(pay, f"/v1/payments/{pid}/void", {}, checkout)
    assert voided.status_code == 200, voided.text
    final = voided.json()
    assert final["state"] == "partially_refunded"
    amounts = final["amount_captured"], final["amount_voided"], final["amount_refunded"]
    assert amounts == ("500.33", "499.67", "100.00")

    balances = net(pg_database.factory)
    # Captures: 300.33 -> commission 15.01 (floor of 15.0165), seller 285.32; 200.00 -> 10.00 / 190.00.
    # Refund of 100.00 out of 500.33 unrefunded: commission floor(25.01 x 100/500.33) = 4.99, seller 95.01.
    assert balances[f"marketplace:commission:{cur}"] == 1501 + 1000 - 499
    assert balances[f"merchant:{seller}:payable:{cur}"] == 28532 + 19000 - 9501
    assert balances[f"rail:{rail}:receivable:{cur}"] == -(50033 - 10000)
    assert balances[f"payments:clearing:{cur}"] == 0
    assert balances[f"payments:refunds:{cur}"] == 0
    with pg_database.factory() as session:
        assert ledger_violations(session) == []
        pending = session.execute(text("SELECT count(*) FROM ledger_holds WHERE status = 'pending'")).scalar_one()
    assert pending == 0


def test_events_announced_once_each(pay: TestClient, checkout: dict[str, str], pg_database: Database) -> None:
    seller = merchant(pay, checkout, "RUB")
    sale = post(pay, "/v1/payments", {"amount": "99.90", "currency": "RUB", "merchant_id": seller, "rail": "mir",
                                      "payment_method": CARDS["mir"]}, checkout).json()
    post(pay, f"/v1/payments/{sale['id']}/refunds", {"amount": "9.90"}, checkout)
    declined = post(pay, "/v1/payments", {"amount": "5.00", "currency": "RUB", "merchant_id": seller, "rail": "mir",
                                          "payment_method": {"type": "card", "pan": "2204000000000059"}}, checkout)
    assert declined.status_code == 402
    with pg_database.factory() as session:
        events = [(row[0], row[1]) for row in session.execute(text(
            "SELECT type, data FROM webhook_events ORDER BY id"))]
    assert [kind for kind, _ in events] == ["payment.captured", "refund.succeeded", "payment.failed"]
    assert (events[0][1]["amount"], events[0][1]["amount_captured"]) == ("99.90", "99.90")
    assert (events[1][1]["amount"], events[1][1]["payment"]["amount_refunded"]) == ("9.90", "9.90")
    assert events[2][1]["failure_code"] == "rail_declined"
