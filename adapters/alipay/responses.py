"""Reading the gateway's verified answers: required fields, amounts, forex details,
pre-authorization order states, and the :class:`RailResult` built from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.base import FxDetail, Malformed, RailResult, TxnStatus

from . import codec
from .codec import HOME_CURRENCY, RAIL, AmountError


def result(reference: str, rail_reference: str, *, status: TxnStatus, amount: int, currency: str,
           response: Mapping[str, Any], rrn: str = "") -> RailResult:
    """A :class:`RailResult` carrying the gateway's answer in ``raw``; ``rrn`` is the
    operation's own id where it has one (the ``trade_no`` of a sale or a capture: the
    ``Transaction_id`` its settlement line carries)."""
    return RailResult(rail=RAIL, reference=reference, rail_reference=rail_reference, status=status,
                      amount=amount, currency=currency, response_code=str(response.get("code", "")),
                      approval_code=str(response.get("trade_no") or response.get("operation_id") or ""),
                      rrn=rrn, fx=fx(response), raw={k: str(v) for k, v in response.items()})


def answer_for(response: dict[str, Any], **expected: str) -> dict[str, Any]:
    """``response`` after checking it answers *this* request: Alipay's answers carry
    no nonce, so a validly signed answer to another request could be replayed."""
    for key, value in expected.items():
        if response.get(key) != value:
            raise Malformed(f"the answer is for {key}={response.get(key)!r}, not {value!r}", rail=RAIL)
    return response


def text(response: Mapping[str, Any], key: str) -> str:
    value = response.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(f"response lacks {key}", rail=RAIL)
    return value


def amount(response: Mapping[str, Any], key: str, currency: str) -> int:
    try:
        return codec.to_minor(str(response.get(key, "")), currency)
    except AmountError as exc:
        raise Malformed(f"response field {key}: {exc}", rail=RAIL) from exc


def fx(response: Mapping[str, Any]) -> FxDetail | None:
    rate = response.get("trans_pay_rate")
    if not rate:
        return None
    try:
        return FxDetail(rate=codec.parse_rate(str(rate)),
                        settlement_amount=codec.to_minor(str(response.get("rmb_amount", "")), HOME_CURRENCY),
                        settlement_currency=HOME_CURRENCY)
    except AmountError as exc:
        raise Malformed(f"forex fields of the response: {exc}", rail=RAIL) from exc


def order_status(detail: Mapping[str, Any], currency: str) -> TxnStatus:
    """A pre-authorization order's state: frozen funds left -> AUTHORIZED (or CAPTURED
    once something was paid from them); nothing left -> CAPTURED if paid, else VOIDED."""
    order = detail.get("order_status")
    paid = amount(detail, "total_pay_amount", currency) if detail.get("total_pay_amount") else 0
    if order == "INIT":
        return TxnStatus.PENDING
    if order == "AUTHORIZED":
        return TxnStatus.CAPTURED if paid else TxnStatus.AUTHORIZED
    if order in ("FINISH", "CLOSED"):
        return TxnStatus.CAPTURED if paid else TxnStatus.VOIDED
    raise Malformed(f"unknown pre-authorization order_status {order!r}", rail=RAIL)
