"""The ACP wire format: form encoding, field checks, times, amounts, and what a
``respCode`` means for the caller.

Requests, answers and notifications are ``application/x-www-form-urlencoded`` UTF-8
forms. (The real gateway answers its synchronous replies as raw ``k=v&...`` text;
percent-encoding them, as the simulator does, carries the same fields losslessly.)
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Iterable, Mapping

from adapters.base import Declined, Malformed, RailTimeout, RailUnavailable, SignatureInvalid, TxnStatus
from adapters.unionpay.constants import (
    BEIJING,
    CURRENCY,
    CURRENCY_CODE,
    NOTHING_HAPPENED,
    OUTCOME_UNKNOWN,
    RAIL,
    RESP_MESSAGES,
    RespCode,
    TxnType,
)

#: An answer is a few KiB (the signer certificate is the largest field).
MAX_ANSWER_BYTES = 256 * 1024
MAX_NOTIFICATION_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 64 * 1024
_MAX_FIELDS = 200
_MAX_FEN_DIGITS = 12

#: The state of a transaction after a successful message of this txnType.
STATUS_AFTER: Mapping[str, TxnStatus] = {
    TxnType.PURCHASE: TxnStatus.CAPTURED,
    TxnType.PREAUTH: TxnStatus.AUTHORIZED,
    TxnType.PREAUTH_COMPLETE: TxnStatus.CAPTURED,
    TxnType.REFUND: TxnStatus.REFUNDED,
    TxnType.PURCHASE_CANCEL: TxnStatus.VOIDED,
    TxnType.PREAUTH_CANCEL: TxnStatus.VOIDED,
    TxnType.PAYOUT: TxnStatus.CAPTURED,
}


def encode_form(form: Mapping[str, str]) -> bytes:
    """Percent-encode ``form`` in sorted key order (UTF-8)."""
    return urllib.parse.urlencode(sorted(form.items()), encoding="utf-8").encode("ascii")


def decode_form(body: bytes, *, limit: int, what: str) -> dict[str, str]:
    """Parse a form strictly: at most ``limit`` bytes, valid UTF-8 and percent-escapes,
    every pair ``k=v``, no field twice. :class:`Malformed` otherwise."""
    if len(body) > limit:
        raise Malformed(f"{what} is {len(body)} bytes, more than the {limit} allowed", rail=RAIL)
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True,
                                       encoding="utf-8", errors="strict", max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"{what} is not a well-formed UTF-8 form: {exc}", rail=RAIL) from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise Malformed(f"{what} repeats the field {key!r}", rail=RAIL)
        form[key] = value
    return form


def require(form: Mapping[str, str], names: Iterable[str], what: str) -> None:
    """:class:`Malformed` naming every field of ``names`` that ``form`` lacks or leaves empty."""
    missing = [name for name in names if not form.get(name)]
    if missing:
        raise Malformed(f"{what} lacks {', '.join(missing)} (truncated or incomplete)", rail=RAIL,
                        detail={"missing": ",".join(missing)})


def beijing_now() -> dt.datetime:
    return dt.datetime.now(BEIJING)


def format_txn_time(moment: dt.datetime) -> str:
    """``YYYYMMDDhhmmss`` in Beijing time."""
    return moment.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")


def parse_txn_time(text: str) -> dt.datetime:
    """An aware datetime from ``YYYYMMDDhhmmss`` Beijing time; :class:`Malformed` otherwise."""
    if len(text) != 14 or not text.isdigit():
        raise Malformed(f"txnTime {text!r} is not YYYYMMDDhhmmss", rail=RAIL)
    try:
        return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError as exc:
        raise Malformed(f"txnTime {text!r} is not a valid time", rail=RAIL) from exc


def trace_time(moment: dt.datetime) -> str:
    """``traceTime``: ``MMDDhhmmss`` in Beijing time."""
    return moment.astimezone(BEIJING).strftime("%m%d%H%M%S")


def fen_text(amount: int) -> str:
    """``txnAmt`` for ``amount`` fen: a positive integer of at most 12 digits."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise Malformed(f"amount must be a positive integer of fen, not {amount!r}", rail=RAIL)
    text = str(amount)
    if len(text) > _MAX_FEN_DIGITS:
        raise Malformed(f"amount {amount} has more than {_MAX_FEN_DIGITS} digits", rail=RAIL)
    return text


def parse_fen(text: str, field: str = "txnAmt") -> int:
    """Fen from a decimal digit string (no sign, no spaces); :class:`Malformed` otherwise."""
    if not text.isascii() or not text.isdigit() or len(text) > _MAX_FEN_DIGITS:
        raise Malformed(f"{field} {text!r} is not an amount in fen", rail=RAIL)
    return int(text)


def currency_of(code: str) -> str:
    """ISO 4217 alphabetic code for an ACP ``currencyCode`` (only 156 is accepted)."""
    if code != CURRENCY_CODE:
        raise Malformed(f"currencyCode {code!r} is not {CURRENCY_CODE} ({CURRENCY})", rail=RAIL)
    return CURRENCY


def message_for(code: str) -> str:
    return RESP_MESSAGES.get(code, "交易失败")


def raise_for_code(answer: Mapping[str, str], operation: str) -> None:
    """Raise what a non-success ``respCode`` means for the caller.

    * 03, 04 (timeout, state unknown): :class:`RailTimeout`; ask queryTrans.
    * 02, 06 (closed, busy): :class:`RailUnavailable`; nothing happened.
    * 11: the gateway refused *our* signature: :class:`SignatureInvalid`.
    * 10, 13: the gateway could not read our message: :class:`Malformed`.
    * anything else: :class:`Declined` carrying the code.
    """
    code = answer.get("respCode", "")
    if code == RespCode.SUCCESS:
        return
    text = f"{operation}: respCode {code} {answer.get('respMsg') or message_for(code)}"
    detail = {"respCode": code, "orderId": answer.get("orderId", "")}
    if code in OUTCOME_UNKNOWN:
        raise RailTimeout(text, rail=RAIL, detail=detail)
    if code in NOTHING_HAPPENED:
        raise RailUnavailable(text, rail=RAIL, detail=detail)
    if code == RespCode.SIGNATURE:
        raise SignatureInvalid(text, rail=RAIL, detail=detail)
    if code in (RespCode.FORMAT, RespCode.MISSING):
        raise Malformed(text, rail=RAIL, detail=detail)
    raise Declined(text, rail_code=code, rail=RAIL, detail=detail)
