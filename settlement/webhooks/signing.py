"""Webhook signatures: HMAC-SHA256 over ``f"{timestamp}.{body}"``.

Every delivery carries these headers:

* ``Settlement-Event-Id``: the event's id (``evt_...``), the same on every retry
  and replay; receivers deduplicate on it.
* ``Settlement-Event-Type``: ``payment.captured`` and so on.
* ``Settlement-Timestamp``: Unix time in seconds when this attempt was signed.
* ``Settlement-Signature``: ``v1=<hex>``, the lowercase hex HMAC-SHA256 of the
  timestamp, a dot and the raw body bytes, keyed with the endpoint's secret (its
  UTF-8 bytes, ``whsec_`` prefix included). While a rotated-out secret is still in
  its grace period the header carries two signatures, ``v1=<new>, v1=<old>``.

A receiver recomputes the HMAC over the raw body it received (before any JSON
parsing), accepts the request if any ``v1`` value matches in constant time, and
rejects a timestamp more than five minutes away from its clock, so a captured
request cannot be replayed later. :func:`verify_signature` does exactly that.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from settlement.webhooks.errors import SignatureInvalid

SECRET_PREFIX = "whsec_"  # noqa: S105 - a marker that tells secrets apart, not a secret
SCHEME = "v1"
#: How far a timestamp may be from the receiver's clock, seconds.
DEFAULT_TOLERANCE_SECONDS = 300

HEADER_EVENT_ID = "Settlement-Event-Id"
HEADER_EVENT_TYPE = "Settlement-Event-Type"
HEADER_TIMESTAMP = "Settlement-Timestamp"
HEADER_SIGNATURE = "Settlement-Signature"

_SEPARATOR = re.compile(r"[,\s]+")


def generate_secret() -> str:
    """A new endpoint secret: ``whsec_`` and 32 random bytes in URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def compute_signature(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """Lowercase hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with ``secret``."""
    mac = crypto_hmac.HMAC(secret.encode(), hashes.SHA256())
    mac.update(f"{timestamp}.".encode())
    mac.update(_as_bytes(body))
    return mac.finalize().hex()


def signature_header(secrets_in_use: list[str], timestamp: int, body: bytes) -> str:
    """The ``Settlement-Signature`` value: one ``v1=`` signature per secret."""
    return ", ".join(f"{SCHEME}={compute_signature(s, timestamp, body)}" for s in secrets_in_use)


def signed_headers(*, event_id: str, event_type: str, secrets_in_use: list[str], timestamp: int,
                   body: bytes) -> dict[str, str]:
    """Every header of a delivery attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "settlement-webhooks/1",
        HEADER_EVENT_ID: event_id,
        HEADER_EVENT_TYPE: event_type,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: signature_header(secrets_in_use, timestamp, body),
    }


def verify_signature(secret: str, timestamp: str | int, body: bytes | str, header: str,
                     now: dt.datetime | int | None = None, *,
                     tolerance: int = DEFAULT_TOLERANCE_SECONDS) -> None:
    """Check a delivery's signature as a receiver would; raise :class:`SignatureInvalid`
    (``detail["reason"]`` says why) unless it verifies.

    ``timestamp`` and ``header`` are the ``Settlement-Timestamp`` and
    ``Settlement-Signature`` values, ``body`` the raw request body, ``now`` the
    receiver's clock (Unix seconds or an aware datetime; default: the current
    time). A timestamp further than ``tolerance`` seconds from ``now``, in either
    direction, is refused even if the signature matches. Unknown schemes in the
    header are ignored, so a future ``v2`` does not break a ``v1`` receiver.
    """
    text = str(timestamp).strip()
    if not text.isascii() or not text.isdigit():
        raise SignatureInvalid("the timestamp is not Unix seconds", reason="malformed_timestamp")
    stamp = int(text)
    if now is None:
        clock = int(time.time())
    elif isinstance(now, dt.datetime):
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        clock = int(now.timestamp())
    else:
        clock = int(now)
    if abs(clock - stamp) > tolerance:
        raise SignatureInvalid(f"the timestamp is {clock - stamp} s away from now (tolerance {tolerance} s)",
                               reason="stale_timestamp")
    candidates = [part.split("=", 1)[1] for part in _SEPARATOR.split(header.strip())
                  if part.startswith(SCHEME + "=")]
    if not candidates:
        raise SignatureInvalid(f"no {SCHEME}= signature in the header", reason="malformed_header")
    expected = compute_signature(secret, text, body)
    # Compare against every candidate, not stopping at the first match, so the time
    # taken does not reveal which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.lower().encode())
    if not matched:
        raise SignatureInvalid("no signature matches the secret", reason="no_matching_signature")
