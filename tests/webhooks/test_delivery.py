"""Delivery over real HTTP: signatures, the attempt log, backoff, the attempt cap,
idempotent and concurrent tasks, abandoned attempts, disabled endpoints, rotation."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from collections.abc import Callable

from sqlalchemy import select

from settlement.config import get_settings
from settlement.db import unit_of_work
from settlement.db.types import utcnow
from settlement.tasks.app import get_celery
from settlement.webhooks import emit, verify_signature
from settlement.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from settlement.webhooks.service.delivery import RetryPolicy, claim, deliver_once
from settlement.webhooks.service.endpoints import disable_endpoint, rotate_secret
from tests.conftest import Database
from tests.webhooks.conftest import Receiver
from tests.webhooks.factories import attempts, captured, deliveries, emit_committed, endpoint


def sweep() -> int:
    """One run of the retry sweeper, inline."""
    result: int = get_celery().tasks["settlement.webhooks.retry_due"].delay().get()
    return result


def policy() -> RetryPolicy:
    return RetryPolicy.from_settings(get_settings())


def test_a_receiver_that_fails_then_accepts_gets_signed_retries_and_every_attempt_is_logged(
        db: Database, receiver: Receiver, webhook_settings: Callable[..., None]) -> None:
    webhook_settings(retry_schedule="[0]", max_attempts=5)
    receiver.fail_first(500, 503, 429)
    _, secret = endpoint(db.factory, receiver.url)
    emit_committed(db.factory, "payment.captured", captured(7, "1500.00"), "payment:7:captured")
    assert len(receiver.requests) == 1
    for _ in range(3):
        assert sweep() == 1
    assert sweep() == 0
    requests = receiver.wait_for(4)
    assert [r.answered for r in requests] == [500, 503, 429, 200]
    with db.factory() as session:
        event = session.scalars(select(WebhookEvent)).one()
    for request in requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        verify_signature(secret, headers["settlement-timestamp"], request.body, headers["settlement-signature"])
        assert headers["settlement-event-id"] == event.public_id
        assert headers["settlement-event-type"] == "payment.captured"
        assert headers["content-type"] == "application/json"
    assert len({r.body for r in requests}) == 1
    assert json.loads(requests[0].body) == {"id": event.public_id, "type": "payment.captured",
                                            "created_at": event.created_at.isoformat(), "data": captured(7, "1500.00")}
    [delivery] = deliveries(db.factory)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 200)
    assert delivery.next_attempt_at is None
    assert delivery.finished_at is not None
    log = attempts(db.factory, delivery.id)
    assert [(a.attempt, a.status_code, a.error) for a in log] == [
        (1, 500, "HTTP 500"), (2, 503, "HTTP 503"), (3, 429, "HTTP 429"), (4, 200, None)]
    assert all(a.duration_ms is not None and a.duration_ms >= 0 and a.finished_at is not None for a in log)
    assert [a.next_attempt_at is not None for a in log] == [True, True, True, False]
    assert log[0].response_excerpt == "receiver says no"
    assert log[3].response_excerpt == '{"ok": true}'


def test_backoff_follows_the_schedule_with_bounded_jitter_and_stops_at_the_cap(
        db: Database, receiver: Receiver, webhook_settings: Callable[..., None]) -> None:
    webhook_settings(retry_schedule="[60, 300, 1800]", max_attempts=5, retry_jitter_percent=10)
    receiver.default = 500
    endpoint(db.factory, receiver.url)
    emit_committed(db.factory, "payment.failed", {"payment_id": "pay_1"}, "payment:1:failed")
    [delivery] = deliveries(db.factory)
    rng = random.Random(20)
    # Attempt 1 ran inline at emission; later ones run when due, on a simulated clock.
    clock = delivery.next_attempt_at
    assert clock is not None
    while clock is not None:
        early = clock - dt.timedelta(seconds=1)
        assert deliver_once(db.factory, delivery.id, policy=policy(), clock=lambda at=early: at) is None
        outcome = deliver_once(db.factory, delivery.id, policy=policy(), clock=lambda at=clock: at, rng=rng)
        assert outcome is not None
        clock = outcome.next_attempt_at
    log = attempts(db.factory, delivery.id)
    assert len(log) == 5 == len(receiver.requests)
    waits = [(a.next_attempt_at - a.finished_at).total_seconds() for a in log if a.next_attempt_at and a.finished_at]
    assert len(waits) == 4
    for wait, base in zip(waits, [60, 300, 1800, 1800], strict=True):
        assert base * 0.9 <= wait <= base * 1.1, (wait, base)
    assert len(set(waits[2:])) == 2  # jitter: the repeated 1800 s wait differs
    [final] = deliveries(db.factory)
    assert (final.status, final.attempts, final.next_attempt_at) == ("failed", 5, None)
    far_future = utcnow() + dt.timedelta(days=30)
    assert deliver_once(db.factory, delivery.id, policy=policy(), clock=lambda: far_future) is None
    assert sweep() == 0
    assert len(receiver.requests) == 5


def test_the_sweeper_stops_at_max_attempts(db: Database, receiver: Receiver,
                                           webhook_settings: Callable[..., None]) -> None:
    webhook_settings(retry_schedule="[0]", max_attempts=3)
    receiver.default = 503
    endpoint(db.factory, receiver.url)
    emit_committed(db.factory, "refund.failed", {"refund_id": "re_1"}, "refund:1:failed")
    assert [sweep() for _ in range(3)] == [1, 1, 0]
    assert len(receiver.requests) == 3
    assert [(d.status, d.attempts, d.last_status_code) for d in deliveries(db.factory)] == [("failed", 3, 503)]


def test_timeouts_refused_connections_and_redirects_are_logged_failures(
        db: Database, receiver: Receiver, webhook_settings: Callable[..., None]) -> None:
    webhook_settings(timeout_seconds=1)
    receiver.delay = 1.5
    endpoint(db.factory, receiver.url + "/slow", ["payment.*"])
    endpoint(db.factory, "http://127.0.0.1:1/closed", ["payment.*"])
    emit_committed(db.factory, "payment.authorized", captured(), "a-1")
    receiver.delay = 0
    receiver.fail_first(302)
    endpoint(db.factory, receiver.url + "/moved", ["refund.*"])
    emit_committed(db.factory, "refund.succeeded", {"refund_id": "re_1"}, "r-1")
    slow, closed, moved = (attempts(db.factory, d.id)[0] for d in deliveries(db.factory))
    assert slow.status_code is None
    assert slow.error is not None
    assert "Timeout" in slow.error
    assert slow.duration_ms is not None
    assert 900 <= slow.duration_ms < 1500
    assert closed.status_code is None
    assert closed.error is not None
    assert closed.error.startswith("ConnectError")
    assert (moved.status_code, moved.error) == (302, "HTTP 302")
    assert [r.path for r in receiver.requests if r.path != "/hooks/slow"] == ["/hooks/moved"]
    assert all(d.status == "pending" and d.attempts == 1 for d in deliveries(db.factory))


def test_the_task_does_nothing_for_a_delivered_or_not_yet_due_delivery(db: Database, receiver: Receiver) -> None:
    endpoint(db.factory, receiver.url)
    emit_committed(db.factory, "payment.voided", {"payment_id": "pay_1"}, "v-1")
    [delivery] = deliveries(db.factory)
    deliver = get_celery().tasks["settlement.webhooks.deliver"]
    assert deliver.delay(delivery.id).get() == "skipped"
    assert deliver.delay(10_000).get() == "skipped"
    assert len(receiver.requests) == 1
    assert len(attempts(db.factory)) == 1


def test_two_workers_on_one_due_delivery_send_it_once(db: Database, receiver: Receiver,
                                                     webhook_settings: Callable[..., None]) -> None:
    webhook_settings(retry_schedule="[0]")
    receiver.fail_first(500)
    endpoint(db.factory, receiver.url)
    emit_committed(db.factory, "payout.failed", {"payout_id": "po_1"}, "po-1")
    [delivery] = deliveries(db.factory)
    receiver.delay = 0.3
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def worker() -> None:
        barrier.wait()
        outcomes.append(deliver_once(db.factory, delivery.id, policy=policy()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(receiver.requests) == 2
    assert sum(outcome is not None for outcome in outcomes) == 1
    assert [(a.attempt, a.status_code) for a in attempts(db.factory)] == [(1, 500), (2, 200)]


def test_an_attempt_abandoned_mid_request_is_retried_after_its_lease(db: Database, receiver: Receiver,
                                                                     webhook_settings: Callable[..., None]) -> None:
    webhook_settings(retry_schedule="[0]")
    receiver.fail_first(500)
    endpoint(db.factory, receiver.url)
    emit_committed(db.factory, "payment.captured", captured(), "c-1")
    [delivery] = deliveries(db.factory)
    now = utcnow()
    with unit_of_work(db.factory) as session:  # a worker claims attempt 2, then dies before sending
        assert claim(session, delivery.id, now=now, policy=policy()) is not None
    assert deliver_once(db.factory, delivery.id, policy=policy()) is None  # still leased
    assert sweep() == 0
    later = now + policy().lease + dt.timedelta(seconds=1)
    outcome = deliver_once(db.factory, delivery.id, policy=policy(), clock=lambda: later)
    assert outcome is not None
    assert outcome.status == "delivered"
    assert outcome.attempt == 3
    log = attempts(db.factory, delivery.id)
    assert [(a.attempt, a.status_code, a.finished_at is None) for a in log] == [
        (1, 500, False), (2, None, True), (3, 200, False)]
    assert len(receiver.requests) == 2


def test_disabling_an_endpoint_cancels_its_pending_deliveries(db: Database, receiver: Receiver,
                                                              webhook_settings: Callable[..., None]) -> None:
    webhook_settings(retry_schedule="[0]")
    receiver.default = 500
    endpoint_id, _ = endpoint(db.factory, receiver.url)
    emit_committed(db.factory, "payment.captured", captured(), "c-1")
    with unit_of_work(db.factory) as session:
        disable_endpoint(session, endpoint_id)
        disable_endpoint(session, endpoint_id)
    assert sweep() == 0
    [delivery] = deliveries(db.factory)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("cancelled", 1, None)
    emit_committed(db.factory, "payment.captured", captured(2), "c-2")
    assert len(deliveries(db.factory)) == 1
    assert len(receiver.requests) == 1


def test_a_delivery_queued_before_its_endpoint_was_disabled_is_cancelled_by_the_task(
        db: Database, receiver: Receiver) -> None:
    endpoint_id, _ = endpoint(db.factory, receiver.url)
    with unit_of_work(db.factory) as session:
        emit(session, "payment.captured", captured(), key="c-1")
        # Disabled after the delivery was queued, without going through the service
        # (as a concurrent transaction would look to the task).
        record = session.get_one(WebhookEndpoint, endpoint_id)
        record.active, record.disabled_at = False, utcnow()
    assert [(d.status, d.attempts) for d in deliveries(db.factory)] == [("cancelled", 0)]
    assert receiver.requests == []


def test_after_rotation_deliveries_carry_both_signatures_until_the_grace_period_ends(
        db: Database, receiver: Receiver) -> None:
    endpoint_id, old = endpoint(db.factory, receiver.url)
    with unit_of_work(db.factory) as session:
        _, new = rotate_secret(session, endpoint_id, keep_previous_for=dt.timedelta(hours=1))
    emit_committed(db.factory, "payment.captured", captured(1), "c-1")
    with unit_of_work(db.factory) as session:
        _, newest = rotate_secret(session, endpoint_id, keep_previous_for=dt.timedelta(0))
    emit_committed(db.factory, "payment.captured", captured(2), "c-2")
    first, second = receiver.wait_for(2)
    signature = first.headers["Settlement-Signature"]
    assert signature.count("v1=") == 2
    for secret in (new, old):
        verify_signature(secret, first.headers["Settlement-Timestamp"], first.body, signature)
    assert second.headers["Settlement-Signature"].count("v1=") == 1
    verify_signature(newest, second.headers["Settlement-Timestamp"], second.body,
                     second.headers["Settlement-Signature"])
    assert len({old, new, newest}) == 3


def test_deliveries_are_ordered_by_due_time_in_the_sweeper(db: Database, receiver: Receiver,
                                                           webhook_settings: Callable[..., None]) -> None:
    webhook_settings(retry_schedule="[0]")
    receiver.default = 500
    endpoint(db.factory, receiver.url)
    for n in range(3):
        emit_committed(db.factory, "payment.captured", captured(n), f"c-{n}")
    receiver.default = 200
    assert sweep() == 3
    bodies = [json.loads(r.body)["data"]["payment_id"] for r in receiver.requests[3:]]
    assert bodies == ["pay_0", "pay_1", "pay_2"]
    assert {d.status for d in deliveries(db.factory)} == {"delivered"}
    with db.factory() as session:
        assert session.scalars(select(WebhookDelivery.attempts)).all() == [2, 2, 2]
