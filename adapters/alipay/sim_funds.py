"""The simulated gateway's fund methods: pre-authorization (``alipay.fund.auth.order.freeze``,
``alipay.fund.auth.order.unfreeze``, ``alipay.fund.auth.operation.detail.query``) and
transfers (``alipay.fund.trans.uni.transfer``, ``alipay.fund.trans.common.query``).

A pre-authorization order freezes ``amount`` of the payer's funds. Payments from it
(``alipay.trade.pay`` with ``auth_no``, see :mod:`.sim_trades`) and unfreezes each
take from what remains (``rest_amount``). The order is ``AUTHORIZED`` while funds
remain frozen; once nothing remains it is ``FINISH`` when something was paid from it
and ``CLOSED`` when everything was unfrozen. Sub-codes as Alipay answers them:
``ORDER_ALREADY_CLOSED``, ``ORDER_ALREADY_FINISH``, ``REQUEST_AMOUNT_EXCEED``; an
unknown order or operation is ``AUTH_ORDER_NOT_EXIST`` (this simulator's code).
"""

from __future__ import annotations

from typing import Any

from adapters.base import RecordType

from .codec import HOME_CURRENCY, format_time, to_major
from .sim_model import (
    MAX_TRANSFER_MINOR,
    MISSING_PAYEE,
    SUCCESS,
    SYSTEM_ERROR_AMOUNT,
    AuthOrder,
    Operation,
    ProcessedButUnknown,
    Refusal,
    Response,
    SimState,
    Trade,
    Transfer,
    amount_of,
    check_buyer_and_amount,
    currency_of,
    fx_fields,
    required,
)


def order_or_refuse(state: SimState, auth_no: str) -> AuthOrder:
    order = state.orders.get(auth_no)
    if order is None:
        raise Refusal("AUTH_ORDER_NOT_EXIST", "no such pre-authorization order")
    return order


def check_open(order: AuthOrder, amount: int) -> None:
    """An operation taking ``amount`` from what remains frozen."""
    if order.status == "CLOSED":
        raise Refusal("ORDER_ALREADY_CLOSED", "the order is closed: nothing remains frozen")
    if order.status == "FINISH":
        raise Refusal("ORDER_ALREADY_FINISH", "the order is finished")
    if amount > order.rest:
        raise Refusal("REQUEST_AMOUNT_EXCEED", "amount exceeds what remains frozen")


def _operation(state: SimState, order: AuthOrder, out_request_no: str, kind: str, amount: int) -> Operation:
    op = Operation(operation_id=state.new_id("0001"), out_request_no=out_request_no, kind=kind,
                   amount=amount, at=state.clock())
    order.operations[out_request_no] = op
    return op


def _settle_status(order: AuthOrder) -> None:
    if order.rest == 0:
        order.status = "FINISH" if order.paid else "CLOSED"


def record_payment(state: SimState, order: AuthOrder, trade: Trade, *, complete: bool) -> None:
    """A payment of ``trade.total`` out of the order; ``complete`` unfreezes the rest."""
    order.rest -= trade.total
    order.paid += trade.total
    order.trades.append(trade.trade_no)
    _operation(state, order, trade.out_trade_no, "PAY", trade.total)
    if complete and order.rest:
        order.unfrozen += order.rest
        order.rest = 0
    _settle_status(order)


def _order_view(order: AuthOrder, op: Operation) -> Response:
    view: Response = {
        "auth_no": order.auth_no, "out_order_no": order.out_order_no, "operation_id": op.operation_id,
        "out_request_no": op.out_request_no, "amount": to_major(op.amount, order.currency), "status": "SUCCESS",
        "gmt_trans": format_time(op.at), "payer_user_id": order.payer_id}
    view.update(fx_fields(op.amount, order.currency, order.rate))
    return view


def order_notice(order: AuthOrder, op: Operation) -> dict[str, str]:
    """The ``fund_auth_freeze`` / ``fund_auth_unfreeze`` notification of ``op``."""
    params = {k: str(v) for k, v in _order_view(order, op).items()}
    params.update({
        "notify_type": "fund_auth_freeze" if op.kind == "FREEZE" else "fund_auth_unfreeze",
        "operation_type": op.kind, "rest_amount": to_major(order.rest, order.currency),
        "total_freeze_amount": to_major(order.amount, order.currency),
        "total_unfreeze_amount": to_major(order.unfrozen, order.currency),
        "total_pay_amount": to_major(order.paid, order.currency)})
    return params


def freeze(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.fund.auth.order.freeze``: freeze ``amount`` of ``payer_user_id``'s funds.
    ``out_order_no`` + ``out_request_no`` identify the request; a repeat answers the
    original order."""
    out_order_no = required(biz, "out_order_no")
    out_request_no = required(biz, "out_request_no")
    currency = currency_of(biz)
    amount = amount_of(biz, "amount", currency)
    if out_order_no in state.declined:
        raise Refusal.replay(state.declined[out_order_no])
    existing = state.order_by_out.get(out_order_no)
    if existing is not None:
        order = state.orders[existing]
        op = order.operations.get(out_request_no)
        if op is None or op.kind != "FREEZE" or op.amount != amount:
            raise Refusal("ACQ.CONTEXT_INCONSISTENT", "out_order_no was used for a different order")
        return {**SUCCESS, **_order_view(order, op)}
    payer = required(biz, "payer_user_id")
    try:
        check_buyer_and_amount(payer, str(biz["amount"]), amount)
        rate = state.rate_for(currency)
    except Refusal as refusal:
        state.declined[out_order_no] = refusal.response
        raise
    order = AuthOrder(auth_no=state.new_id("10002001"), out_order_no=out_order_no, amount=amount,
                      currency=currency, payer_id=payer, created_at=state.clock(), notify_url=notify_url,
                      rate=rate, rest=amount)
    state.orders[order.auth_no] = order
    state.order_by_out[out_order_no] = order.auth_no
    op = _operation(state, order, out_request_no, "FREEZE", amount)
    state.notify(notify_url, order_notice(order, op))
    if str(biz["amount"]) == SYSTEM_ERROR_AMOUNT:
        raise ProcessedButUnknown(out_order_no)
    return {**SUCCESS, **_order_view(order, op)}


def unfreeze(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.fund.auth.order.unfreeze``: give ``amount`` of the frozen funds back."""
    order = order_or_refuse(state, required(biz, "auth_no"))
    out_request_no = required(biz, "out_request_no")
    amount = amount_of(biz, "amount", order.currency)
    op = order.operations.get(out_request_no)
    if op is not None:
        if op.kind != "UNFREEZE" or op.amount != amount:
            raise Refusal("ACQ.CONTEXT_INCONSISTENT", "out_request_no was used for a different operation")
        return {**SUCCESS, **_order_view(order, op)}
    check_open(order, amount)
    order.rest -= amount
    order.unfrozen += amount
    _settle_status(order)
    op = _operation(state, order, out_request_no, "UNFREEZE", amount)
    state.notify(notify_url or order.notify_url, order_notice(order, op))
    return {**SUCCESS, **_order_view(order, op)}


def detail_query(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.fund.auth.operation.detail.query``: one operation of an order (by
    ``auth_no`` or ``out_order_no``, and ``out_request_no``) with the order's totals."""
    auth_no = str(biz.get("auth_no") or "") or state.order_by_out.get(str(biz.get("out_order_no") or ""), "")
    order = order_or_refuse(state, auth_no)
    op = order.operations.get(required(biz, "out_request_no"))
    if op is None:
        raise Refusal("AUTH_ORDER_NOT_EXIST", "no such operation on the order")
    return {**SUCCESS, **_order_view(order, op), "operation_type": op.kind, "order_status": order.status,
            "total_freeze_amount": to_major(order.amount, order.currency),
            "rest_amount": to_major(order.rest, order.currency),
            "total_pay_amount": to_major(order.paid, order.currency),
            "gmt_create": format_time(order.created_at)}


def transfer(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.fund.trans.uni.transfer`` to an ``ALIPAY_USER_ID``, in CNY."""
    out_biz_no = required(biz, "out_biz_no")
    amount = amount_of(biz, "trans_amount", HOME_CURRENCY)
    payee_info = biz.get("payee_info")
    if not isinstance(payee_info, dict) or payee_info.get("identity_type") != "ALIPAY_USER_ID":
        raise Refusal("INVALID_PARAMETER", "payee_info must name an ALIPAY_USER_ID")
    payee = required(payee_info, "identity")
    done = state.transfers.get(out_biz_no)
    if done is not None:
        if done.amount != amount or done.payee != payee:
            raise Refusal("ACQ.CONTEXT_INCONSISTENT", "out_biz_no was used for a different transfer")
        return {**SUCCESS, **_transfer_view(done)}
    if out_biz_no in state.declined:
        raise Refusal.replay(state.declined[out_biz_no])
    try:
        if payee == MISSING_PAYEE or not (payee.startswith("2088") and len(payee) == 16 and payee.isdigit()):
            raise Refusal("PAYEE_NOT_EXIST", "the payee's account does not exist")
        if amount > MAX_TRANSFER_MINOR:
            raise Refusal("EXCEED_LIMIT_SM_AMOUNT", "single transfer limit exceeded")
    except Refusal as refusal:
        state.declined[out_biz_no] = refusal.response
        raise
    done = Transfer(order_id=state.new_id("1100700"), pay_fund_order_id=state.new_id("1100710"),
                    out_biz_no=out_biz_no, amount=amount, payee=payee, at=state.clock())
    state.transfers[out_biz_no] = done
    state.settle(kind=RecordType.PAYOUT, reference=out_biz_no, rail_reference=done.order_id, amount=amount,
                 currency=HOME_CURRENCY, rate=None, at=done.at)
    return {**SUCCESS, **_transfer_view(done)}


def _transfer_view(done: Transfer) -> Response:
    return {"out_biz_no": done.out_biz_no, "order_id": done.order_id, "pay_fund_order_id": done.pay_fund_order_id,
            "status": "SUCCESS", "trans_date": format_time(done.at),
            "trans_amount": to_major(done.amount, HOME_CURRENCY)}


def transfer_query(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.fund.trans.common.query`` by ``out_biz_no``."""
    done = state.transfers.get(required(biz, "out_biz_no"))
    if done is None:
        raise Refusal("ORDER_NOT_EXIST", "no such transfer")
    return {**SUCCESS, **_transfer_view(done), "pay_date": format_time(done.at)}
