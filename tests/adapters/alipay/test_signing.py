"""RSA2 signing as Alipay specifies it, and the exact-text rule for responses."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.alipay.signing import (
    generate_key,
    notification_content,
    sign,
    sign_params,
    signing_content,
    split_response,
    verified_response,
    verify,
    verify_params,
)
from adapters.base import Malformed, SignatureInvalid

KEYS = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="&="),
               min_size=1, max_size=12)
VALUES = st.text(min_size=1, max_size=40).filter(lambda v: "\x00" not in v)
PARAMS = st.dictionaries(KEYS.filter(lambda k: k != "sign"), VALUES, min_size=1, max_size=12)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return generate_key()


def test_content_sorts_drops_sign_and_empty_values_and_keeps_raw_values() -> None:
    params = {"timestamp": "2026-01-05 10:00:00", "app_id": "2021", "sign": "x", "notify_url": "",
              "biz_content": '{"subject":"a&b=c 中"}', "method": "alipay.trade.pay", "sign_type": "RSA2"}
    assert signing_content(params) == (
        'app_id=2021&biz_content={"subject":"a&b=c 中"}&method=alipay.trade.pay&sign_type=RSA2'
        "&timestamp=2026-01-05 10:00:00")
    assert notification_content(params) == (
        'app_id=2021&biz_content={"subject":"a&b=c 中"}&method=alipay.trade.pay&timestamp=2026-01-05 10:00:00')


def test_keys_sort_by_code_point_as_alipay_sorts_bytes() -> None:
    assert signing_content({"b": "1", "B": "2", "a_b": "3", "aa": "4"}) == "B=2&a_b=3&aa=4&b=1"


@settings(max_examples=40, deadline=None)
@given(params=PARAMS)
def test_sign_verify_round_trip(params: dict[str, str], key: rsa.RSAPrivateKey,
                                other_key: rsa.RSAPrivateKey) -> None:
    signed = sign_params(params, key)
    assert verify_params(signed, key.public_key(), notification=False)
    assert not verify_params(signed, other_key.public_key(), notification=False)
    name = sorted(params)[0]
    tampered = {**signed, name: signed[name] + "x"}
    assert not verify_params(tampered, key.public_key(), notification=False)


def test_notification_signature_ignores_sign_type(key: rsa.RSAPrivateKey) -> None:
    params = {"notify_id": "abc", "trade_status": "TRADE_SUCCESS"}
    signature = sign(notification_content(params), key)
    assert verify_params({**params, "sign_type": "RSA2", "sign": signature}, key.public_key(), notification=True)
    assert not verify_params({**params, "sign_type": "RSA2", "sign": signature}, key.public_key(),
                             notification=False)


@pytest.mark.parametrize("garbage", ["", "not base64!", "QUJD", "=" * 8])
def test_malformed_signatures_are_simply_invalid(garbage: str, key: rsa.RSAPrivateKey) -> None:
    assert not verify("content", garbage, key.public_key())


def _body(key: rsa.RSAPrivateKey, raw: str, name: str = "alipay_trade_query_response") -> str:
    return f'{{"{name}":{raw},"sign":"{sign(raw, key)}"}}'


def test_response_is_verified_over_its_exact_text(key: rsa.RSAPrivateKey) -> None:
    # Escapes, spacing and a brace inside a string: re-serialising would change the text.
    raw = '{"code":"10000", "msg":"Success","subject":"\\u4e2d{x}","url":"a\\/b"}'
    body = " " + _body(key, raw) + "\n"
    response = verified_response(body, "alipay.trade.query", key.public_key())
    assert response["subject"] == "中{x}"
    assert response["url"] == "a/b"
    assert json.dumps(response, ensure_ascii=False) != raw


def test_response_signed_by_another_key_is_refused(key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(SignatureInvalid):
        verified_response(_body(other_key, '{"code":"10000"}'), "alipay.trade.query", key.public_key())


def test_unsigned_response_is_refused(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(SignatureInvalid):
        verified_response('{"alipay_trade_query_response":{"code":"10000"}}', "alipay.trade.query",
                          key.public_key())


def test_error_response_is_read_when_the_method_member_is_absent(key: rsa.RSAPrivateKey) -> None:
    body = _body(key, '{"code":"40002","sub_code":"isv.invalid-app-id"}', name="error_response")
    assert verified_response(body, "alipay.trade.query", key.public_key())["code"] == "40002"


@pytest.mark.parametrize("body", [
    "",
    "[]",
    '{"alipay_trade_query_response":{"code":"10000"}',
    '{"alipay_trade_query_response":{"code":"10000"},"sign":"x"} trailing',
    '{"alipay_trade_query_response":{"code":"10000"},"alipay_trade_query_response":{"code":"40004"},"sign":"x"}',
    '{"other_response":{},"sign":"x"}',
    '{"alipay_trade_query_response":"10000","sign":"x"}',
])
def test_malformed_response_bodies(body: str, key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(Malformed):
        verified_response(body, "alipay.trade.query", key.public_key())


def test_split_response_keeps_each_member_text() -> None:
    members = split_response('{ "a" : {"x": [1, 2]} , "sign":"s" }')
    assert members["a"][0] == '{"x": [1, 2]}'
    assert members["sign"] == ('"s"', "s")
