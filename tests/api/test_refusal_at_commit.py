"""The ledger is written when the request's last transaction commits, after the
response was prepared. A refusal there rolls the transaction back: the client must
hear the refusal, never the success that was prepared for a change not recorded."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.payflow import CARDS, key, ledger_counts, merchant, post
from tests.conftest import Database


def test_a_ledger_refusal_at_commit_is_answered_not_the_prepared_success(
        pay: TestClient, checkout: dict[str, str], pg_database: Database) -> None:
    seller = merchant(pay, checkout, "RUB")
    created = post(pay, "/v1/payments", {"amount": "100.00", "currency": "RUB", "merchant_id": seller,
                                         "rail": "mir", "capture_method": "manual",
                                         "payment_method": CARDS["mir"]}, checkout)
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]
    # The commission account now refuses credits beyond its debits: the capture's
    # split entry breaks that limit when the last transaction commits.
    with pg_database.factory() as session:
        session.execute(text("UPDATE ledger_accounts SET credits_must_not_exceed_debits = true "
                             "WHERE code = 'marketplace:commission:RUB'"))
        session.commit()
    before = ledger_counts(pg_database.factory)
    idem = key()
    captured = post(pay, f"/v1/payments/{payment_id}/capture", {}, checkout, idem)
    assert captured.status_code == 402, captured.text
    assert captured.json()["code"] == "insufficient_funds"
    assert ledger_counts(pg_database.factory) == before
    with pg_database.factory() as session:
        state, amount_captured = session.execute(text("SELECT state, amount_captured FROM payments WHERE id = :id"),
                                                 {"id": payment_id}).one()
    assert (state, amount_captured) == ("authorized", 0)
    # The key answers the same again: the refusal, not a stored success.
    again = post(pay, f"/v1/payments/{payment_id}/capture", {}, checkout, idem)
    assert (again.status_code, again.json()["code"]) == (402, "insufficient_funds")
    assert again.headers.get("Idempotent-Replayed") == "true"
