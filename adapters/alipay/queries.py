"""Asking the gateway for the truth about one operation: a pre-authorization order or
one of its operations, a trade, a refund, a transfer. Each answers ``None`` when
Alipay has no such thing (its "does not exist" sub-codes, or a refund query answered
without a refund), so the caller can report NOT_FOUND."""

from __future__ import annotations

from adapters.base import Declined, Malformed, QueryRequest, RailResult, TxnStatus, Unsupported

from .codec import HOME_CURRENCY, RAIL
from .responses import amount, order_status, result, text
from .transport import Gateway

#: Sub-codes that mean "no such thing" rather than a refusal.
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
AUTH_NOT_EXIST = "AUTH_ORDER_NOT_EXIST"
TRANSFER_NOT_EXIST = "ORDER_NOT_EXIST"


def query_auth(gateway: Gateway, reference: str, auth_no: str | None) -> RailResult | None:
    """``alipay.fund.auth.operation.detail.query``: without ``auth_no``, the order frozen
    under ``reference`` (its status is the order's); with it, the unfreeze we called
    ``reference`` on that order (VOIDED once done)."""
    biz = {"auth_no": auth_no, "out_request_no": reference} if auth_no else {
        "out_order_no": reference, "out_request_no": reference}
    try:
        detail = gateway.call("alipay.fund.auth.operation.detail.query", biz, moves_money=False)
    except Declined as exc:
        if exc.rail_code == AUTH_NOT_EXIST:
            return None
        raise
    currency = str(detail.get("trans_currency") or HOME_CURRENCY)
    if detail.get("operation_type") == "UNFREEZE":
        status = TxnStatus.VOIDED if detail.get("status") == "SUCCESS" else TxnStatus.PENDING
    else:
        status = order_status(detail, currency)
    return result(reference, text(detail, "auth_no"), status=status, amount=amount(detail, "amount", currency),
                  currency=currency, response=detail)


def query_trade(gateway: Gateway, reference: str) -> RailResult | None:
    """``alipay.trade.query`` by ``out_trade_no``: WAIT_BUYER_PAY -> PENDING,
    TRADE_SUCCESS / TRADE_FINISHED -> CAPTURED, TRADE_CLOSED -> REFUNDED if it had
    been paid, else VOIDED."""
    try:
        trade = gateway.call("alipay.trade.query", {"out_trade_no": reference}, moves_money=False)
    except Declined as exc:
        if exc.rail_code == TRADE_NOT_EXIST:
            return None
        raise
    currency = str(trade.get("trans_currency") or HOME_CURRENCY)
    state = trade.get("trade_status")
    status = {"WAIT_BUYER_PAY": TxnStatus.PENDING, "TRADE_SUCCESS": TxnStatus.CAPTURED,
              "TRADE_FINISHED": TxnStatus.CAPTURED}.get(str(state))
    if state == "TRADE_CLOSED":
        # Alipay closes a trade both when it is cancelled unpaid and when it is fully
        # refunded; only a paid trade has a send_pay_date.
        status = TxnStatus.REFUNDED if trade.get("send_pay_date") else TxnStatus.VOIDED
    if status is None:
        raise Malformed(f"alipay.trade.query answered trade_status {state!r}", rail=RAIL)
    trade_no = text(trade, "trade_no")
    return result(reference, trade_no, status=status, amount=amount(trade, "total_amount", currency),
                  currency=currency, response=trade, rrn=trade_no)


def query_refund(gateway: Gateway, request: QueryRequest) -> RailResult | None:
    """``alipay.trade.fastpay.refund.query``: the refund ``request.reference`` of the
    trade (or pre-authorization) ``request.rail_reference``; REFUNDED with its amount."""
    if not request.rail_reference:
        raise Unsupported("a refund query needs the rail_reference of the refunded payment", rail=RAIL)
    try:
        refund = gateway.call("alipay.trade.fastpay.refund.query",
                              {"trade_no": request.rail_reference, "out_request_no": request.reference},
                              moves_money=False)
    except Declined as exc:
        if exc.rail_code == TRADE_NOT_EXIST:
            return None
        raise
    if refund.get("refund_status") != "REFUND_SUCCESS" or not refund.get("refund_amount"):
        return None  # Alipay answers 10000 without a refund when it has none by that number
    currency = str(refund.get("refund_currency") or HOME_CURRENCY)
    return result(request.reference, request.rail_reference, status=TxnStatus.REFUNDED,
                  amount=amount(refund, "refund_amount", currency), currency=currency, response=refund)


def query_payout(gateway: Gateway, reference: str) -> RailResult | None:
    """``alipay.fund.trans.common.query`` by ``out_biz_no``: SUCCESS -> CAPTURED,
    DEALING / WAIT_PAY -> PENDING, FAIL / REFUND -> FAILED."""
    try:
        transfer = gateway.call("alipay.fund.trans.common.query",
                                {"out_biz_no": reference, "product_code": "TRANS_ACCOUNT_NO_PWD",
                                 "biz_scene": "DIRECT_TRANSFER"}, moves_money=False)
    except Declined as exc:
        if exc.rail_code == TRANSFER_NOT_EXIST:
            return None
        raise
    status = {"SUCCESS": TxnStatus.CAPTURED, "DEALING": TxnStatus.PENDING, "WAIT_PAY": TxnStatus.PENDING,
              "FAIL": TxnStatus.FAILED, "REFUND": TxnStatus.FAILED}.get(str(transfer.get("status")),
                                                                       TxnStatus.FAILED)
    return result(reference, text(transfer, "order_id"), status=status,
                  amount=amount(transfer, "trans_amount", HOME_CURRENCY), currency=HOME_CURRENCY,
                  response=transfer)
