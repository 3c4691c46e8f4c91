"""Asynchronous notifications: Alipay's retry schedule against a merchant endpoint that
fails first, and what each kind of event means once verified."""

from __future__ import annotations

import base64
import time
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from adapters.alipay import AlipayRail, plugin
from adapters.alipay.codec import beijing_now, format_time
from adapters.alipay.signing import generate_key, notification_content, private_pem, public_pem
from adapters.alipay.sim_delivery import MAX_DELIVERIES, RETRY_SCHEDULE
from adapters.base import (
    AuthorizeRequest,
    CaptureRequest,
    FxDetail,
    Notification,
    RefundRequest,
    SignatureInvalid,
    TxnStatus,
    VoidRequest,
)
from adapters.testing import new_reference

from .conftest import Receiver, StartSim, wallet

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def fields(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))


def test_retries_until_success_then_stops(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim(notify_time_scale="0.0001")
    receiver.failures = 3
    request = AuthorizeRequest(reference=new_reference("ntf"), amount=18_00, currency="CNY",
                               method=sim.approving_method(), capture=True, notify_url=receiver.url)
    started = time.monotonic()
    rail.authorize(request)
    bodies = receiver.wait_for(4)
    elapsed = time.monotonic() - started
    # Deliveries 2-4 follow Alipay's 4m, 10m, 10m waits, scaled by 1e-4.
    assert elapsed >= sum(RETRY_SCHEDULE[:3]) * 0.0001
    notifications = [rail.parse_notification(FORM, body) for body in bodies]
    assert {n.notification_id for n in notifications} == {notifications[0].notification_id}
    assert all(n.reference == request.reference and n.status is TxnStatus.CAPTURED for n in notifications)
    assert len({fields(body)["notify_time"] + fields(body)["sign"] for body in bodies}) >= 1
    time.sleep(RETRY_SCHEDULE[3] * 0.0001 * 2)  # well past when a fifth delivery would have come
    assert len(receiver.received()) == 4
    attempts = sim.notification_attempts(notifications[0].notification_id)
    assert [(a.number, a.accepted) for a in attempts] == [(1, False), (2, False), (3, False), (4, True)]


def test_gives_up_after_eight_deliveries(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim(notify_time_scale="0.00001")
    receiver.failures = 100
    rail.authorize(AuthorizeRequest(reference=new_reference("ntf"), amount=19_00, currency="CNY",
                                    method=sim.approving_method(), capture=True, notify_url=receiver.url))
    receiver.wait_for(MAX_DELIVERIES)
    time.sleep(0.3)
    assert len(receiver.received()) == MAX_DELIVERIES == 8
    assert not any(a.accepted for a in sim.notification_attempts())


def test_unreachable_endpoint_is_retried(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim(notify_time_scale="0.0001", notify_max_attempts="2")
    rail.authorize(AuthorizeRequest(reference=new_reference("ntf"), amount=20_00, currency="CNY",
                                    method=sim.approving_method(), capture=True,
                                    notify_url="http://127.0.0.1:9/closed"))
    deadline = time.monotonic() + 5
    while len(sim.notification_attempts()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(a.number, a.status_code) for a in sim.notification_attempts()] == [(1, 0), (2, 0)]


def collect(receiver: Receiver, rail: AlipayRail, count: int) -> list[Notification]:
    return [rail.parse_notification(FORM, body) for body in receiver.wait_for(count)]


def test_preauthorization_events(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim()
    reference = new_reference("auth")
    auth = rail.authorize(AuthorizeRequest(reference=reference, amount=90_00, currency="CNY",
                                           method=sim.approving_method(), notify_url=receiver.url))
    capture_ref = new_reference("cap")
    rail.capture(CaptureRequest(reference=capture_ref, rail_reference=auth.rail_reference, amount=40_00,
                                currency="CNY", final=False))
    void_ref = new_reference("void")
    rail.void(VoidRequest(reference=void_ref, rail_reference=auth.rail_reference, amount=50_00, currency="CNY"))
    by_type = {n.raw["notify_type"]: n for n in collect(receiver, rail, 3)}
    assert (by_type["fund_auth_freeze"].status, by_type["fund_auth_freeze"].reference,
            by_type["fund_auth_freeze"].rail_reference) == (TxnStatus.AUTHORIZED, reference, auth.rail_reference)
    assert (by_type["trade_status_sync"].status, by_type["trade_status_sync"].reference,
            by_type["trade_status_sync"].amount) == (TxnStatus.CAPTURED, capture_ref, 40_00)
    assert (by_type["fund_auth_unfreeze"].status, by_type["fund_auth_unfreeze"].reference,
            by_type["fund_auth_unfreeze"].amount) == (TxnStatus.CAPTURED, void_ref, 50_00)


def test_unfreezing_everything_notifies_a_void(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim()
    auth = rail.authorize(AuthorizeRequest(reference=new_reference("auth"), amount=25_00, currency="CNY",
                                           method=sim.approving_method(), notify_url=receiver.url))
    rail.void(VoidRequest(reference=new_reference("void"), rail_reference=auth.rail_reference, amount=25_00,
                          currency="CNY"))
    statuses = {n.raw["notify_type"]: n.status for n in collect(receiver, rail, 2)}
    assert statuses == {"fund_auth_freeze": TxnStatus.AUTHORIZED, "fund_auth_unfreeze": TxnStatus.VOIDED}


def test_trade_lifecycle_events(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim()
    waiting = AuthorizeRequest(reference=new_reference("wait"), amount=30_00, currency="CNY",
                               method=wallet("2088102100000004"), capture=True, notify_url=receiver.url)
    trade = rail.authorize(waiting)
    sim.confirm_payment(waiting.reference)
    refund_ref = new_reference("ref")
    rail.refund(RefundRequest(reference=refund_ref, rail_reference=trade.rail_reference, amount=10_00,
                              currency="CNY"))
    sim.finish_trade(waiting.reference)
    events = collect(receiver, rail, 4)
    assert [(n.raw["trade_status"], n.status, n.reference, n.amount) for n in events] == [
        ("WAIT_BUYER_PAY", TxnStatus.PENDING, waiting.reference, 30_00),
        ("TRADE_SUCCESS", TxnStatus.CAPTURED, waiting.reference, 30_00),
        ("TRADE_SUCCESS", TxnStatus.REFUNDED, refund_ref, 10_00),
        ("TRADE_FINISHED", TxnStatus.CAPTURED, waiting.reference, 30_00),
    ]
    assert len({n.notification_id for n in events}) == 4
    assert all(n.occurred_at is not None and n.occurred_at.utcoffset() is not None for n in events)


def test_full_refund_closes_the_trade(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim()
    sold = rail.authorize(AuthorizeRequest(reference=new_reference("sale"), amount=45_00, currency="CNY",
                                           method=sim.approving_method(), capture=True, notify_url=receiver.url))
    rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=sold.rail_reference, amount=45_00,
                              currency="CNY"))
    _, refunded = collect(receiver, rail, 2)
    assert (refunded.raw["trade_status"], refunded.status, refunded.amount) == ("TRADE_CLOSED", TxnStatus.REFUNDED,
                                                                                45_00)


def test_forex_notification_carries_the_rate(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim(rates="RUB=0.08,USD=7")
    rail.authorize(AuthorizeRequest(reference=new_reference("fx"), amount=500_00, currency="RUB",
                                    method=sim.approving_method(), capture=True, notify_url=receiver.url))
    [notification] = collect(receiver, rail, 1)
    assert (notification.currency, notification.amount) == ("RUB", 500_00)
    assert notification.fx == FxDetail(rate=Decimal("0.08"), settlement_amount=40_00, settlement_currency="CNY")


def test_gbk_notification_is_verified_over_its_gbk_bytes() -> None:
    alipay_key = generate_key()
    rail = plugin.create_rail({"gateway_url": "http://127.0.0.1:9/gateway.do", "app_id": "2021000000000001",
                               "app_private_key": private_pem(generate_key()),
                               "alipay_public_key": public_pem(alipay_key.public_key())})
    event = {"notify_type": "trade_status_sync", "notify_id": "gbk-1", "notify_time": format_time(beijing_now()),
             "app_id": "2021000000000001", "charset": "gbk", "trade_no": "t1", "out_trade_no": "o1",
             "trade_status": "TRADE_SUCCESS", "total_amount": "8.00", "subject": "丝绸围巾"}
    signature = alipay_key.sign(notification_content(event).encode("gbk"), padding.PKCS1v15(), hashes.SHA256())
    body = urlencode({**event, "sign_type": "RSA2", "sign": base64.b64encode(signature).decode()}, encoding="gbk")
    notification = rail.parse_notification(FORM, body.encode("ascii"))
    assert notification.raw["subject"] == "丝绸围巾"
    utf8_body = urlencode({**event, "sign_type": "RSA2", "sign": base64.b64encode(signature).decode()})
    with pytest.raises(SignatureInvalid):
        rail.parse_notification(FORM, utf8_body.replace("charset=gbk", "charset=utf-8").encode("ascii"))
    rail.close()
