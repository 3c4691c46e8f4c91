"""Everything that must be refused, each with its own error: answers signed by an
untrusted, mismatched, expired or merchant certificate; our own signature refused by
the gateway; truncated and oversized messages; tampered and replayed notifications."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from adapters.base import Malformed, ReplayedNotification, SignatureInvalid
from adapters.testing import new_reference
from adapters.unionpay import UnionPayRail, UnionPaySimulator, plugin
from adapters.unionpay.constants import BEIJING
from adapters.unionpay.messages import encode_form, format_txn_time
from adapters.unionpay.pki import issue

from .conftest import card_request

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def started(request: pytest.FixtureRequest) -> Iterator[tuple[UnionPaySimulator, UnionPayRail]]:
    options: dict[str, str] = getattr(request, "param", {})
    simulator = plugin.create_simulator(**options)
    simulator.start()
    rail = plugin.create_rail(simulator.adapter_config())
    yield simulator, rail
    rail.close()
    simulator.stop()


@pytest.mark.parametrize(("started", "reason"), [
    ({"signing": "wrong-key"}, "does not chain to a trusted root"),
    ({"signing": "mismatched-key"}, "signature does not match"),
    ({"signing": "expired-cert"}, "validity dates"),
    ({"signing": "foreign-org"}, "does not name the gateway"),
], indirect=["started"], ids=["untrusted-root", "mismatched-key", "expired", "merchant-cert"])
def test_untrusted_answers_are_refused(started: tuple[UnionPaySimulator, UnionPayRail], reason: str) -> None:
    simulator, rail = started
    with pytest.raises(SignatureInvalid, match=reason):
        rail.authorize(card_request(simulator, 10_00))


def test_the_gateway_refuses_a_request_signed_with_another_key(
        started: tuple[UnionPaySimulator, UnionPayRail]) -> None:
    simulator, _ = started
    impostor = issue(simulator.keys.root, "impostor", "Marketplace merchant")
    config = {**simulator.adapter_config(), "merchant_key_pem": impostor.key_pem()}
    rail = plugin.create_rail(config)
    with pytest.raises(SignatureInvalid) as refused:
        rail.authorize(card_request(simulator, 10_00))
    assert refused.value.detail["respCode"] == "11"
    rail.close()


@pytest.mark.parametrize(("started", "reason"), [
    ({"answer_fault": "truncated"}, "truncated or incomplete"),
    ({"answer_fault": "oversized"}, "exceeds"),
], indirect=["started"], ids=["truncated", "oversized"])
def test_truncated_and_oversized_answers_are_malformed(
        started: tuple[UnionPaySimulator, UnionPayRail], reason: str) -> None:
    simulator, rail = started
    with pytest.raises(Malformed, match=reason):
        rail.authorize(card_request(simulator, 10_00))


def test_the_gateway_refuses_an_oversized_request(gateway: UnionPaySimulator) -> None:
    answer = httpx.post(gateway.adapter_config()["back_trans_url"], content=b"a=" + b"x" * 100_000,
                        headers=FORM)
    assert answer.status_code == 413


def _notification(gateway: UnionPaySimulator, **changes: str) -> dict[str, str]:
    fields = {"accessType": "0", "bizType": "000301", "currencyCode": "156", "merId": gateway.mer_id,
              "orderId": new_reference("up"), "queryId": "202601051030001234567", "respCode": "00",
              "respMsg": "成功", "settleAmt": "1000", "settleCurrencyCode": "156", "settleDate": "0105",
              "traceNo": "123456", "traceTime": "0105103000", "txnAmt": "1000", "txnSubType": "01",
              "txnTime": format_txn_time(dt.datetime.now(BEIJING)), "txnType": "01"}
    fields.update(changes)
    return gateway.sign(fields)


def test_a_genuine_notification_parses(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    form = _notification(gateway)
    notification = rail.parse_notification(FORM, encode_form(form))
    assert notification.notification_id == "202601051030001234567:01"
    assert (notification.reference, notification.amount, notification.currency) == (form["orderId"], 1000, "CNY")


def test_a_tampered_notification_is_refused(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    form = _notification(gateway)
    with pytest.raises(SignatureInvalid, match="does not match"):
        rail.parse_notification(FORM, encode_form({**form, "txnAmt": "100000"}))
    signature = form["signature"]
    changed = signature[:10] + ("B" if signature[10] != "B" else "C") + signature[11:]
    with pytest.raises(SignatureInvalid, match="does not match"):
        rail.parse_notification(FORM, encode_form({**form, "signature": changed}))


def test_a_replayed_notification_is_refused(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    two_days_ago = format_txn_time(dt.datetime.now(BEIJING) - dt.timedelta(days=2))
    with pytest.raises(ReplayedNotification):
        rail.parse_notification(FORM, encode_form(_notification(gateway, txnTime=two_days_ago)))
    tight = plugin.create_rail({**gateway.adapter_config(), "notification_max_age_s": "60"})
    ten_minutes_ago = format_txn_time(dt.datetime.now(BEIJING) - dt.timedelta(minutes=10))
    with pytest.raises(ReplayedNotification):
        tight.parse_notification(FORM, encode_form(_notification(gateway, txnTime=ten_minutes_ago)))
    tight.close()
    tomorrow = format_txn_time(dt.datetime.now(BEIJING) + dt.timedelta(days=1))
    with pytest.raises(Malformed, match="future"):
        rail.parse_notification(FORM, encode_form(_notification(gateway, txnTime=tomorrow)))


def test_truncated_and_oversized_notifications_are_malformed(
        gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    body = encode_form(_notification(gateway))
    with pytest.raises(Malformed, match="truncated or incomplete"):
        rail.parse_notification(FORM, body[: len(body) // 2])
    with pytest.raises(Malformed, match="more than"):
        rail.parse_notification(FORM, body + b"&pad=" + b"x" * 70_000)
    with pytest.raises(Malformed, match="not a form"):
        rail.parse_notification({"Content-Type": "application/json"}, body)
    with pytest.raises(Malformed, match="repeats"):
        rail.parse_notification(FORM, body + b"&txnAmt=1")


def test_a_notification_for_another_merchant_is_refused(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    with pytest.raises(Malformed, match="not ours"):
        rail.parse_notification(FORM, encode_form(_notification(gateway, merId="777290058119999")))


def test_an_unsigned_notification_is_refused(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    form = _notification(gateway)
    del form["signature"]
    with pytest.raises(SignatureInvalid, match="not signed"):
        rail.parse_notification(FORM, encode_form(form))
