"""Wire format of the Mir rail: ISO 8583:1987 messages in the ASCII field layout of
``pyiso8583``'s ``specs.default_ascii``, framed by a 2-byte big-endian length prefix.

Messages
========

====  ==========================================  ====================================
MTI   meaning                                     answered by
====  ==========================================  ====================================
0100  authorization (hold)                        0110
0200  financial: sale (field 3 ``00xxxx``) or     0210
      refund (field 3 ``20xxxx``)
0220  completion advice: captures part or all of  0230
      an authorization; several may follow
0400  reversal: releases the uncaptured rest of   0410
      an authorization
0101  repeat of 0100, 0201 of 0200, 0221 of 0220, the same answer MTI
0401  of 0400: a status inquiry (see below)
====  ==========================================  ====================================

Fields
======

==  ======================================================================
2   PAN, in 0100 and purchase 0200 only (never in answers)
3   processing code: ``000000`` purchase, ``200000`` refund
4   amount in kopecks, 12 digits; in answers, what the operation moved (a
    reversal: what it released); absent from inquiries
7   transmission date and time, ``MMDDhhmmss`` UTC
11  STAN, derived from our reference (:func:`derive_ids`)
12  local time ``hhmmss`` and 13 local date ``MMDD``, Moscow time
14  card expiry ``YYMM``, when the payment method carries it
37  RRN, derived from our reference (:func:`derive_ids`)
38  approval code (answers)
39  response code (answers), see :data:`RESPONSE_TEXT`
41  terminal id (8), 42 merchant id (15)
44  answers: the original transaction's state after the operation, as a
    :class:`~adapters.base.TxnStatus` value (*our convention*)
48  our reference of the operation (*our convention*)
49  ``643``
62  0220 only: ``F`` final completion (the uncaptured rest is released) or
    ``P`` more completions follow; absent means ``F`` (*our convention*)
64  MAC, or 128 when field 90 is present (see below)
90  0220, 0400 and refunds: the original transaction's RRN (12 characters)
    zero-filled to 42; every approved answer carries it too, an authorization's
    or sale's naming itself (*our convention*: ISO 8583:1987 puts the original
    MTI, STAN, time and institution ids here, but the host locates originals by
    RRN)
==  ======================================================================

Identifiers and status inquiry
==============================

NSPK's status inquiry is not public. Every operation (authorization, sale, capture,
refund, reversal) gets its own RRN and STAN, derived from *our* reference by
:func:`derive_ids`, and carries the reference itself in field 48. The host keys
operations by reference, so sending the same request again is a retry: it answers
with the original outcome and moves no money twice (a different request under a
known reference is refused with ``94``). A repeat MTI (``0101``, ``0201``, ``0221``,
``0401``) is treated as a status inquiry: the host never processes it, and answers
with the operation's original response code, amount and approval code, field 44 set
to the transaction's *current* state, or ``25`` (unable to locate) when it never
saw the reference. It looks the reference up whatever the repeat MTI; the MTI only
chooses the answer's. An inquiry carries fields 3, 7, 11-13, 37, 41, 42, 48 and 49
(no PAN, no amount), so a query needs nothing but our reference.

Message authentication (our convention)
=======================================

NSPK's real security layer (key management, MAC algorithm) is not public. Every
message in both directions ends with a MAC in the last field of its last bitmap, as
ISO 8583 places it: field 64, or field 128 when the secondary bitmap is present
(field 90 needs it). The MAC is the first 8 bytes of AES-CMAC (:mod:`cryptography`)
over the packed message *with the MAC field's bit set in the bitmap and the MAC
characters themselves left out*, written as 16 upper-case hex characters. Since the
MAC field is the last one, the MAC input is simply every byte before the last 16.
The key is shared (hex in the adapter configuration, 16, 24 or 32 bytes). The
adapter rejects any answer whose MAC is absent or wrong
(:class:`~adapters.base.SignatureInvalid`); the host answers a request with a bad
MAC with response code ``63`` (security violation) and does not process it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import struct
from collections.abc import Mapping

import iso8583
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from iso8583.specs import default_ascii

from adapters.mir.terms import MOSCOW

#: Largest frame either side accepts; the 2-byte prefix could announce 65,535 bytes,
#: but no message of ours comes near 1 KiB, so a larger length means a broken peer.
MAX_MESSAGE_LENGTH = 4096

MAC_FIELDS = ("64", "128")
MAC_LENGTH = 16   # hex characters: fields 64 and 128 of default_ascii are fixed at 16

PURCHASE = "000000"
REFUND = "200000"

#: Request MTI -> answer MTI.
ANSWER_MTI: Mapping[str, str] = {
    "0100": "0110", "0101": "0110",
    "0200": "0210", "0201": "0210",
    "0220": "0230", "0221": "0230",
    "0400": "0410", "0401": "0410",
}

#: Operation kinds a status inquiry can name -> (repeat MTI, processing code).
INQUIRY: Mapping[str, tuple[str, str]] = {
    "authorize": ("0101", PURCHASE),
    "sale": ("0201", PURCHASE),
    "capture": ("0221", PURCHASE),
    "refund": ("0201", REFUND),
    "void": ("0401", PURCHASE),
}
REPEAT_MTIS = frozenset(mti for mti, _ in INQUIRY.values())

APPROVED = "00"
#: Response codes the host uses (ISO 8583:1987 field 39 values).
RESPONSE_TEXT: Mapping[str, str] = {
    "00": "approved",
    "05": "do not honour",
    "12": "invalid transaction",
    "13": "invalid amount",
    "14": "invalid card number",
    "25": "unable to locate record",
    "30": "format error",
    "43": "stolen card, pick up",
    "51": "insufficient funds",
    "54": "expired card",
    "61": "exceeds withdrawal amount limit",
    "62": "restricted card",
    "63": "security violation",
    "91": "issuer or switch inoperative",
    "94": "duplicate transmission",
    "96": "system malfunction",
}

REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}", re.ASCII)
RRN_PATTERN = re.compile(r"[A-Za-z0-9]{12}", re.ASCII)


class ProtocolError(ValueError):
    """A frame or message that does not follow this module's rules. The message never
    contains field values (a PAN could be among them)."""


# -- identifiers ------------------------------------------------------------------


def derive_ids(reference: str) -> tuple[str, str]:
    """(RRN, STAN) for our ``reference``: 12 and 6 digits taken from its SHA-256, so a
    retry or an inquiry names the operation without any stored state. Two references
    share an RRN with probability 10^-12 per pair; the host detects that through
    field 48 and answers ``94``."""
    digest = hashlib.sha256(b"mir-rrn\x00" + reference.encode("ascii")).digest()
    number = int.from_bytes(digest[:16], "big")
    return f"{number % 10**12:012d}", f"{(number // 10**12) % 10**6:06d}"


def original_data(rrn: str) -> str:
    """Field 90 naming the original transaction (our layout: RRN, zero-filled)."""
    return rrn.ljust(42, "0")


def original_rrn(field_90: str) -> str:
    return field_90[:12]


def clock_fields(now: dt.datetime) -> dict[str, str]:
    """Fields 7 (UTC) and 12, 13 (Moscow local time) for the moment ``now``."""
    utc = now.astimezone(dt.UTC)
    local = now.astimezone(MOSCOW)
    return {"7": utc.strftime("%m%d%H%M%S"), "12": local.strftime("%H%M%S"),
            "13": local.strftime("%m%d")}


# -- MAC --------------------------------------------------------------------------


def parse_key(text: str) -> bytes:
    """An AES key from hex text (16, 24 or 32 bytes)."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError("mac_key must be hex text") from None
    if len(key) not in (16, 24, 32):
        raise ValueError("mac_key must be 16, 24 or 32 bytes (32, 48 or 64 hex characters)")
    return key


def compute_mac(key: bytes, data: bytes) -> str:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()[:8].hex().upper()


def mac_field(fields: Mapping[str, str]) -> str:
    """Where the MAC of ``fields`` goes: 128 when any field above 64 is present."""
    secondary = any(name.isdigit() and 64 < int(name) < 128 for name in fields)
    return "128" if secondary else "64"


def mac_is_valid(key: bytes, raw: bytes, fields: Mapping[str, str]) -> bool:
    """True when ``raw`` (a decoded message's bytes) ends with a correct MAC in the
    right field (64 without a secondary bitmap, 128 with one, never both)."""
    expected_field = "128" if "1" in fields else "64"
    if expected_field not in fields or ("64" in fields and "128" in fields):
        return False
    expected = compute_mac(key, raw[:-MAC_LENGTH])
    return hmac.compare_digest(expected.encode("ascii"), raw[-MAC_LENGTH:])


# -- messages ---------------------------------------------------------------------


def encode(fields: Mapping[str, str], key: bytes) -> bytes:
    """Pack ``fields`` (``"t"`` is the MTI) and append the MAC (field 64 or 128)."""
    doc = {name: value for name, value in fields.items() if name not in ("p", "1", *MAC_FIELDS)}
    doc[mac_field(doc)] = "0" * MAC_LENGTH
    try:
        raw, _ = iso8583.encode(doc, default_ascii)
    except iso8583.EncodeError as exc:
        # exc.msg names the field and the problem, never the value.
        raise ProtocolError(f"cannot encode message: {exc.msg}, field {exc.field}") from None
    body = bytes(raw[:-MAC_LENGTH])
    return body + compute_mac(key, body).encode("ascii")


def encode_unsigned(fields: Mapping[str, str]) -> bytes:
    doc = {name: value for name, value in fields.items() if name not in ("p", "1", *MAC_FIELDS)}
    raw, _ = iso8583.encode(doc, default_ascii)
    return bytes(raw)


def decode(raw: bytes) -> dict[str, str]:
    """Unpack one message; :class:`ProtocolError` when it is not ISO 8583 in our layout."""
    try:
        fields, _ = iso8583.decode(raw, default_ascii)
    except iso8583.DecodeError as exc:
        raise ProtocolError(f"not an ISO 8583 message: {exc.msg}, field {exc.field}") from None
    except ValueError:
        raise ProtocolError("not an ISO 8583 message") from None
    mti = fields.get("t", "")
    if not (len(mti) == 4 and mti.isdigit()):
        raise ProtocolError("message type indicator is not four digits")
    return fields


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its length, 2 bytes big-endian."""
    if not 0 < len(body) <= MAX_MESSAGE_LENGTH:
        raise ProtocolError(f"message of {len(body)} bytes is outside 1..{MAX_MESSAGE_LENGTH}")
    return struct.pack(">H", len(body)) + body


def frame_length(prefix: bytes) -> int:
    """The body length a 2-byte prefix announces; :class:`ProtocolError` when it is
    zero or above :data:`MAX_MESSAGE_LENGTH`."""
    (length,) = struct.unpack(">H", prefix)
    if length == 0:
        raise ProtocolError("empty message (length prefix 0)")
    if length > MAX_MESSAGE_LENGTH:
        raise ProtocolError(f"oversized message: length prefix {length} above {MAX_MESSAGE_LENGTH}")
    return int(length)


def is_amount(text: str | None) -> bool:
    return text is not None and len(text) == 12 and text.isdigit() and text.isascii()
