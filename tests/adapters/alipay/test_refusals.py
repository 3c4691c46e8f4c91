"""Everything the rail must refuse, each with its specific error: forged, tampered,
cut or oversized answers and notifications, replays, and requests the gateway
cannot verify."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest

from adapters.alipay import AlipayRail, AlipaySimulator, plugin
from adapters.alipay.codec import beijing_now, format_time
from adapters.alipay.signing import generate_key, notification_content, private_pem, public_pem, sign
from adapters.alipay.transport import GatewayRejected
from adapters.base import (
    AuthorizeRequest,
    Malformed,
    QueryRequest,
    ReplayedNotification,
    SignatureInvalid,
    TxnStatus,
)
from adapters.testing import new_reference

from .conftest import Receiver, StartSim

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def sale(sim: AlipaySimulator, amount: int = 10_00, notify_url: str | None = None) -> AuthorizeRequest:
    return AuthorizeRequest(reference=new_reference("sec"), amount=amount, currency="CNY",
                            method=sim.approving_method(), capture=True, notify_url=notify_url)


@pytest.mark.parametrize(("fault", "error"), [
    ("tamper", SignatureInvalid),
    ("truncate", Malformed),
    ("oversize", Malformed),
])
def test_damaged_answers_are_refused(start_sim: StartSim, fault: str, error: type[Exception]) -> None:
    sim, rail = start_sim(response_fault=fault)
    with pytest.raises(error) as refused:
        rail.authorize(sale(sim))
    if fault == "oversize":
        assert "exceeds" in str(refused.value)


def test_answers_signed_with_another_key_are_refused(start_sim: StartSim) -> None:
    _, rail = start_sim(signing="wrong-key")
    with pytest.raises(SignatureInvalid):
        rail.query(QueryRequest(reference=new_reference()))


def test_request_signed_with_a_key_the_gateway_does_not_hold(sim: AlipaySimulator) -> None:
    stranger = plugin.create_rail({**sim.adapter_config(), "app_private_key": private_pem(generate_key())})
    request = sale(sim)
    with pytest.raises(SignatureInvalid) as refused:
        stranger.authorize(request)
    assert refused.value.detail["sub_code"] == "isv.invalid-signature"
    assert sim.transaction_status(request.reference) is TxnStatus.NOT_FOUND
    stranger.close()


def test_request_with_a_stale_timestamp_is_rejected(sim: AlipaySimulator) -> None:
    late = AlipayRail.from_config(sim.adapter_config(), clock=lambda: beijing_now() - dt.timedelta(hours=1))
    with pytest.raises(GatewayRejected) as refused:
        late.query(QueryRequest(reference=new_reference()))
    assert refused.value.detail["sub_code"] == "isv.invalid-timestamp"
    late.close()


def test_unreachable_gateway_is_unavailable(sim: AlipaySimulator) -> None:
    from adapters.base import RailUnavailable

    closed = plugin.create_rail({**sim.adapter_config(), "gateway_url": "http://127.0.0.1:9/gateway.do",
                                 "timeout_seconds": "2"})
    with pytest.raises(RailUnavailable):
        closed.query(QueryRequest(reference=new_reference()))
    closed.close()


# -- notifications ----------------------------------------------------------------


@pytest.fixture
def delivered(start_sim: StartSim, receiver: Receiver) -> tuple[AlipaySimulator, AlipayRail, bytes]:
    """A genuine notification body, as the simulator delivered it."""
    sim, rail = start_sim()
    rail.authorize(sale(sim, 35_00, notify_url=receiver.url))
    return sim, rail, receiver.wait_for(1)[0]


def test_genuine_notification_is_accepted(delivered: tuple[AlipaySimulator, AlipayRail, bytes]) -> None:
    _, rail, body = delivered
    notification = rail.parse_notification(FORM, body)
    assert (notification.status, notification.amount) == (TxnStatus.CAPTURED, 35_00)
    ack = rail.notification_ack(notification)
    assert (ack.status_code, ack.body) == (200, b"success")
    assert rail.notification_ack(None).body != b"success"


def test_tampered_notification(delivered: tuple[AlipaySimulator, AlipayRail, bytes]) -> None:
    _, rail, body = delivered
    forged = body.replace(b"total_amount=35.00", b"total_amount=3500.00")
    assert forged != body
    with pytest.raises(SignatureInvalid):
        rail.parse_notification(FORM, forged)


def test_truncated_notification(delivered: tuple[AlipaySimulator, AlipayRail, bytes]) -> None:
    _, rail, body = delivered
    signature_at = body.index(b"&sign=")
    with pytest.raises(Malformed):  # cut before the signature: nothing to verify
        rail.parse_notification(FORM, body[:signature_at])
    with pytest.raises(SignatureInvalid):  # cut inside the signature
        rail.parse_notification(FORM, body[:signature_at + 40])


def test_oversized_notification(delivered: tuple[AlipaySimulator, AlipayRail, bytes]) -> None:
    _, rail, body = delivered
    with pytest.raises(Malformed):
        rail.parse_notification(FORM, body + b"&body=" + b"x" * (64 << 10))


def test_notification_that_is_not_a_form(delivered: tuple[AlipaySimulator, AlipayRail, bytes]) -> None:
    _, rail, body = delivered
    with pytest.raises(Malformed):
        rail.parse_notification({"Content-Type": "application/json"}, body)
    with pytest.raises(Malformed):
        rail.parse_notification(FORM, b"\xff\xfe" + body)


def test_replayed_notification(delivered: tuple[AlipaySimulator, AlipayRail, bytes]) -> None:
    sim, _, body = delivered
    config = {**sim.adapter_config(), "notify_max_age_seconds": "600"}
    later = AlipayRail.from_config(config, clock=lambda: beijing_now() + dt.timedelta(minutes=11))
    with pytest.raises(ReplayedNotification) as replayed:
        later.parse_notification(FORM, body)
    assert replayed.value.detail["notify_id"]
    earlier = AlipayRail.from_config(config, clock=lambda: beijing_now() - dt.timedelta(hours=1))
    with pytest.raises(Malformed):
        earlier.parse_notification(FORM, body)
    later.close()
    earlier.close()


def test_notifications_signed_with_another_key(start_sim: StartSim, receiver: Receiver) -> None:
    sim, rail = start_sim(signing="wrong-key")
    trusted = AlipayRail.from_config(sim.adapter_config())
    with pytest.raises(SignatureInvalid):
        rail.authorize(sale(sim, notify_url=receiver.url))  # the answer already fails...
    with pytest.raises(SignatureInvalid):  # ...and so does the notification that follows
        trusted.parse_notification(FORM, receiver.wait_for(1)[0])
    trusted.close()


def test_notification_for_another_app() -> None:
    alipay_key = generate_key()
    config = {"gateway_url": "http://127.0.0.1:9/gateway.do", "app_id": "2021000000000001",
              "app_private_key": private_pem(generate_key()),
              "alipay_public_key": public_pem(alipay_key.public_key())}
    rail = plugin.create_rail(config)
    event = {"notify_type": "trade_status_sync", "notify_id": "n1", "notify_time": format_time(beijing_now()),
             "app_id": "2021999999999999", "trade_no": "t1", "out_trade_no": "o1", "trade_status": "TRADE_SUCCESS",
             "total_amount": "1.00"}
    body = urlencode({**event, "sign_type": "RSA2", "sign": sign(notification_content(event), alipay_key)})
    with pytest.raises(SignatureInvalid):
        rail.parse_notification(FORM, body.encode("ascii"))
    rail.close()
