"""Alipay's RSA2 signatures: request signing, response and notification verification.

The rules, from Alipay's open-platform signing guide:

* **Signing content of a request**: every parameter except ``sign`` and those with an
  empty value, sorted by key (byte order), joined as ``k=v`` pairs with ``&``. Values
  are raw, never URL-encoded. ``sign_type`` *is* part of a request's content.
* **Notifications** are verified the same way after dropping both ``sign`` and
  ``sign_type``.
* **Responses** are signed over the exact JSON text of the ``<method>_response``
  object as it appears in the body. The verifier must cut that text out of the body,
  never re-serialise the parsed object: key order, spacing and escapes all count.
* **RSA2** is SHA256withRSA (PKCS #1 v1.5), the signature base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.base import Malformed, SignatureInvalid

from .codec import RAIL

SIGN_TYPE = "RSA2"
MIN_KEY_BITS = 2048

_REQUEST_EXCLUDED = frozenset({"sign"})
_NOTIFICATION_EXCLUDED = frozenset({"sign", "sign_type"})


def signing_content(params: Mapping[str, str], exclude: Iterable[str] = _REQUEST_EXCLUDED) -> str:
    """The string Alipay signs: sorted ``k=v`` pairs joined with ``&``, without the
    excluded keys and without empty values."""
    skip = frozenset(exclude)
    return "&".join(f"{key}={params[key]}" for key in sorted(params)
                    if key not in skip and params[key] != "")


def notification_content(params: Mapping[str, str]) -> str:
    """Signing content of an asynchronous notification (``sign`` and ``sign_type`` dropped)."""
    return signing_content(params, _NOTIFICATION_EXCLUDED)


def sign(content: str, key: rsa.RSAPrivateKey) -> str:
    """SHA256withRSA over the UTF-8 bytes of ``content``, base64 without line breaks."""
    signature = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(content: str, signature: str, key: rsa.RSAPublicKey, encoding: str = "utf-8") -> bool:
    """True when ``signature`` (base64) is ``key``'s RSA2 signature of ``content`` in
    ``encoding`` (the message's ``charset``: Alipay signs the bytes it sends). A
    signature that is not even valid base64 is simply not valid."""
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    try:
        key.verify(raw, content.encode(encoding), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, UnicodeEncodeError):
        return False
    return True


def sign_params(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """``params`` plus their ``sign``: what a merchant posts to the gateway."""
    signed = dict(params)
    signed["sign"] = sign(signing_content(params), key)
    return signed


def verify_params(params: Mapping[str, str], key: rsa.RSAPublicKey, *, notification: bool) -> bool:
    """Check the ``sign`` inside ``params`` (a request, or a notification when
    ``notification``). A missing ``sign`` is not valid."""
    signature = params.get("sign", "")
    if not signature:
        return False
    content = notification_content(params) if notification else signing_content(params)
    return verify(content, signature, key)


# -- responses --------------------------------------------------------------------


def response_key(method: str) -> str:
    """``alipay.trade.pay`` -> ``alipay_trade_pay_response``."""
    return method.replace(".", "_") + "_response"


def split_response(body: str) -> dict[str, tuple[str, object]]:
    """The top-level members of a JSON object as ``{key: (raw JSON text, value)}``.

    The raw text is the exact slice of ``body``: what Alipay signed. Raises
    :class:`Malformed` when ``body`` is not one JSON object or repeats a key (a
    repeated key would let a forger hide a second response behind the signed one).
    """
    # Numbers become Decimal so that no amount ever passes through float.
    decoder = json.JSONDecoder(parse_float=Decimal)
    members: dict[str, tuple[str, object]] = {}
    end = len(body)
    i = _skip_ws(body, 0)
    if i >= end or body[i] != "{":
        raise Malformed("response is not a JSON object", rail=RAIL)
    i = _skip_ws(body, i + 1)
    if i < end and body[i] == "}":
        return members
    while True:
        try:
            key, i = decoder.raw_decode(body, i)
            i = _skip_ws(body, i)
            if i >= end or body[i] != ":" or not isinstance(key, str):
                raise Malformed("response member is not 'key: value'", rail=RAIL)
            start = _skip_ws(body, i + 1)
            value, i = decoder.raw_decode(body, start)
        except json.JSONDecodeError as exc:
            raise Malformed(f"response is not valid JSON at character {exc.pos}", rail=RAIL) from exc
        if key in members:
            raise Malformed(f"response repeats the member {key!r}", rail=RAIL)
        members[key] = (body[start:i], value)
        i = _skip_ws(body, i)
        if i < end and body[i] == ",":
            i = _skip_ws(body, i + 1)
            continue
        if i < end and body[i] == "}" and _skip_ws(body, i + 1) == end:
            return members
        raise Malformed("response JSON is truncated or has trailing data", rail=RAIL)


def verified_response(body: str, method: str, key: rsa.RSAPublicKey) -> dict[str, object]:
    """The ``<method>_response`` object of ``body`` after checking its signature.

    Raises :class:`Malformed` when the body is not a JSON object holding that member
    (or a gateway ``error_response``), and :class:`SignatureInvalid` when ``sign`` is
    missing or does not match the exact text of the member.
    """
    members = split_response(body)
    name = response_key(method)
    if name not in members:
        name = "error_response"
    if name not in members:
        raise Malformed(f"response has no {response_key(method)} member", rail=RAIL)
    raw, value = members[name]
    if not isinstance(value, dict):
        raise Malformed(f"{name} is not a JSON object", rail=RAIL)
    signature = members.get("sign", ("", ""))[1]
    if not isinstance(signature, str) or not signature:
        raise SignatureInvalid(f"{name} is not signed", rail=RAIL)
    if not verify(raw, signature, key):
        raise SignatureInvalid(f"signature of {name} does not verify with Alipay's public key", rail=RAIL)
    return value


def _skip_ws(text: str, i: int) -> int:
    end = len(text)
    while i < end and text[i] in " \t\r\n":
        i += 1
    return i


# -- keys -------------------------------------------------------------------------


def generate_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=MIN_KEY_BITS)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM, or from the bare base64 DER Alipay's key tool
    prints (PKCS #8 or PKCS #1)."""
    data = text.strip().encode("ascii")
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(base64.b64decode(data, validate=True), password=None)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise Malformed(f"app private key is not a readable RSA key: {exc}", rail=RAIL) from exc
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_KEY_BITS:
        raise Malformed(f"app private key must be RSA of at least {MIN_KEY_BITS} bits", rail=RAIL)
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM or bare base64 DER (SubjectPublicKeyInfo)."""
    data = text.strip().encode("ascii")
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(base64.b64decode(data, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise Malformed(f"Alipay public key is not a readable RSA key: {exc}", rail=RAIL) from exc
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise Malformed(f"Alipay public key must be RSA of at least {MIN_KEY_BITS} bits", rail=RAIL)
    return key
