"""Backend notifications delivered over HTTP to a local receiver, with retries."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from adapters.base import (
    AuthorizeRequest,
    CaptureRequest,
    Notification,
    QueryRequest,
    TxnStatus,
)
from adapters.testing import new_reference
from adapters.unionpay import UnionPayRail, UnionPaySimulator, plugin

from .conftest import CNY, Receiver, card_request


@pytest.fixture
def flaky() -> Iterator[tuple[UnionPaySimulator, UnionPayRail, Receiver]]:
    """A receiver that answers 503 twice before it accepts anything."""
    simulator = plugin.create_simulator(notify_attempts="5", notify_first_delay="0.02")
    simulator.start()
    receiver = Receiver(fail_first=2)
    receiver.start()
    rail = plugin.create_rail({**simulator.adapter_config(), "notify_url": receiver.url})
    receiver.rail = rail
    yield simulator, rail, receiver
    rail.close()
    receiver.stop()
    simulator.stop()


def test_notification_is_retried_until_acknowledged(
        flaky: tuple[UnionPaySimulator, UnionPayRail, Receiver]) -> None:
    simulator, rail, receiver = flaky
    request = card_request(simulator, 31_00, notify_url=receiver.url)
    result = rail.authorize(request)

    receiver.wait_for(lambda got: any(n.reference == request.reference for n in got))
    delivery = next(d for d in simulator.deliveries if request.reference.encode() in d.body)
    # The receiver has the notification before the simulator has read its answer.
    deadline = time.monotonic() + 5
    while not delivery.delivered and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (delivery.attempts, delivery.statuses, delivery.delivered) == (3, [503, 503, 200], True)
    assert len(set(receiver.bodies)) == 1, "every retry carries the same signed notification"
    notification = receiver.accepted[0]
    assert notification.status is TxnStatus.AUTHORIZED
    assert (notification.amount, notification.currency) == (31_00, CNY)
    assert notification.rail_reference == result.rail_reference
    assert notification.notification_id == f"{result.rail_reference}:02"
    assert notification.raw["traceNo"]
    assert len(notification.raw["settleDate"]) == 4
    assert rail.parse_notification({}, receiver.bodies[0]).notification_id == notification.notification_id


def test_retries_stop_after_the_configured_attempts() -> None:
    simulator = plugin.create_simulator(notify_attempts="3", notify_first_delay="0.01")
    simulator.start()
    receiver = Receiver(fail_first=100)
    receiver.start()
    try:
        rail = plugin.create_rail(simulator.adapter_config())
        rail.authorize(card_request(simulator, 5_00, notify_url=receiver.url))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(receiver.bodies) < 3:
            time.sleep(0.02)
        time.sleep(0.2)
        assert len(receiver.bodies) == 3
        assert simulator.deliveries[0].delivered is False
        rail.close()
    finally:
        receiver.stop()
        simulator.stop()


def test_follow_ups_notify_the_configured_back_url(
        gateway: UnionPaySimulator, rail: UnionPayRail, receiver: Receiver) -> None:
    held = rail.authorize(card_request(gateway, 40_00))
    capture = CaptureRequest(new_reference("cap"), held.rail_reference, 40_00, CNY)
    rail.capture(capture)

    def captured(got: list[Notification]) -> bool:
        return any(n.reference == capture.reference for n in got)

    receiver.wait_for(captured)
    notification = next(n for n in receiver.accepted if n.reference == capture.reference)
    assert notification.status is TxnStatus.CAPTURED
    assert notification.rail_reference == held.rail_reference
    assert notification.raw["txnType"] == "03"


def test_an_accepted_transaction_resolves_by_notification(
        gateway: UnionPaySimulator, rail: UnionPayRail, receiver: Receiver) -> None:
    request = AuthorizeRequest(new_reference("up"), 20_05, CNY, gateway.approving_method(), capture=True,
                               notify_url=receiver.url)
    pending = rail.authorize(request)
    assert (pending.status, pending.response_code) == (TxnStatus.PENDING, "05")
    receiver.wait_for(lambda got: any(n.reference == request.reference for n in got))
    notification = next(n for n in receiver.accepted if n.reference == request.reference)
    assert notification.status is TxnStatus.CAPTURED
    assert notification.amount == 20_05
    assert rail.query(QueryRequest(request.reference)).status is TxnStatus.CAPTURED


def test_ack_tells_the_gateway_to_stop_or_retry(gateway: UnionPaySimulator, rail: UnionPayRail,
                                               receiver: Receiver) -> None:
    request = card_request(gateway, 9_00, notify_url=receiver.url)
    rail.authorize(request)
    receiver.wait_for(lambda got: any(n.reference == request.reference for n in got))
    notification = next(n for n in receiver.accepted if n.reference == request.reference)
    ack = rail.notification_ack(notification)
    assert (ack.status_code, ack.body) == (200, b"ok")
    assert rail.notification_ack(None).status_code != 200
