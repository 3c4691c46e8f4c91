"""Interoperability with python-alipay-sdk (import name ``alipay``): the SDK's client
talks to the simulator, the SDK verifies what the simulator signs, and our code
verifies what the SDK signs. Keys are generated at test time."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.alipay import AlipayRail, AlipaySimulator, plugin
from adapters.alipay.codec import beijing_now, format_time
from adapters.alipay.signing import generate_key, private_pem, public_pem, sign_params, signing_content
from adapters.base import AuthorizeRequest, TxnStatus
from adapters.testing import new_reference

from .conftest import Receiver, StartSim


def sdk_client(config: dict[str, str]) -> AliPay:
    client = AliPay(appid=config["app_id"], app_notify_url=None, app_private_key_string=config["app_private_key"],
                    alipay_public_key_string=config["alipay_public_key"], sign_type="RSA2")
    # The SDK only knows Alipay's production and sandbox URLs; point it at the simulator.
    client._gateway = config["gateway_url"]
    return client


@pytest.fixture(scope="module")
def alipay_key() -> rsa.RSAPrivateKey:
    """Stands in for Alipay's own key when the SDK plays the gateway's side."""
    return generate_key()


def test_sdk_client_pays_queries_and_refunds_through_the_simulator(sim: AlipaySimulator, rail: AlipayRail) -> None:
    sdk = sdk_client(sim.adapter_config())
    reference = new_reference("sdk")
    # The SDK stamps local time; Alipay (and the simulator) expect Beijing time.
    now = format_time(beijing_now())
    paid = sdk.server_api("alipay.trade.pay", {
        "out_trade_no": reference, "total_amount": "88.80", "subject": "sdk", "buyer_id": "2088102100000001",
        "product_code": "FACE_TO_FACE_PAYMENT"}, timestamp=now)
    assert paid["code"] == "10000"
    queried = sdk.server_api("alipay.trade.query", {"out_trade_no": reference}, timestamp=now)
    assert queried["trade_status"] == "TRADE_SUCCESS"
    assert queried["trade_no"] == paid["trade_no"]
    refunded = sdk.server_api("alipay.trade.refund", {
        "trade_no": paid["trade_no"], "refund_amount": "8.80", "out_request_no": reference + "r"}, timestamp=now)
    assert refunded["refund_fee"] == "8.80"
    # Our rail sees the same trade the SDK made.
    assert sim.transaction_status(reference) is TxnStatus.REFUNDED


def test_sdk_verifies_a_signed_refusal_from_the_simulator(sim: AlipaySimulator) -> None:
    sdk = sdk_client(sim.adapter_config())
    refused = sdk.server_api("alipay.trade.pay", {
        "out_trade_no": new_reference("sdk"), "total_amount": "10.00", "subject": "sdk",
        "buyer_id": "2088102100000002"}, timestamp=format_time(beijing_now()))
    assert refused["code"] == "40004"
    assert refused["sub_code"] == "ACQ.BUYER_BALANCE_NOT_ENOUGH"


def test_sdk_verifies_simulator_notifications(start_sim: StartSim, receiver: Receiver) -> None:
    simulator, client = start_sim()
    client.authorize(AuthorizeRequest(reference=new_reference("ntf"), amount=12_00, currency="CNY",
                                      method=simulator.approving_method(), capture=True, notify_url=receiver.url))
    body = receiver.wait_for(1)[0]
    fields = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    signature = fields.pop("sign")
    sdk = sdk_client(simulator.adapter_config())
    assert sdk.verify(dict(fields), signature)
    assert not sdk.verify({**fields, "total_amount": "13.00"}, signature)


def test_our_rail_accepts_notifications_the_sdk_signs(sim: AlipaySimulator, alipay_key: rsa.RSAPrivateKey) -> None:
    config = {**sim.adapter_config(), "alipay_public_key": public_pem(alipay_key.public_key())}
    ours = plugin.create_rail(config)
    gateway_side = AliPay(appid=config["app_id"], app_private_key_string=private_pem(alipay_key),
                          alipay_public_key_string=public_pem(alipay_key.public_key()), sign_type="RSA2")
    now = format_time(beijing_now())
    event = {"notify_type": "trade_status_sync", "notify_id": "sdk-notify-1", "notify_time": now,
             "app_id": config["app_id"], "charset": "utf-8", "version": "1.0", "trade_no": "2026010522000001",
             "out_trade_no": "ord-1", "trade_status": "TRADE_SUCCESS", "total_amount": "99.50",
             "gmt_payment": now, "subject": "茶叶 & 瓷器"}
    body = (gateway_side.sign_data(dict(event)) + "&sign_type=RSA2").encode("ascii")
    notification = ours.parse_notification({"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert notification.notification_id == "sdk-notify-1"
    assert notification.status is TxnStatus.CAPTURED
    assert (notification.amount, notification.currency) == (99_50, "CNY")
    assert notification.raw["subject"] == "茶叶 & 瓷器"
    ours.close()


@pytest.fixture(scope="module")
def sdk_signer(alipay_key: rsa.RSAPrivateKey) -> AliPay:
    return AliPay(appid="2021", app_private_key_string=private_pem(alipay_key),
                  alipay_public_key_string=public_pem(alipay_key.public_key()), sign_type="RSA2")


@settings(max_examples=15, deadline=None)
@given(params=st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10).filter(lambda k: k != "sign"),
    st.text(min_size=1, max_size=30).filter(lambda v: "\x00" not in v), min_size=1, max_size=8))
def test_our_request_signature_equals_the_sdks(params: dict[str, str], alipay_key: rsa.RSAPrivateKey,
                                               sdk_signer: AliPay) -> None:
    sdk = sdk_signer
    # PKCS #1 v1.5 signatures are deterministic: the same content gives the same bytes.
    assert sign_params(params, alipay_key)["sign"] == sdk._sign(signing_content(params))
    signed_by_sdk = dict(parse_qsl(sdk.sign_data(dict(params)), keep_blank_values=True))
    assert sign_params(params, alipay_key)["sign"] == signed_by_sdk["sign"]
