"""Signatures, checked against an independent HMAC computed with the standard library."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.webhooks import verify_signature
from settlement.webhooks.errors import SignatureInvalid
from settlement.webhooks.signing import (
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    compute_signature,
    generate_secret,
    signature_header,
    signed_headers,
)

NOW = 1_790_000_000


def reference(secret: str, timestamp: int | str, body: bytes) -> str:
    """What a receiver computes with nothing but the standard library."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def reason(excinfo: pytest.ExceptionInfo[SignatureInvalid]) -> str:
    return str(excinfo.value.detail["reason"])


def test_known_vector() -> None:
    # From `printf '1790000000.{}' | openssl dgst -sha256 -hmac whsec_test`.
    expected = "1c2847ad1f8158a1da978f36627ac1f07f7fd027321ac9ad40bccc06743f8396"
    assert compute_signature("whsec_test", NOW, b"{}") == expected == reference("whsec_test", NOW, b"{}")


@given(secret=st.text(min_size=1, max_size=80), body=st.binary(max_size=2000),
       timestamp=st.integers(min_value=0, max_value=2**40))
def test_signature_equals_the_standard_library_hmac(secret: str, body: bytes, timestamp: int) -> None:
    assert compute_signature(secret, timestamp, body) == reference(secret, timestamp, body)
    verify_signature(secret, str(timestamp), body, f"v1={reference(secret, timestamp, body)}", now=timestamp)


@given(body=st.binary(min_size=1, max_size=500), index=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_changed_byte_is_refused(body: bytes, index: int, flip: int) -> None:
    secret = "whsec_fixed"
    header = signature_header([secret], NOW, body)
    position = index % len(body)
    tampered = body[:position] + bytes([body[position] ^ flip]) + body[position + 1:]
    with pytest.raises(SignatureInvalid) as excinfo:
        verify_signature(secret, NOW, tampered, header, now=NOW)
    assert reason(excinfo) == "no_matching_signature"


def test_headers_of_a_delivery_verify_with_the_secret_and_text_body() -> None:
    secret = generate_secret()
    body = '{"data":{"merchant":"上海商户","amount":"100.00"}}'.encode()
    headers = signed_headers(event_id="evt_1", event_type="payment.captured", secrets_in_use=[secret],
                             timestamp=NOW, body=body)
    assert headers[HEADER_SIGNATURE] == f"v1={reference(secret, NOW, body)}"
    verify_signature(secret, headers[HEADER_TIMESTAMP], body, headers[HEADER_SIGNATURE], now=NOW)
    verify_signature(secret, headers[HEADER_TIMESTAMP], body.decode(), headers[HEADER_SIGNATURE],
                     now=dt.datetime.fromtimestamp(NOW + 10, dt.UTC))
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    assert generate_secret() != secret


def test_wrong_secret_is_refused() -> None:
    header = signature_header([generate_secret()], NOW, b"{}")
    with pytest.raises(SignatureInvalid) as excinfo:
        verify_signature(generate_secret(), NOW, b"{}", header, now=NOW)
    assert reason(excinfo) == "no_matching_signature"


def test_two_signatures_during_rotation_either_secret_verifies() -> None:
    new, old = generate_secret(), generate_secret()
    header = signature_header([new, old], NOW, b"{}")
    assert header == f"v1={reference(new, NOW, b'{}')}, v1={reference(old, NOW, b'{}')}"
    verify_signature(new, NOW, b"{}", header, now=NOW)
    verify_signature(old, NOW, b"{}", header, now=NOW)
    with pytest.raises(SignatureInvalid):
        verify_signature(generate_secret(), NOW, b"{}", header, now=NOW)


@pytest.mark.parametrize(("skew", "ok"), [(0, True), (300, True), (-300, True), (301, False), (-301, False),
                                          (86_400, False)])
def test_timestamps_outside_five_minutes_are_refused(skew: int, ok: bool) -> None:
    secret = generate_secret()
    header = signature_header([secret], NOW, b"{}")
    if ok:
        verify_signature(secret, NOW, b"{}", header, now=NOW + skew)
        return
    with pytest.raises(SignatureInvalid) as excinfo:
        verify_signature(secret, NOW, b"{}", header, now=NOW + skew)
    assert reason(excinfo) == "stale_timestamp"


def test_a_replayed_request_with_a_fresh_timestamp_but_old_signature_is_refused() -> None:
    secret = generate_secret()
    header = signature_header([secret], NOW, b"{}")
    with pytest.raises(SignatureInvalid) as excinfo:
        verify_signature(secret, NOW + 1000, b"{}", header, now=NOW + 1000)
    assert reason(excinfo) == "no_matching_signature"


@pytest.mark.parametrize(("timestamp", "header", "expected"), [
    ("", "v1=00", "malformed_timestamp"),
    ("12.5", "v1=00", "malformed_timestamp"),
    ("-5", "v1=00", "malformed_timestamp"),
    ("١٢٣", "v1=00", "malformed_timestamp"),
    (str(NOW), "", "malformed_header"),
    (str(NOW), "sha256=abc", "malformed_header"),
    (str(NOW), "v1=", "no_matching_signature"),
    (str(NOW), "v1=é", "no_matching_signature"),
])
def test_malformed_input_is_refused_with_its_reason(timestamp: str, header: str, expected: str) -> None:
    with pytest.raises(SignatureInvalid) as excinfo:
        verify_signature("whsec_x", timestamp, b"{}", header, now=NOW)
    assert reason(excinfo) == expected
    assert excinfo.value.code == "webhook_signature_invalid"


def test_unknown_schemes_are_ignored_and_upper_case_hex_accepted() -> None:
    secret = generate_secret()
    digest = reference(secret, NOW, b"{}")
    verify_signature(secret, NOW, b"{}", f"v0=deadbeef,v2=abc v1={digest.upper()}", now=NOW)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify_signature("whsec_x", NOW, b"{}", "v1=00", now=dt.datetime(2026, 1, 1))


def test_the_readme_receiver_snippet_accepts_our_deliveries_and_refuses_tampering() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Webhooks", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), namespace)  # the documented receiver code, run as written
    verify = namespace["verify"]
    new, old = generate_secret(), generate_secret()
    now = int(time.time())
    body = b'{"id":"evt_1","type":"payment.captured","data":{"amount":"1.00"}}'
    header = signature_header([new, old], now, body)
    assert verify(new, str(now), body, header)
    assert verify(old, str(now), body, header)
    assert not verify(generate_secret(), str(now), body, header)
    assert not verify(new, str(now), body + b" ", header)
    assert not verify(new, str(now - 301), body, signature_header([new], now - 301, body))
