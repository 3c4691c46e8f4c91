"""The simulated gateway's trade methods: ``alipay.trade.pay`` (sale, and payment from
a pre-authorization), ``alipay.trade.query``, ``alipay.trade.refund``,
``alipay.trade.fastpay.refund.query`` and ``alipay.trade.close``.

Each function takes the state and the decoded ``biz_content`` and returns the
response object (``code`` 10000, or 10003 for a sale waiting for the buyer); it raises
:class:`Refusal` for a business failure. Callers hold ``state.lock``.

Rules beyond Alipay's published behaviour (documented conventions of this simulator):

* A retry with the same ``out_trade_no`` / ``out_request_no`` and the same amount is
  answered with the original outcome (including an earlier refusal); with a different
  amount it is refused with ``ACQ.CONTEXT_INCONSISTENT``.
* A refund's ``trade_no`` may be a pre-authorization's ``auth_no``: the refund is taken
  from the trades paid from that authorization, newest first, and ``out_request_no``
  is then unique per authorization.
* Forex trades convert at the simulator's rate for the price currency; a payment from
  a pre-authorization and every refund use the rate the order or trade was made at.
"""

from __future__ import annotations

from typing import Any

from adapters.base import RecordType

from . import sim_funds
from .codec import HOME_CURRENCY, format_time, to_major
from .sim_model import (
    SUCCESS,
    SYSTEM_ERROR_AMOUNT,
    WAITING_BUYER,
    AuthOrder,
    ProcessedButUnknown,
    Refund,
    Refusal,
    Response,
    SimState,
    Trade,
    amount_of,
    check_buyer_and_amount,
    currency_of,
    fx_fields,
    required,
)


def trade_view(trade: Trade) -> Response:
    view: Response = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                      "buyer_user_id": trade.buyer_id, "total_amount": to_major(trade.total, trade.currency)}
    if trade.paid_at:
        view["gmt_payment"] = format_time(trade.paid_at)
    view.update(fx_fields(trade.total, trade.currency, trade.rate))
    return view


def trade_notice(trade: Trade, status: str, **extra: str) -> dict[str, str]:
    params = {"notify_type": "trade_status_sync", "trade_no": trade.trade_no,
              "out_trade_no": trade.out_trade_no, "buyer_id": trade.buyer_id, "trade_status": status,
              "total_amount": to_major(trade.total, trade.currency),
              "gmt_create": format_time(trade.created_at)}
    if trade.paid_at:
        params["gmt_payment"] = format_time(trade.paid_at)
    params.update({k: str(v) for k, v in fx_fields(trade.total, trade.currency, trade.rate).items()})
    params.update(extra)
    return params


def _replay(state: SimState, out_trade_no: str, total: int, auth_no: str | None) -> Response | None:
    """The original answer to a repeated ``out_trade_no``, or None for a new trade."""
    if out_trade_no in state.declined:
        raise Refusal.replay(state.declined[out_trade_no])
    trade_no = state.trade_by_out.get(out_trade_no)
    if trade_no is None:
        return None
    trade = state.trades[trade_no]
    if trade.total != total or trade.auth_no != auth_no:
        raise Refusal("ACQ.CONTEXT_INCONSISTENT", "out_trade_no was used for a different trade")
    if trade.status == "WAIT_BUYER_PAY":
        return {"code": "10003", "msg": "order success pay inprocess", **trade_view(trade)}
    if trade.status == "TRADE_CLOSED" and not trade.paid_at:
        raise Refusal("ACQ.TRADE_HAS_CLOSE", "the trade was closed")
    return {**SUCCESS, **trade_view(trade)}


def pay(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.trade.pay``: a sale from ``buyer_id``, or with ``auth_no`` a payment out of
    that pre-authorization's frozen funds (``auth_confirm_mode`` COMPLETE unfreezes
    what remains afterwards)."""
    out_trade_no = required(biz, "out_trade_no")
    currency = currency_of(biz)
    total = amount_of(biz, "total_amount", currency)
    auth_no = str(biz["auth_no"]) if biz.get("auth_no") else None
    replayed = _replay(state, out_trade_no, total, auth_no)
    if replayed is not None:
        return replayed
    if auth_no:
        return _pay_from_order(state, biz, out_trade_no=out_trade_no, auth_no=auth_no, total=total,
                               currency=currency, notify_url=notify_url)
    buyer = required(biz, "buyer_id")
    try:
        check_buyer_and_amount(buyer, str(biz["total_amount"]), total)
        rate = state.rate_for(currency)
    except Refusal as refusal:
        state.declined[out_trade_no] = refusal.response
        raise
    now = state.clock()
    trade = Trade(trade_no=state.new_id("22"), out_trade_no=out_trade_no, total=total, currency=currency,
                  buyer_id=buyer, status="WAIT_BUYER_PAY", created_at=now, notify_url=notify_url,
                  settle_reference=out_trade_no, rate=rate)
    state.trades[trade.trade_no] = trade
    state.trade_by_out[out_trade_no] = trade.trade_no
    if buyer == WAITING_BUYER:
        state.notify(notify_url, trade_notice(trade, "WAIT_BUYER_PAY"))
        return {"code": "10003", "msg": "order success pay inprocess", **trade_view(trade)}
    mark_paid(state, trade)
    if str(biz["total_amount"]) == SYSTEM_ERROR_AMOUNT:
        raise ProcessedButUnknown(out_trade_no)
    return {**SUCCESS, **trade_view(trade)}


def mark_paid(state: SimState, trade: Trade) -> None:
    trade.status, trade.paid_at = "TRADE_SUCCESS", state.clock()
    state.settle(kind=RecordType.PAYMENT, reference=trade.settle_reference, rail_reference=trade.trade_no,
                 amount=trade.total, currency=trade.currency, rate=trade.rate, at=trade.paid_at)
    state.notify(trade.notify_url, trade_notice(trade, "TRADE_SUCCESS"))


def _pay_from_order(state: SimState, biz: dict[str, Any], *, out_trade_no: str, auth_no: str, total: int,
                    currency: str, notify_url: str | None) -> Response:
    order = sim_funds.order_or_refuse(state, auth_no)
    if currency != order.currency:
        raise Refusal("ACQ.INVALID_PARAMETER", f"the order is in {order.currency}, not {currency}")
    sim_funds.check_open(order, total)
    mode = str(biz.get("auth_confirm_mode") or "NOT_COMPLETE")
    trade = Trade(trade_no=state.new_id("22"), out_trade_no=out_trade_no, total=total, currency=currency,
                  buyer_id=order.payer_id, status="WAIT_BUYER_PAY", created_at=state.clock(),
                  notify_url=notify_url or order.notify_url, settle_reference=order.out_order_no,
                  rate=order.rate, auth_no=auth_no)
    state.trades[trade.trade_no] = trade
    state.trade_by_out[out_trade_no] = trade.trade_no
    sim_funds.record_payment(state, order, trade, complete=mode == "COMPLETE")
    mark_paid(state, trade)
    return {**SUCCESS, **trade_view(trade), "auth_no": auth_no}


def find_trade(state: SimState, biz: dict[str, Any]) -> Trade:
    trade_no = str(biz.get("trade_no") or "") or state.trade_by_out.get(str(biz.get("out_trade_no") or ""), "")
    trade = state.trades.get(trade_no)
    if trade is None:
        raise Refusal("ACQ.TRADE_NOT_EXIST", "no such trade")
    return trade


def query(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.trade.query`` by ``trade_no`` or ``out_trade_no``."""
    trade = find_trade(state, biz)
    view = {**SUCCESS, **trade_view(trade), "trade_status": trade.status}
    if trade.paid_at:
        view["send_pay_date"] = format_time(trade.paid_at)
    return view


def close(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.trade.close``: only a trade still waiting for the buyer can be closed."""
    trade = find_trade(state, biz)
    if trade.status != "WAIT_BUYER_PAY":
        raise Refusal("ACQ.TRADE_STATUS_ERROR", f"a {trade.status} trade cannot be closed")
    trade.status, trade.closed_at = "TRADE_CLOSED", state.clock()
    state.notify(trade.notify_url, trade_notice(trade, "TRADE_CLOSED", gmt_close=format_time(trade.closed_at)))
    return {**SUCCESS, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}


def refund(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.trade.refund``: partial and repeated refunds up to what was paid."""
    out_request_no = str(biz.get("out_request_no") or biz.get("trade_no") or biz.get("out_trade_no") or "")
    trade_no = str(biz.get("trade_no") or "")
    if trade_no in state.orders:
        return refund_order(state, state.orders[trade_no], biz, out_request_no)
    trade = find_trade(state, biz)
    amount = amount_of(biz, "refund_amount", trade.currency)
    existing = trade.refunds.get(out_request_no)
    if existing is not None:
        if existing.amount != amount:
            raise Refusal("ACQ.CONTEXT_INCONSISTENT", "out_request_no was used for a different refund")
        return {**SUCCESS, **refund_view(trade), "fund_change": "N"}
    refund_trade(state, trade, out_request_no, amount)
    return {**SUCCESS, **refund_view(trade), "fund_change": "Y"}


def refundable(trade: Trade) -> int:
    return trade.total - trade.refunded if trade.status == "TRADE_SUCCESS" else 0


def refund_trade(state: SimState, trade: Trade, out_request_no: str, amount: int) -> Refund:
    if trade.status == "TRADE_FINISHED":
        raise Refusal("ACQ.TRADE_HAS_FINISHED", "the trade is finished and can no longer be refunded")
    if trade.status != "TRADE_SUCCESS":
        raise Refusal("ACQ.TRADE_STATUS_ERROR", f"a {trade.status} trade cannot be refunded")
    if amount > refundable(trade):
        raise Refusal("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "refund amount exceeds what can be refunded")
    done = Refund(out_request_no=out_request_no, trade_no=trade.trade_no, amount=amount, at=state.clock())
    trade.refunds[out_request_no] = done
    if trade.refunded == trade.total:
        trade.status, trade.closed_at = "TRADE_CLOSED", done.at
    state.settle(kind=RecordType.REFUND, reference=out_request_no, rail_reference=trade.trade_no,
                 amount=amount, currency=trade.currency, rate=trade.rate, at=done.at)
    state.notify(trade.notify_url, trade_notice(
        trade, trade.status, out_biz_no=out_request_no, gmt_refund=format_time(done.at),
        refund_fee=to_major(trade.refunded, trade.currency)))
    return done


def notice_for(state: SimState, reference: str) -> dict[str, str]:
    """The notification parameters of the event the operation ``reference`` caused:
    a freeze or unfreeze of a pre-authorization, a sale or payment from one (its
    ``TRADE_SUCCESS``, or ``WAIT_BUYER_PAY`` / ``TRADE_CLOSED`` while unpaid), or a
    refund (with ``refund_fee`` = what was refunded up to and including it). Callers
    hold ``state.lock``. ``KeyError`` when no event carries that reference (unknown,
    or declined: Alipay does not notify refusals)."""
    if reference in state.order_by_out:
        order = state.orders[state.order_by_out[reference]]
        freeze = next(op for op in order.operations.values() if op.kind == "FREEZE")
        return sim_funds.order_notice(order, freeze)
    if reference in state.trade_by_out:
        trade = state.trades[state.trade_by_out[reference]]
        if trade.paid_at:
            return trade_notice(trade, "TRADE_SUCCESS")
        if trade.closed_at:
            return trade_notice(trade, "TRADE_CLOSED", gmt_close=format_time(trade.closed_at))
        return trade_notice(trade, "WAIT_BUYER_PAY")
    for trade in state.trades.values():
        if reference in trade.refunds:
            refunds = list(trade.refunds)
            refunded = sum(trade.refunds[r].amount for r in refunds[:refunds.index(reference) + 1])
            done = trade.refunds[reference]
            return trade_notice(trade, "TRADE_CLOSED" if refunded == trade.total else "TRADE_SUCCESS",
                                out_biz_no=reference, gmt_refund=format_time(done.at),
                                refund_fee=to_major(refunded, trade.currency))
    for order in state.orders.values():
        op = order.operations.get(reference)
        if op is not None and op.kind == "UNFREEZE":
            return sim_funds.order_notice(order, op)
    raise KeyError(reference)


def refund_view(trade: Trade) -> Response:
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_user_id": trade.buyer_id,
            "refund_fee": to_major(trade.refunded, trade.currency)}


def refund_query(state: SimState, biz: dict[str, Any], notify_url: str | None) -> Response:
    """``alipay.trade.fastpay.refund.query``: answers 10000 without ``refund_status``
    when there is no refund by that ``out_request_no`` (as Alipay does)."""
    out_request_no = required(biz, "out_request_no")
    trade_no = str(biz.get("trade_no") or "")
    if trade_no in state.orders:
        return refund_order_query(state.orders[trade_no], out_request_no)
    trade = find_trade(state, biz)
    answer: Response = {**SUCCESS, "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
                        "out_request_no": out_request_no}
    done = trade.refunds.get(out_request_no)
    if done is not None:
        answer.update(refund_status="REFUND_SUCCESS", refund_amount=to_major(done.amount, trade.currency),
                      total_amount=to_major(trade.total, trade.currency), gmt_refund_pay=format_time(done.at))
        if trade.currency != HOME_CURRENCY:
            answer["refund_currency"] = trade.currency
    return answer


def refund_order(state: SimState, order: AuthOrder, biz: dict[str, Any], out_request_no: str) -> Response:
    """A refund naming a pre-authorization: taken from its paid trades, newest first."""
    amount = amount_of(biz, "refund_amount", order.currency)
    done = order.refunds.get(out_request_no)
    if done is not None:
        if sum(r.amount for r in done) != amount:
            raise Refusal("ACQ.CONTEXT_INCONSISTENT", "out_request_no was used for a different refund")
        return {**SUCCESS, **_order_refund_view(state, order), "fund_change": "N"}
    trades = [state.trades[t] for t in reversed(order.trades)]
    if amount > sum(refundable(t) for t in trades):
        raise Refusal("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "refund amount exceeds what was paid from the order")
    parts: list[Refund] = []
    left = amount
    for trade in trades:
        take = min(left, refundable(trade))
        if take:
            parts.append(refund_trade(state, trade, out_request_no, take))
            left -= take
        if not left:
            break
    order.refunds[out_request_no] = parts
    return {**SUCCESS, **_order_refund_view(state, order), "fund_change": "Y"}


def _order_refund_view(state: SimState, order: AuthOrder) -> Response:
    refunded = sum(state.trades[t].refunded for t in order.trades)
    return {"trade_no": order.auth_no, "out_trade_no": order.out_order_no, "buyer_user_id": order.payer_id,
            "refund_fee": to_major(refunded, order.currency)}


def refund_order_query(order: AuthOrder, out_request_no: str) -> Response:
    answer: Response = {**SUCCESS, "trade_no": order.auth_no, "out_trade_no": order.out_order_no,
                        "out_request_no": out_request_no}
    parts = order.refunds.get(out_request_no)
    if parts:
        answer.update(refund_status="REFUND_SUCCESS",
                      refund_amount=to_major(sum(p.amount for p in parts), order.currency),
                      total_amount=to_major(order.paid, order.currency),
                      gmt_refund_pay=format_time(parts[-1].at))
        if order.currency != HOME_CURRENCY:
            answer["refund_currency"] = order.currency
    return answer
