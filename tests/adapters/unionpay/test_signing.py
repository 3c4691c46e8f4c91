"""signMethod 01 against an independent computation, and the signer trust rules."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import SignatureInvalid
from adapters.unionpay.constants import GATEWAY_ORGANIZATION
from adapters.unionpay.pki import Identity, issue, make_root
from adapters.unionpay.signing import (
    SignerTrust,
    canonical_string,
    certificate_pem,
    sign_form,
    signature_matches,
)

KNOWN_FORM = {
    "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "txnType": "01", "txnSubType": "01",
    "bizType": "000301", "channelType": "07", "accessType": "0", "merId": "777290058110048",
    "orderId": "ORDER20260105001", "txnTime": "20260105103000", "txnAmt": "15000",
    "currencyCode": "156", "backUrl": "https://shop.example/notify", "reqReserved": "",
    "customerInfo": "{customerNm=张三&phoneNo=13552535506}", "signature": "to be replaced",
}


@pytest.fixture(scope="module")
def pki() -> tuple[Identity, Identity, Identity]:
    root = make_root("Test Root", "Test CA")
    gateway = issue(root, "gateway signing", GATEWAY_ORGANIZATION)
    merchant = issue(root, "merchant", "A merchant")
    return root, gateway, merchant


def test_canonical_string_is_sorted_raw_and_drops_signature_and_empty_values() -> None:
    assert canonical_string(KNOWN_FORM) == (
        "accessType=0&backUrl=https://shop.example/notify&bizType=000301&channelType=07"
        "&currencyCode=156&customerInfo={customerNm=张三&phoneNo=13552535506}&encoding=UTF-8"
        "&merId=777290058110048&orderId=ORDER20260105001&signMethod=01&txnAmt=15000"
        "&txnSubType=01&txnTime=20260105103000&txnType=01&version=5.1.0")


def test_sign_method_01_matches_an_independent_computation(pki: tuple[Identity, Identity, Identity]) -> None:
    _, gateway, _ = pki
    pairs = sorted((k, v) for k, v in KNOWN_FORM.items() if k != "signature" and v)
    text = "&".join(f"{k}={v}" for k, v in pairs)
    hex_digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert len(hex_digest) == 64
    assert hex_digest == hex_digest.lower()
    expected = base64.b64encode(
        gateway.key.sign(hex_digest.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())).decode()

    signature = sign_form(KNOWN_FORM, gateway.key)

    # PKCS #1 v1.5 is deterministic, so the two computations must agree byte for byte.
    assert signature == expected
    public_key = gateway.cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(base64.b64decode(signature), hex_digest.encode("ascii"), padding.PKCS1v15(),
                      hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public_key.verify(base64.b64decode(signature), text.encode("utf-8"), padding.PKCS1v15(),
                          hashes.SHA256())


_keys = st.text(alphabet=st.characters(min_codepoint=0x30, max_codepoint=0x7A), min_size=1, max_size=12)
_values = st.text(max_size=30).filter(lambda v: "\x00" not in v)


@settings(max_examples=60, deadline=None)
@given(form=st.dictionaries(_keys, _values, min_size=1, max_size=12), extra=st.text(min_size=1, max_size=5))
def test_sign_verify_round_trip_and_any_change_breaks_it(
        pki: tuple[Identity, Identity, Identity], form: dict[str, str], extra: str) -> None:
    _, gateway, _ = pki
    public_key = gateway.cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    signed = {**form, "signature": sign_form(form, gateway.key)}
    assert signature_matches(signed, public_key)
    key = sorted(k for k in form if k != "signature")[0] if any(k != "signature" for k in form) else None
    if key is not None:
        assert not signature_matches({**signed, key: form[key] + extra}, public_key)
    assert not signature_matches({**signed, "~added": extra}, public_key)


def _signed_by(identity: Identity, cert_pem: str | None = None) -> dict[str, str]:
    form = {"txnType": "01", "respCode": "00", "signPubKeyCert": cert_pem or certificate_pem(identity.cert)}
    form["signature"] = sign_form(form, identity.key)
    return form


def test_trust_accepts_the_gateway_certificate(pki: tuple[Identity, Identity, Identity]) -> None:
    root, gateway, _ = pki
    SignerTrust([root.cert], GATEWAY_ORGANIZATION).verify_form(_signed_by(gateway))


def test_trust_refuses_a_certificate_from_another_root(pki: tuple[Identity, Identity, Identity]) -> None:
    root, _, _ = pki
    rogue_root = make_root("Test Root", "Test CA")
    rogue = issue(rogue_root, "gateway signing", GATEWAY_ORGANIZATION)
    with pytest.raises(SignatureInvalid, match="does not chain to a trusted root"):
        SignerTrust([root.cert], GATEWAY_ORGANIZATION).verify_form(_signed_by(rogue))


def test_trust_refuses_a_merchant_certificate_signing_as_the_gateway(
        pki: tuple[Identity, Identity, Identity]) -> None:
    root, _, merchant = pki
    with pytest.raises(SignatureInvalid, match="does not name the gateway"):
        SignerTrust([root.cert], GATEWAY_ORGANIZATION).verify_form(_signed_by(merchant))


def test_trust_refuses_an_expired_certificate(pki: tuple[Identity, Identity, Identity]) -> None:
    root, gateway, _ = pki
    with pytest.raises(SignatureInvalid, match="validity"):
        SignerTrust([root.cert], GATEWAY_ORGANIZATION).verify_form(
            _signed_by(gateway), at=dt.datetime.now(dt.UTC) + dt.timedelta(days=800))


def test_trust_refuses_the_root_itself_and_unreadable_certificates(
        pki: tuple[Identity, Identity, Identity]) -> None:
    root, gateway, _ = pki
    trust = SignerTrust([root.cert], "")
    with pytest.raises(SignatureInvalid, match="CA certificate"):
        trust.verify_form(_signed_by(root))
    with pytest.raises(SignatureInvalid, match="readable"):
        trust.verify_form(_signed_by(gateway, cert_pem="-----BEGIN CERTIFICATE-----\nAAAA\n"))


def test_trust_refuses_a_tampered_or_missing_signature(pki: tuple[Identity, Identity, Identity]) -> None:
    root, gateway, _ = pki
    trust = SignerTrust([root.cert], GATEWAY_ORGANIZATION)
    form = _signed_by(gateway)
    with pytest.raises(SignatureInvalid, match="does not match"):
        trust.verify_form({**form, "respCode": "05"})
    flipped = base64.b64decode(form["signature"])
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    with pytest.raises(SignatureInvalid, match="does not match"):
        trust.verify_form({**form, "signature": base64.b64encode(flipped).decode()})
    with pytest.raises(SignatureInvalid, match="not signed"):
        trust.verify_form({k: v for k, v in form.items() if k != "signature"})
