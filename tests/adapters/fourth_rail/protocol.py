"""The fourth rail's wire format, shared by its adapter and its simulator.

* Requests: ``POST /v1/<operation>`` with a compact JSON object (sorted keys),
  headers ``X-Merchant`` and ``X-Signature``.
* Responses and notifications: a JSON object with header ``X-Signature``.
* ``X-Signature`` is the lowercase hex HMAC-SHA256 of the exact body bytes under
  the merchant's shared secret; the receiver compares in constant time.
* Amounts travel as decimal strings (``"150.00"``) in the transaction currency.
* Settlement file: UTF-8 CSV with the header :data:`FILE_HEADER`, one record a
  line, amounts as decimal strings, dates ``YYYY-MM-DD``; refunds carry negative
  gross and net.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

NAME = "fourth"
CURRENCY = "HKD"
SIGNATURE_HEADER = "X-Signature"
MERCHANT_HEADER = "X-Merchant"
APPROVED = "00"
INSUFFICIENT_FUNDS = "51"
INVALID_AMOUNT = "13"
NOT_ALLOWED = "57"
FILE_HEADER = ("type", "rail_reference", "reference", "gross", "fee", "net", "currency",
               "transaction_date", "settlement_date")


def sign(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)


def encode(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
