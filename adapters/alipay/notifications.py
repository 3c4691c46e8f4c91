"""Alipay's asynchronous notifications, as the merchant receives them.

Alipay POSTs ``application/x-www-form-urlencoded`` parameters to the ``notify_url``
of the request and retries until the merchant answers the literal body ``success``
(up to 8 deliveries over about 25 hours). The merchant must verify the RSA2
signature (content without ``sign`` and ``sign_type``), check that ``app_id`` is its
own, and treat ``notify_id`` as the event's identity: every retry of one event
carries the same ``notify_id`` and a fresh ``notify_time``.

Two families are understood:

* ``notify_type=trade_status_sync`` (trades, their refunds and closes):
  ``trade_status`` WAIT_BUYER_PAY -> PENDING, TRADE_SUCCESS and TRADE_FINISHED ->
  CAPTURED, TRADE_CLOSED -> VOIDED; a notification carrying a non-zero
  ``refund_fee`` (Alipay's total refunded so far) is a refund -> REFUNDED, and then
  ``reference`` is the refund's ``out_biz_no`` and ``amount`` the ``refund_fee``.
* ``notify_type=fund_auth_freeze`` / ``fund_auth_unfreeze`` (pre-authorizations):
  a frozen order -> AUTHORIZED; an unfreeze leaving nothing frozen -> VOIDED when
  nothing was paid from the order, CAPTURED when something was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import (
    FxDetail,
    Malformed,
    Notification,
    NotificationAck,
    ReplayedNotification,
    SignatureInvalid,
    TxnStatus,
)

from .codec import HOME_CURRENCY, RAIL, AmountError, parse_rate, parse_time, to_minor
from .signing import notification_content, verify

ACK_BODY = b"success"
#: A notification timed further in the future than this is refused (clock skew).
MAX_FUTURE_SKEW = dt.timedelta(minutes=5)
_MAX_FIELDS = 200

_TRADE_STATUS = {
    "WAIT_BUYER_PAY": TxnStatus.PENDING,
    "TRADE_SUCCESS": TxnStatus.CAPTURED,
    "TRADE_FINISHED": TxnStatus.CAPTURED,
    "TRADE_CLOSED": TxnStatus.VOIDED,
}


class NotificationVerifier:
    """Verifies and parses notifications for one app. Stateless apart from its keys,
    so one instance serves any number of threads."""

    def __init__(self, *, app_id: str, alipay_key: rsa.RSAPublicKey, max_age: dt.timedelta,
                 max_bytes: int, clock: Callable[[], dt.datetime]) -> None:
        self._app_id = app_id
        self._alipay_key = alipay_key
        self._max_age = max_age
        self._max_bytes = max_bytes
        self._clock = clock

    def parse(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify, then interpret. Order matters: nothing in an unverified body is
        interpreted beyond what is needed to find its signature.

        Raises :class:`Malformed` (too large, not a form, missing or bad fields),
        :class:`SignatureInvalid` (signature or ``app_id`` wrong) and
        :class:`ReplayedNotification` (``notify_time`` older than the window).
        """
        if len(body) > self._max_bytes:
            raise Malformed(f"notification of {len(body)} bytes exceeds {self._max_bytes}", rail=RAIL)
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if content_type and not content_type.lower().startswith("application/x-www-form-urlencoded"):
            raise Malformed(f"notification content type {content_type!r} is not a form", rail=RAIL)
        params, charset = _form(body)
        signature = params.get("sign", "")
        if not signature:
            raise Malformed("notification has no sign", rail=RAIL)
        if params.get("sign_type", "RSA2") != "RSA2":
            raise SignatureInvalid(f"unsupported sign_type {params.get('sign_type')!r}", rail=RAIL)
        if not verify(notification_content(params), signature, self._alipay_key, charset):
            raise SignatureInvalid("notification signature does not verify with Alipay's public key", rail=RAIL)
        if params.get("app_id") != self._app_id:
            raise SignatureInvalid(f"notification is addressed to app {params.get('app_id')!r}", rail=RAIL)
        notify_id = _required(params, "notify_id")
        sent_at = _time(params, "notify_time")
        now = self._clock()
        if now - sent_at > self._max_age:
            raise ReplayedNotification(f"notification {notify_id} was sent at {sent_at.isoformat()}, "
                                       f"older than {self._max_age}", rail=RAIL,
                                       detail={"notify_id": notify_id})
        if sent_at - now > MAX_FUTURE_SKEW:
            raise Malformed(f"notification {notify_id} is dated in the future", rail=RAIL)
        kind = _required(params, "notify_type")
        if kind == "trade_status_sync":
            return _trade(notify_id, params)
        if kind in ("fund_auth_freeze", "fund_auth_unfreeze"):
            return _fund_auth(notify_id, params)
        raise Malformed(f"unknown notify_type {kind!r}", rail=RAIL)

    @staticmethod
    def ack(notification: Notification | None) -> NotificationAck:
        """``success`` stops Alipay's retries; anything else (here ``fail``) makes it
        deliver the notification again later."""
        if notification is None:
            return NotificationAck(status_code=200, body=b"fail")
        return NotificationAck(status_code=200, body=ACK_BODY)


def _form(body: bytes) -> tuple[dict[str, str], str]:
    """The notification's fields and the charset they were encoded (and signed) in."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Malformed("notification body is not URL-encoded ASCII", rail=RAIL) from exc
    charset = "utf-8"
    for key, value in parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS, encoding="latin-1"):
        if key == "charset" and value.lower() in ("gbk", "gb2312"):
            charset = "gbk"
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset,
                          errors="strict", max_num_fields=_MAX_FIELDS)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"notification is not a well-formed form: {exc}", rail=RAIL) from exc
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise Malformed(f"notification repeats the field {key!r}", rail=RAIL)
        params[key] = value
    return params, charset


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise Malformed(f"notification lacks {name}", rail=RAIL)
    return value


def _time(params: Mapping[str, str], name: str) -> dt.datetime:
    try:
        return parse_time(_required(params, name))
    except ValueError as exc:
        raise Malformed(f"notification field {name}: {exc}", rail=RAIL) from exc


def _amount(params: Mapping[str, str], name: str, currency: str) -> int:
    try:
        return to_minor(_required(params, name), currency)
    except AmountError as exc:
        raise Malformed(f"notification field {name}: {exc}", rail=RAIL) from exc


def _fx(params: Mapping[str, str]) -> FxDetail | None:
    if not params.get("trans_pay_rate"):
        return None
    try:
        rate = parse_rate(params["trans_pay_rate"])
    except AmountError as exc:
        raise Malformed(f"notification field trans_pay_rate: {exc}", rail=RAIL) from exc
    return FxDetail(rate=rate, settlement_amount=_amount(params, "pay_amount", HOME_CURRENCY),
                    settlement_currency=params.get("pay_currency") or HOME_CURRENCY)


def _trade(notify_id: str, params: Mapping[str, str]) -> Notification:
    trade_status = _required(params, "trade_status")
    if trade_status not in _TRADE_STATUS:
        raise Malformed(f"unknown trade_status {trade_status!r}", rail=RAIL)
    currency = params.get("trans_currency") or HOME_CURRENCY
    refunded = params.get("refund_fee", "") not in ("", "0", "0.00")
    if refunded:
        status, reference = TxnStatus.REFUNDED, params.get("out_biz_no") or _required(params, "out_trade_no")
        amount, when = _amount(params, "refund_fee", currency), "gmt_refund"
    else:
        status, reference = _TRADE_STATUS[trade_status], _required(params, "out_trade_no")
        amount = _amount(params, "total_amount", currency)
        when = {"TRADE_CLOSED": "gmt_close", "WAIT_BUYER_PAY": "gmt_create"}.get(trade_status, "gmt_payment")
    return Notification(
        rail=RAIL, notification_id=notify_id, reference=reference,
        rail_reference=_required(params, "trade_no"), status=status, amount=amount, currency=currency,
        occurred_at=_time(params, when) if params.get(when) else None, fx=_fx(params), raw=dict(params))


def _fund_auth(notify_id: str, params: Mapping[str, str]) -> Notification:
    currency = params.get("trans_currency") or HOME_CURRENCY
    if _required(params, "status") != "SUCCESS":
        status = TxnStatus.FAILED
    elif _required(params, "operation_type") == "FREEZE" or _amount(params, "rest_amount", currency) > 0:
        status = TxnStatus.AUTHORIZED
    else:
        paid = _amount(params, "total_pay_amount", currency) if params.get("total_pay_amount") else 0
        status = TxnStatus.CAPTURED if paid else TxnStatus.VOIDED
    reference = (_required(params, "out_order_no") if params.get("operation_type") == "FREEZE"
                 else _required(params, "out_request_no"))
    return Notification(
        rail=RAIL, notification_id=notify_id, reference=reference,
        rail_reference=_required(params, "auth_no"), status=status,
        amount=_amount(params, "amount", currency), currency=currency,
        occurred_at=_time(params, "gmt_trans") if params.get("gmt_trans") else None,
        fx=_fx(params), raw=dict(params))

