"""Rail notifications through HTTP: stored first, verified by the adapter,
deduplicated on the rail's notification id, applied; a forged one is refused and the
truth is fetched from the rail instead."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from adapters.simulation import LoggingHTTPServer
from settlement.payments.rails import Rails
from tests.api.payflow import ledger_counts, merchant, post
from tests.conftest import Database

WAITING_BUYER = "2088102100000004"


class Inbox:
    """A loopback HTTP endpoint that keeps what the simulator notifies and says success."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                inbox.received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "7")
                self.end_headers()
                self.wfile.write(b"success")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = LoggingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, marker: bytes) -> tuple[dict[str, str], bytes]:
        """The first notification whose body contains ``marker``."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for headers, body in list(self.received):
                if marker in body:
                    return headers, body
            time.sleep(0.02)
        raise AssertionError(f"the simulator sent no notification with {marker!r}")


@pytest.fixture
def inbox(app: FastAPI, pay: TestClient, rails_config_file: Path) -> Iterator[Inbox]:
    box = Inbox()
    config = json.loads(rails_config_file.read_text())
    config["alipay"]["notify_url"] = box.url
    rails = Rails(config)
    app.state.rails = rails
    yield box
    box.server.shutdown()
    rails.close()


def _waiting_sale(pay: TestClient, checkout: dict[str, str], simulators: dict[str, Any]) -> tuple[int, str]:
    seller = merchant(pay, checkout, "CNY")
    created = post(pay, "/v1/payments", {"amount": "88.00", "currency": "CNY", "merchant_id": seller, "rail": "alipay",
                                         "payment_method": {"type": "wallet", "buyer_id": WAITING_BUYER}}, checkout)
    assert created.status_code == 202, created.text
    assert created.json()["state"] == "authorizing"
    pid = created.json()["id"]
    reference = pay.get(f"/v1/payments/{pid}/operations", headers=checkout).json()["data"][0]["reference"]
    simulators["alipay"].confirm_payment(reference)
    return pid, reference


def _rows(db: Database) -> list[tuple[str, str | None]]:
    with db.factory() as session:
        return [(r[0], r[1]) for r in session.execute(text("SELECT status, notification_id FROM rail_notifications "
                                                           "ORDER BY id"))]


def test_a_verified_notification_is_applied_once(pay: TestClient, checkout: dict[str, str], inbox: Inbox,
                                                 simulators: dict[str, Any], pg_database: Database) -> None:
    pid, _reference = _waiting_sale(pay, checkout, simulators)
    headers, body = inbox.wait_for(b"TRADE_SUCCESS")
    answer = pay.post("/v1/notifications/alipay", content=body, headers={"Content-Type": headers["Content-Type"]})
    assert (answer.status_code, answer.text) == (200, "success")
    payment = pay.get(f"/v1/payments/{pid}", headers=checkout).json()
    assert (payment["state"], payment["amount_captured"]) == ("captured", "88.00")
    booked = ledger_counts(pg_database.factory)
    again = pay.post("/v1/notifications/alipay", content=body, headers={"Content-Type": headers["Content-Type"]})
    assert (again.status_code, again.text) == (200, "success")
    assert ledger_counts(pg_database.factory) == booked
    statuses = [status for status, _ in _rows(pg_database)]
    assert statuses == ["applied", "duplicate"]


def test_a_forged_notification_is_refused_and_the_rail_is_asked(pay: TestClient, checkout: dict[str, str],
                                                                inbox: Inbox, simulators: dict[str, Any],
                                                                pg_database: Database) -> None:
    pid, _reference = _waiting_sale(pay, checkout, simulators)
    headers, body = inbox.wait_for(b"TRADE_SUCCESS")
    forged = body.replace(b"total_amount=88.00", b"total_amount=1.00")
    assert forged != body
    before = ledger_counts(pg_database.factory)
    answer = pay.post("/v1/notifications/alipay", content=forged, headers={"Content-Type": headers["Content-Type"]})
    assert answer.text == "fail"
    assert _rows(pg_database) == [("rejected", None)]
    with pg_database.factory() as session:
        stored = session.execute(text("SELECT body, error_code FROM rail_notifications")).one()
    assert bytes(stored[0]) == forged
    assert stored[1] == "rail_signature_invalid"
    # The forged body said 1.00; the rail, asked directly, says 88.00 was paid.
    payment = pay.get(f"/v1/payments/{pid}", headers=checkout).json()
    assert (payment["state"], payment["amount_captured"]) == ("captured", "88.00")
    assert ledger_counts(pg_database.factory)[0] == before[0] + 2
    assert pay.post("/v1/notifications/alipay", content=body,
                    headers={"Content-Type": headers["Content-Type"]}).text == "success"
    assert [s for s, _ in _rows(pg_database)] == ["rejected", "ignored"]


def test_unknown_rail_notifications_are_refused(pay: TestClient) -> None:
    response = pay.post("/v1/notifications/swift", content=b"x=1")
    assert response.status_code == 422
    assert response.json()["code"] == "rail_not_configured"
