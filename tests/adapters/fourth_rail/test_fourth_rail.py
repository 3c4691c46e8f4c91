"""What the conformance suite does not cover for the fourth rail: notifications from
another merchant, unreachable gateway, unsupported operations and the settlement
file's error reporting line by line."""

from __future__ import annotations

import io
import socket

import pytest

from adapters.base import (
    AuthorizeRequest,
    MalformedFile,
    PayoutRequest,
    RailUnavailable,
    RecordError,
    SettlementRecord,
    SignatureInvalid,
    TxnStatus,
    Unsupported,
)
from adapters.testing import new_reference, running
from tests.adapters.fourth_rail import plugin
from tests.adapters.fourth_rail.protocol import FILE_HEADER


def test_notifications_verify_and_parse() -> None:
    with running(plugin) as (sim, rail):
        request = AuthorizeRequest(reference=new_reference(), amount=88_00, currency="HKD",
                                   method=sim.approving_method(), capture=True)
        rail.authorize(request)
        headers, body = sim.notification_for(request.reference)
        notification = rail.parse_notification(headers, body)
        assert (notification.reference, notification.status, notification.amount) == (
            request.reference, TxnStatus.CAPTURED, 88_00)
        assert rail.notification_ack(notification).status_code == 200
        with pytest.raises(SignatureInvalid):
            rail.parse_notification(headers, body.replace(b"8800", b"9900").replace(b"88.00", b"99.00"))
        assert rail.notification_ack(None).status_code == 400


def test_notifications_signed_with_another_merchants_key_are_refused() -> None:
    with running(plugin) as (_, rail), running(plugin) as (other, other_rail):
        request = AuthorizeRequest(reference=new_reference(), amount=10_00, currency="HKD",
                                   method=other.approving_method(), capture=True)
        other_rail.authorize(request)
        headers, body = other.notification_for(request.reference)
        assert other_rail.parse_notification(headers, body).reference == request.reference
        with pytest.raises(SignatureInvalid):
            rail.parse_notification(headers, body)


def test_unreachable_gateway_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rail = plugin.create_rail({"endpoint": f"http://127.0.0.1:{port}", "merchant_id": "m", "secret": "00"})
    request = AuthorizeRequest(reference=new_reference(), amount=1_00, currency="HKD",
                               method=plugin.create_simulator().approving_method())
    with pytest.raises(RailUnavailable):
        rail.authorize(request)


def test_other_currencies_and_payouts_are_unsupported() -> None:
    with running(plugin) as (sim, rail):
        with pytest.raises(Unsupported):
            rail.authorize(AuthorizeRequest(reference=new_reference(), amount=1_00, currency="CNY",
                                            method=sim.approving_method()))
        with pytest.raises(Unsupported):
            rail.payout(PayoutRequest(reference=new_reference(), amount=1_00, currency="HKD",
                                      destination="wallet-1"))


def test_settlement_file_errors() -> None:
    rail = plugin.create_rail({"endpoint": "http://127.0.0.1:9", "merchant_id": "m", "secret": "00"})
    header = ",".join(FILE_HEADER)
    good = "payment,4R1,ref-1,100.00,2.50,97.50,HKD,2024-05-01,2024-05-02"
    text = "\r\n".join([header, good, "payment,4R2,ref-2,1O0.00,0,100.00,HKD,2024-05-01,2024-05-02",
                        "payment,4R3,ref-3,100.00,1.00,97.50,HKD,2024-05-01,2024-05-02",
                        "bonus,4R4,ref-4,1.00,0,1.00,HKD,2024-05-01,2024-05-02", "short,row", good]) + "\r\n"
    stream = io.BytesIO(text.encode())
    items = list(rail.parse_settlement_file(stream))
    assert not stream.closed, "parsing must leave the caller's stream open"
    assert [(i.line_number, i.field) for i in items if isinstance(i, RecordError)] == [
        (3, "gross"), (4, "net"), (5, "type"), (6, "")]
    assert [(i.line_number, i.net) for i in items if isinstance(i, SettlementRecord)] == [(2, 97_50), (7, 97_50)]
    for unusable in (b"", b"a,b,c\r\n", b"\xff\xfe" + header.encode("utf-16-le")):
        with pytest.raises(MalformedFile):
            list(rail.parse_settlement_file(io.BytesIO(unusable)))
