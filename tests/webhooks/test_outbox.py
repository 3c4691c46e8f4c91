"""The outbox: one event per key, deliveries only after commit, nothing on rollback,
only to active subscribed endpoints, and a receiver's failure never touches the
emitting transaction."""

from __future__ import annotations

import datetime as dt
import enum
import threading
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from settlement.db import unit_of_work
from settlement.ledger import AccountSpec, AccountType, EntrySpec, Ledger, credit, debit
from settlement.webhooks import emit
from settlement.webhooks.errors import InvalidEventData, InvalidEventType, InvalidWebhookKey
from settlement.webhooks.models import WebhookDelivery, WebhookEvent
from settlement.webhooks.service import check_patterns, subscribed
from settlement.webhooks.service.endpoints import disable_endpoint
from settlement.webhooks.service.outbox import plain_json
from tests.conftest import Database
from tests.webhooks.conftest import Receiver
from tests.webhooks.factories import captured, count, deliveries, emit_committed, endpoint


def test_emitting_a_key_twice_records_one_event_and_delivers_it_once(db: Database, receiver: Receiver) -> None:
    endpoint(db.factory, receiver.url)
    with unit_of_work(db.factory) as session:
        emit(session, "payment.captured", captured(), key="payment:1:captured")
        emit(session, "payment.captured", captured(), key="payment:1:captured")
    emit_committed(db.factory, "payment.captured", captured(), "payment:1:captured")
    emit_committed(db.factory, "payment.captured", captured(amount="1.00"), "payment:1:captured")
    assert count(db.factory, WebhookEvent) == 1
    assert count(db.factory, WebhookDelivery) == 1
    assert len(receiver.requests) == 1
    with db.factory() as session:
        stored = session.scalars(select(WebhookEvent)).one()
    assert stored.data["amount"] == "1500.00"
    assert stored.type == "payment.captured"


def test_nothing_is_recorded_or_sent_when_the_emitting_transaction_rolls_back(db: Database,
                                                                             receiver: Receiver) -> None:
    endpoint(db.factory, receiver.url)

    def payment_that_fails_after_emitting() -> None:
        with unit_of_work(db.factory) as session:
            emit(session, "payment.captured", captured(), key="payment:1:captured")
            raise RuntimeError("payment failed later in the same transaction")

    with pytest.raises(RuntimeError, match="payment failed later"):
        payment_that_fails_after_emitting()
    assert count(db.factory, WebhookEvent) == 0
    assert count(db.factory, WebhookDelivery) == 0
    assert receiver.requests == []
    # The key is free again: the retried payment emits and delivers.
    emit_committed(db.factory, "payment.captured", captured(), "payment:1:captured")
    assert len(receiver.wait_for(1)) == 1


def test_nothing_is_sent_before_the_commit(db: Database, receiver: Receiver) -> None:
    endpoint(db.factory, receiver.url)
    with unit_of_work(db.factory) as session:
        emit(session, "payment.authorized", captured(), key="k1")
        session.flush()
        assert receiver.requests == []
    assert len(receiver.requests) == 1


def test_only_active_subscribed_endpoints_get_deliveries(db: Database, receiver: Receiver) -> None:
    payments, _ = endpoint(db.factory, receiver.url + "/payments", ["payment.*"])
    refunds, _ = endpoint(db.factory, receiver.url + "/refunds", ["refund.succeeded"])
    everything, _ = endpoint(db.factory, receiver.url + "/all", ["*"])
    disabled, _ = endpoint(db.factory, receiver.url + "/disabled", ["*"])
    with unit_of_work(db.factory) as session:
        disable_endpoint(session, disabled)
    emit_committed(db.factory, "payment.voided", {"payment_id": "pay_1"}, "void-1")
    emit_committed(db.factory, "refund.succeeded", {"refund_id": "re_1", "amount": "10.00", "currency": "CNY"}, "re-1")
    emit_committed(db.factory, "payout.paid", {"payout_id": "po_1"}, "po-1")
    routed = sorted((d.endpoint_id, d.event_id) for d in deliveries(db.factory))
    with db.factory() as session:
        ids = dict(session.execute(select(WebhookEvent.key, WebhookEvent.id)).all())
    assert routed == sorted([(payments, ids["void-1"]), (everything, ids["void-1"]), (refunds, ids["re-1"]),
                             (everything, ids["re-1"]), (everything, ids["po-1"])])
    assert sorted(r.path for r in receiver.requests) == ["/hooks/all"] * 3 + ["/hooks/payments", "/hooks/refunds"]


def test_a_failing_receiver_never_affects_the_payment_transaction(db: Database, receiver: Receiver) -> None:
    receiver.default = 500
    endpoint(db.factory, receiver.url)
    endpoint(db.factory, "http://127.0.0.1:1/nobody-listens")
    with unit_of_work(db.factory) as session:
        ledger = Ledger(session)
        ledger.create_account(AccountSpec("bank:RUB", "RUB", AccountType.ASSET))
        ledger.create_account(AccountSpec("merchant:1:RUB", "RUB", AccountType.LIABILITY))
    with unit_of_work(db.factory) as session:
        Ledger(session).post(EntrySpec("capture-1", [debit("bank:RUB", 150_000, "RUB"),
                                                     credit("merchant:1:RUB", 150_000, "RUB")]))
        emit(session, "payment.captured", captured(), key="payment:1:captured")
    with unit_of_work(db.factory) as session:
        assert Ledger(session).balance("merchant:1:RUB").balance == 150_000
    assert len(receiver.requests) == 1
    assert [(d.status, d.attempts, d.last_status_code) for d in deliveries(db.factory)] == [
        ("pending", 1, 500), ("pending", 1, None)]


def test_concurrent_emits_of_one_key_record_one_event(db: Database) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with unit_of_work(db.factory) as session:
                barrier.wait()
                emit(session, "payment.captured", captured(), key="payment:9:captured")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(db.factory, WebhookEvent) == 1


def test_events_are_immutable_in_the_database(db: Database) -> None:
    emit_committed(db.factory, "payment.failed", {"payment_id": "pay_1", "reason": "declined"}, "fail-1")
    for statement in ("UPDATE webhook_events SET data = '{}'", "DELETE FROM webhook_events"):
        with pytest.raises(DBAPIError, match="immutable"), unit_of_work(db.factory) as session:
            session.execute(text(statement))
    with db.factory() as session:
        assert session.scalars(select(WebhookEvent.data)).one() == {"payment_id": "pay_1", "reason": "declined"}


@pytest.mark.parametrize(("event_type", "data", "key", "error", "code"), [
    ("payment", {}, "k", InvalidEventType, "invalid_event_type"),
    ("invoice.paid", {}, "k", InvalidEventType, "invalid_event_type"),
    ("payment.*", {}, "k", InvalidEventType, "invalid_event_type"),
    ("Payment.Captured", {}, "k", InvalidEventType, "invalid_event_type"),
    ("payment.captured", {"amount": 15.5}, "k", InvalidEventData, "invalid_event_data"),
    ("payment.captured", {"amount": Decimal("15.50")}, "k", InvalidEventData, "invalid_event_data"),
    ("payment.captured", {"lines": [{"amount": 1.0}]}, "k", InvalidEventData, "invalid_event_data"),
    ("payment.captured", {"at": dt.datetime(2026, 1, 1)}, "k", InvalidEventData, "invalid_event_data"),
    ("payment.captured", {1: "x"}, "k", InvalidEventData, "invalid_event_data"),
    ("payment.captured", {"raw": b"bytes"}, "k", InvalidEventData, "invalid_event_data"),
    ("payment.captured", {}, "", InvalidWebhookKey, "invalid_webhook_key"),
    ("payment.captured", {}, "k" * 201, InvalidWebhookKey, "invalid_webhook_key"),
])
def test_bad_input_is_refused_and_records_nothing(db: Database, event_type: str, data: dict[Any, Any], key: str,
                                                  error: type[Exception], code: str) -> None:
    with pytest.raises(error) as excinfo, unit_of_work(db.factory) as session:
        emit(session, event_type, data, key=key)
    assert getattr(excinfo.value, "code", None) == code
    assert count(db.factory, WebhookEvent) == 0


class State(enum.StrEnum):
    CAPTURED = "captured"


def test_aware_datetimes_become_iso_text_and_nesting_is_kept(db: Database) -> None:
    at = dt.datetime(2026, 3, 1, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    data = {"captured_at": at, "split": {"commission": "15.00", "seller": "1485.00"}, "tags": ("a", "b"),
            "count": 2, "final": True, "note": None, "state": State.CAPTURED}
    emit_committed(db.factory, "payment.captured", data, "k")
    with db.factory() as session:
        stored = session.scalars(select(WebhookEvent.data)).one()
    assert stored == {"captured_at": "2026-03-01T12:00:00+00:00", "split": {"commission": "15.00", "seller": "1485.00"},
                      "tags": ["a", "b"], "count": 2, "final": True, "note": None, "state": "captured"}
    assert type(plain_json({"state": State.CAPTURED})["state"]) is str


def test_subscription_patterns() -> None:
    assert check_patterns(["payment.*", "payment.*", "refund.failed"]) == ["payment.*", "refund.failed"]
    assert subscribed(["payment.*"], "payment.captured")
    assert subscribed(["*"], "payout.failed")
    assert subscribed(["refund.failed"], "refund.failed")
    assert not subscribed(["refund.failed"], "refund.succeeded")
    assert not subscribed(["payment.*"], "payout.paid")
    for bad in (["payments.*"], ["payment"], ["*.captured"], ["payment.**"], [], [""], ["payment.captured "]):
        with pytest.raises(InvalidEventType):
            check_patterns(bad)


def test_emit_also_works_on_sqlite(sqlite_database: Database, receiver: Receiver) -> None:
    from settlement.tasks.base import use_session_factory

    use_session_factory(sqlite_database.factory)
    try:
        endpoint(sqlite_database.factory, receiver.url, ["payout.*"])
        for _ in range(2):
            emit_committed(sqlite_database.factory, "payout.paid", {"payout_id": "po_1"}, "po-1")
        assert count(sqlite_database.factory, WebhookEvent) == 1
        assert [d.status for d in deliveries(sqlite_database.factory)] == ["delivered"]
    finally:
        use_session_factory(None)
