"""Bad input: each refusal is a precise problem+json and changes nothing in the ledger
(nor leaves a payment or an attempt behind where none should be)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.payflow import CARDS, key, ledger_counts, merchant, post
from tests.conftest import Database


def _state(db: Database) -> tuple[Any, ...]:
    with db.factory() as session:
        rows = session.execute(text("SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM payment_attempts),"
                                    " (SELECT count(*) FROM ledger_refusals)")).one()
    return (*ledger_counts(db.factory), *rows)


def _refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"/problems/{code}"
    assert body["code"] == code
    assert body["status"] == status
    assert body["detail"]


@pytest.fixture
def seller(pay: TestClient, checkout: dict[str, str]) -> int:
    return merchant(pay, checkout, "RUB")


def _body(seller: int, **changes: Any) -> dict[str, Any]:
    return {"amount": "100.00", "currency": "RUB", "merchant_id": seller, "rail": "mir",
            "payment_method": CARDS["mir"], "capture_method": "manual", **changes}


def test_malformed_json(pay: TestClient, checkout: dict[str, str], pg_database: Database, seller: int) -> None:
    before = _state(pg_database)
    response = pay.post("/v1/payments", content=b'{"amount": "1.00",', headers={
        **checkout, **key(), "Content-Type": "application/json"})
    _refused(response, 400, "malformed_json")
    assert _state(pg_database) == before


@pytest.mark.parametrize(("changes", "status", "code"), [
    ({"surprise": 1}, 422, "unknown_field"),
    ({"payment_method": {**CARDS["mir"], "cvv": "123"}}, 422, "unknown_field"),
    ({"amount": "100.001"}, 422, "too_many_decimals"),
    ({"amount": 100.5}, 422, "validation_error"),
    ({"amount": "0.00"}, 422, "non_positive_amount"),
    ({"currency": "CNY"}, 422, "rail_unsupported"),
    ({"currency": "XXZ"}, 422, "unknown_currency"),
    ({"rail": "swift"}, 422, "rail_not_configured"),
    ({"merchant_id": 999999}, 404, "merchant_not_found"),
])
def test_refused_payment_requests(pay: TestClient, checkout: dict[str, str], pg_database: Database, seller: int,
                                  changes: dict[str, Any], status: int, code: str) -> None:
    before = _state(pg_database)
    _refused(post(pay, "/v1/payments", _body(seller, **changes), checkout), status, code)
    assert _state(pg_database) == before


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/payments/{id}/capture"), ("POST", "/v1/payments/{id}/refunds"), ("POST", "/v1/payments/{id}/void"),
    ("POST", "/v1/payments/{id}/authorize"), ("GET", "/v1/payments/{id}"), ("GET", "/v1/merchants/{id}"),
    ("GET", "/v1/accounts/{id}/balance"), ("GET", "/v1/payouts/{id}")])
def test_an_id_beyond_a_bigint_is_invalid(pay: TestClient, checkout: dict[str, str], pg_database: Database,
                                          method: str, path: str) -> None:
    before = _state(pg_database)
    body = {"payment_method": CARDS["mir"]} if path.endswith("authorize") else {}
    for bad in (2**63, 0):
        url = path.format(id=bad)
        response = post(pay, url, body, checkout) if method == "POST" else pay.get(url, headers=checkout)
        _refused(response, 422, "validation_error")
        assert "path" in response.text
    assert _state(pg_database) == before


def test_capture_and_refund_limits(pay: TestClient, checkout: dict[str, str], pg_database: Database,
                                   seller: int) -> None:
    pid = post(pay, "/v1/payments", _body(seller), checkout).json()["id"]
    before = _state(pg_database)
    _refused(post(pay, f"/v1/payments/{pid}/capture", {"amount": "100.01"}, checkout), 422,
             "capture_exceeds_authorized")
    _refused(post(pay, f"/v1/payments/{pid}/capture", {"amount": "1.001"}, checkout), 422, "too_many_decimals")
    _refused(post(pay, f"/v1/payments/{pid}/refunds", {"amount": "1.00"}, checkout), 409, "invalid_payment_state")
    assert _state(pg_database) == before
    assert post(pay, f"/v1/payments/{pid}/capture", {"amount": "60.00"}, checkout).status_code == 200
    before = _state(pg_database)
    _refused(post(pay, f"/v1/payments/{pid}/refunds", {"amount": "60.01"}, checkout), 422, "refund_exceeds_captured")
    _refused(post(pay, f"/v1/payments/{pid}/capture", {"amount": "40.01"}, checkout), 422,
             "capture_exceeds_authorized")
    assert _state(pg_database) == before
    assert post(pay, f"/v1/payments/{pid}/refunds", {"amount": "60.00"}, checkout).status_code == 201
    before = _state(pg_database)
    _refused(post(pay, f"/v1/payments/{pid}/refunds", {"amount": "0.01"}, checkout), 422, "refund_exceeds_captured")
    assert _state(pg_database) == before


def test_a_declined_card_books_nothing(pay: TestClient, checkout: dict[str, str], pg_database: Database,
                                       seller: int) -> None:
    before = ledger_counts(pg_database.factory)
    response = post(pay, "/v1/payments", _body(seller, payment_method={"type": "card", "pan": "2204000000000547",
                                                                       "expiry": "3112"}), checkout)
    _refused(response, 402, "rail_declined")
    assert response.json()["errors"]["rail_code"] == "54"
    assert ledger_counts(pg_database.factory) == before
    listed = pay.get("/v1/payments?state=failed", headers=checkout).json()["data"]
    assert [p["failure_code"] for p in listed] == ["rail_declined"]
    assert listed[0]["payment_method"] == "220400******0547"


def test_a_wallet_on_a_card_rail_is_unsupported(pay: TestClient, checkout: dict[str, str], pg_database: Database,
                                                seller: int) -> None:
    before = ledger_counts(pg_database.factory)
    _refused(post(pay, "/v1/payments", _body(seller, payment_method=CARDS["alipay"]), checkout), 422,
             "rail_unsupported")
    assert ledger_counts(pg_database.factory) == before


def test_bad_cursor_and_filters(pay: TestClient, checkout: dict[str, str]) -> None:
    _refused(pay.get("/v1/payments?cursor=not-a-cursor", headers=checkout), 400, "invalid_cursor")
    _refused(pay.get("/v1/payments?state=lost", headers=checkout), 422, "validation_error")
