"""``settlement webhooks``: the endpoint lifecycle, the logs, replay and retry-due."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from settlement.cli import build_app
from settlement.cli.common import console
from settlement.webhooks import verify_signature
from tests.conftest import Database
from tests.webhooks.conftest import Receiver
from tests.webhooks.factories import attempts, captured, deliveries, emit_committed


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tables wide enough that URLs are not cut short.
    monkeypatch.setattr(console, "width", 300)


def run(database: Database, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(build_app(), ["--database-url", database.url, "webhooks", *args])
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def test_endpoint_lifecycle_logs_replay_and_retry_due(db: Database, receiver: Receiver,
                                                      webhook_settings: Callable[..., None]) -> None:
    webhook_settings(retry_schedule="[0]", max_attempts=4)
    out = run(db, "create", receiver.url, "-e", "payment.*", "-e", "refund.*", "-d", "marketplace")
    assert "endpoint 1 (payment.*, refund.*)" in out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    assert secret not in run(db, "list")
    assert receiver.url in run(db, "list")

    receiver.fail_first(500)
    emit_committed(db.factory, "payment.captured", captured(), "payment:1:captured")
    out = run(db, "deliveries", "1")
    assert "pending" in out
    assert "#1 500" in out
    assert "1 attempted: 1 delivered, 0 not" in run(db, "retry-due")
    assert "0 attempted" in run(db, "retry-due")
    assert "delivered" in run(db, "deliveries", "1", "--status", "delivered")

    event_id = deliveries(db.factory)[0].event_id
    public = run(db, "events", "--type", "payment.captured").split("evt_")[1].split()[0]
    assert "queued" in run(db, "replay", "1", f"evt_{public}")
    assert len(receiver.wait_for(3)) == 3
    assert [d.event_id for d in deliveries(db.factory)] == [event_id, event_id]
    verify_signature(secret, receiver.requests[2].headers["Settlement-Timestamp"], receiver.requests[2].body,
                     receiver.requests[2].headers["Settlement-Signature"])

    rotated = run(db, "rotate-secret", "1", "--keep-previous", "0").strip().splitlines()[-1]
    assert rotated.startswith("whsec_")
    assert rotated != secret
    assert "disabled" in run(db, "disable", "1")
    assert receiver.url not in run(db, "list")
    assert receiver.url in run(db, "list", "--all")
    assert len(attempts(db.factory)) == 3


def test_refusals_print_their_code(db: Database) -> None:
    assert "error [invalid_endpoint_url]" in run(db, "create", "ftp://example.com/x", "-e", "*", ok=False)
    assert "error [invalid_event_type]" in run(db, "create", "https://example.com/x", "-e", "invoice.*", ok=False)
    assert "error [webhook_endpoint_not_found]" in run(db, "disable", "42", ok=False)
    assert "error [invalid_webhook_description]" in run(db, "create", "https://example.com/x", "-e", "*",
                                                         "-d", "x" * 501, ok=False)
    run(db, "create", "https://example.com/x", "-e", "*")
    assert "error [webhook_event_not_found]" in run(db, "replay", "1", "evt_nope", ok=False)
