"""Helpers for payments tests through HTTP."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from settlement.db import SessionFactory

CARDS = {"mir": {"type": "card", "pan": "2200000000000004", "expiry": "3112"},
         "unionpay": {"type": "card", "pan": "6216261000000000018", "expiry": "3012"},
         "alipay": {"type": "wallet", "buyer_id": "2088102100000001"}}
CURRENCY = {"mir": "RUB", "unionpay": "CNY", "alipay": "CNY"}


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def post(client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str],
         idem: dict[str, str] | None = None) -> Any:
    return client.post(path, json=body, headers={**headers, **(idem if idem is not None else key())})


def merchant(client: TestClient, headers: dict[str, str], currency: str, commission: str = "0.05",
             **extra: Any) -> int:
    response = client.post("/v1/merchants", json={"name": f"seller {currency}", "settlement_currency": currency,
                                                  "commission_rate": commission, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def balances(factory: SessionFactory) -> dict[str, tuple[int, int, int, int]]:
    """code -> (debits_posted, credits_posted, debits_pending, credits_pending)."""
    with factory() as session:
        return {row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in session.execute(text(
            "SELECT code, debits_posted, credits_posted, debits_pending, credits_pending FROM ledger_accounts"))}


def net(factory: SessionFactory) -> dict[str, int]:
    """code -> posted balance as credits - debits (positive for what we owe)."""
    return {code: c - d for code, (d, c, _dp, _cp) in balances(factory).items()}


def ledger_counts(factory: SessionFactory) -> tuple[int, int, int]:
    with factory() as session:
        row = session.execute(text("SELECT (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM "
                                   "ledger_postings), (SELECT count(*) FROM ledger_holds)")).one()
        return int(row[0]), int(row[1]), int(row[2])
