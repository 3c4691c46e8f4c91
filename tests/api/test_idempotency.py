"""Retries: every money-moving POST sent twice with one Idempotency-Key has one
effect; the same key with another body is 409; 50 concurrent identical requests
have one effect."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.payflow import CARDS, ledger_counts, merchant, post
from tests.conftest import Database


def _count(db: Database, table: str) -> int:
    with db.factory() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _twice(client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str], db: Database,
           changed: dict[str, Any]) -> dict[str, Any]:
    """Send ``body`` twice under one key and check the replay, then a changed body."""
    idem = {"Idempotency-Key": uuid.uuid4().hex}
    first = post(client, path, body, headers, idem)
    assert first.status_code in (200, 201), first.text
    effects = ledger_counts(db.factory), _count(db, "payment_attempts"), _count(db, "payouts")
    again = post(client, path, body, headers, idem)
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (ledger_counts(db.factory), _count(db, "payment_attempts"), _count(db, "payouts")) == effects
    conflict = post(client, path, changed, headers, idem)
    assert conflict.status_code == 409
    assert conflict.json()["type"] == "/problems/idempotency_conflict"
    assert (ledger_counts(db.factory), _count(db, "payment_attempts"), _count(db, "payouts")) == effects
    result: dict[str, Any] = first.json()
    return result


def test_every_money_moving_post_is_idempotent(pay: TestClient, checkout: dict[str, str],
                                               pg_database: Database) -> None:
    seller = merchant(pay, checkout, "CNY", payout_rail="unionpay", payout_destination="6216261000000000018")
    body = {"amount": "800.00", "currency": "CNY", "merchant_id": seller, "rail": "unionpay",
            "payment_method": CARDS["unionpay"], "capture_method": "manual"}
    payment = _twice(pay, "/v1/payments", body, checkout, pg_database, {**body, "amount": "800.01"})
    assert _count(pg_database, "payments") == 1
    pid = payment["id"]
    _twice(pay, f"/v1/payments/{pid}/capture", {"amount": "500.00"}, checkout, pg_database, {"amount": "500.01"})
    _twice(pay, f"/v1/payments/{pid}/refunds", {"amount": "100.00"}, checkout, pg_database, {"amount": "99.00"})
    _twice(pay, f"/v1/payments/{pid}/void", {}, checkout, pg_database, {"reason": "changed"})
    _twice(pay, "/v1/payouts", {"merchant_id": seller, "amount": "10.00"}, checkout, pg_database,
           {"merchant_id": seller, "amount": "10.01"})
    deferred = _twice(pay, "/v1/payments", {**body, "confirm": False}, checkout, pg_database,
                      {**body, "confirm": False, "description": "x"})
    _twice(pay, f"/v1/payments/{deferred['id']}/authorize", {"payment_method": CARDS["unionpay"]}, checkout,
           pg_database, {"payment_method": {**CARDS["unionpay"], "expiry": "3011"}})
    state = pay.get(f"/v1/payments/{pid}", headers=checkout).json()
    assert (state["amount_captured"], state["amount_refunded"], state["amount_voided"]) == ("500.00", "100.00",
                                                                                           "300.00")


def test_a_refusal_is_replayed_too(pay: TestClient, checkout: dict[str, str], pg_database: Database) -> None:
    seller = merchant(pay, checkout, "RUB")
    idem = {"Idempotency-Key": "declined-1"}
    body = {"amount": "10.00", "currency": "RUB", "merchant_id": seller, "rail": "mir",
            "payment_method": {"type": "card", "pan": "2204000000000059", "expiry": "3112"}}
    first = post(pay, "/v1/payments", body, checkout, idem)
    assert first.status_code == 402
    assert first.json()["code"] == "rail_declined"
    assert first.json()["errors"]["rail_code"] == "05"
    again = post(pay, "/v1/payments", body, checkout, idem)
    assert again.status_code == 402
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(pg_database, "payments") == 1
    assert ledger_counts(pg_database.factory)[0] == 0


def test_missing_key_is_refused(pay: TestClient, checkout: dict[str, str], pg_database: Database) -> None:
    seller = merchant(pay, checkout, "RUB")
    response = pay.post("/v1/payments", json={"amount": "10.00", "currency": "RUB", "merchant_id": seller,
                                              "rail": "mir", "payment_method": CARDS["mir"]}, headers=checkout)
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/idempotency_key_required"
    assert _count(pg_database, "payments") == 0


def test_keys_belong_to_their_api_key(pay: TestClient, checkout: dict[str, str], make_key: Any,
                                      pg_database: Database) -> None:
    from tests.api.conftest import bearer

    other = bearer(make_key("checkout"))
    seller = merchant(pay, checkout, "RUB")
    body = {"amount": "10.00", "currency": "RUB", "merchant_id": seller, "rail": "mir", "payment_method": CARDS["mir"]}
    idem = {"Idempotency-Key": "shared-name"}
    assert post(pay, "/v1/payments", body, checkout, idem).status_code == 201
    assert post(pay, "/v1/payments", body, other, idem).status_code == 201
    assert _count(pg_database, "payments") == 2


def test_fifty_concurrent_identical_requests_have_one_effect(app: FastAPI, pay: TestClient,
                                                             checkout: dict[str, str], pg_database: Database) -> None:
    seller = merchant(pay, checkout, "RUB")
    body = {"amount": "123.45", "currency": "RUB", "merchant_id": seller, "rail": "mir",
            "payment_method": CARDS["mir"]}
    headers = {**checkout, "Idempotency-Key": uuid.uuid4().hex}

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return list(await asyncio.gather(*(client.post("/v1/payments", json=body, headers=headers)
                                               for _ in range(50))))

    responses = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status_code == 201]
    assert created, statuses
    assert len({r.json()["id"] for r in created}) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "request_in_flight"
    assert _count(pg_database, "payments") == 1
    assert _count(pg_database, "payment_attempts") == 1
    entries, _postings, _holds = ledger_counts(pg_database.factory)
    assert entries == 2  # the sale's capture entry and its split
    late = pay.post("/v1/payments", json=body, headers=headers)
    assert late.status_code == 201
    assert late.headers["Idempotent-Replayed"] == "true"
