"""Money flows end to end, against the simulator over HTTP: outcomes at the gateway,
in query answers and in the settlement file."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from adapters.alipay import AlipayRail, AlipaySimulator
from adapters.base import (
    AuthorizeRequest,
    CaptureRequest,
    Declined,
    FxDetail,
    PayoutRequest,
    QueryRequest,
    RailTimeout,
    RecordType,
    RefundRequest,
    SettlementRecord,
    TxnStatus,
    Unsupported,
    VoidRequest,
)
from adapters.testing import new_reference

from .conftest import freeze, wallet

CNY = "CNY"


def settled(sim: AlipaySimulator, rail: AlipayRail) -> list[SettlementRecord]:
    buffer = io.BytesIO()
    sim.write_settlement_file(buffer, dt.date(2026, 1, 6))
    buffer.seek(0)
    items = list(rail.parse_settlement_file(buffer))
    assert all(isinstance(item, SettlementRecord) for item in items), items
    return [item for item in items if isinstance(item, SettlementRecord)]


def test_freeze_two_partial_captures_partial_refund_then_void_the_rest(sim: AlipaySimulator,
                                                                       rail: AlipayRail) -> None:
    order, auth_no = freeze(rail, sim, 1000_00)
    assert rail.query(QueryRequest(reference=order)).status is TxnStatus.AUTHORIZED

    first = CaptureRequest(reference=new_reference("cap"), rail_reference=auth_no, amount=300_00, currency=CNY,
                           final=False)
    captured = rail.capture(first)
    assert (captured.status, captured.amount, captured.rail_reference) == (TxnStatus.CAPTURED, 300_00, auth_no)
    assert rail.capture(first).raw["trade_no"] == captured.raw["trade_no"], "a retried capture paid twice"
    second = rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth_no, amount=200_00,
                                         currency=CNY, final=False))
    assert second.raw["trade_no"] != captured.raw["trade_no"]
    # Each capture is a trade of its own: its trade_no is the result's rrn (the query's too).
    assert (captured.rrn, second.rrn) == (captured.raw["trade_no"], second.raw["trade_no"])
    assert rail.query(QueryRequest(reference=first.reference, operation="capture")).rrn == captured.rrn
    assert rail.query(QueryRequest(reference=order)).raw["rest_amount"] == "500.00"

    refund = RefundRequest(reference=new_reference("ref"), rail_reference=auth_no, amount=150_00, currency=CNY)
    assert rail.refund(refund).status is TxnStatus.REFUNDED
    assert rail.refund(refund).raw["fund_change"] == "N", "a retried refund moved money again"
    found = rail.query(QueryRequest(reference=refund.reference, rail_reference=auth_no, operation="refund"))
    assert (found.status, found.amount) == (TxnStatus.REFUNDED, 150_00)

    with pytest.raises(Declined) as too_much:
        rail.void(VoidRequest(reference=new_reference("void"), rail_reference=auth_no, amount=500_01, currency=CNY))
    assert too_much.value.rail_code == "REQUEST_AMOUNT_EXCEED"
    voided = rail.void(VoidRequest(reference=new_reference("void"), rail_reference=auth_no, amount=500_00,
                                   currency=CNY))
    assert voided.status is TxnStatus.CAPTURED  # the order stands captured; nothing remains frozen
    assert voided.raw["rest_amount"] == "0.00"
    with pytest.raises(Declined) as after:
        rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth_no, amount=1_00,
                                    currency=CNY))
    assert after.value.rail_code == "ORDER_ALREADY_FINISH"
    with pytest.raises(Declined) as over_refund:
        rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=auth_no, amount=350_01,
                                  currency=CNY))
    assert over_refund.value.rail_code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert sim.transaction_status(order) is TxnStatus.REFUNDED

    records = settled(sim, rail)
    payments = sorted((r.gross, r.fee, r.net, r.rail_reference, r.rrn) for r in records
                      if r.reference == order and r.record_type is RecordType.PAYMENT)
    # Listed under the authorization's reference, each capture with its own trade_no in
    # both rail_reference and rrn: the key its expectation (auth_no, rrn) shares with it.
    assert payments == [(200_00, 1_20, 198_80, second.rrn, second.rrn),
                        (300_00, 1_80, 298_20, captured.rrn, captured.rrn)]
    refunds = [r for r in records if r.reference == refund.reference]
    assert [(r.record_type, r.gross, r.net, r.rail_reference) for r in refunds] == [
        (RecordType.REFUND, -150_00, -150_00, second.raw["trade_no"])]


def test_final_capture_unfreezes_the_rest(sim: AlipaySimulator, rail: AlipayRail) -> None:
    order, auth_no = freeze(rail, sim, 80_00)
    rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth_no, amount=30_00, currency=CNY))
    state = rail.query(QueryRequest(reference=order))
    assert (state.status, state.raw["order_status"], state.raw["rest_amount"]) == (
        TxnStatus.CAPTURED, "FINISH", "0.00")


def test_sale_with_several_partial_refunds(sim: AlipaySimulator, rail: AlipayRail) -> None:
    request = AuthorizeRequest(reference=new_reference("sale"), amount=250_00, currency=CNY,
                               method=sim.approving_method(), capture=True)
    sold = rail.authorize(request)
    assert (sold.status, sold.amount, sold.fx) == (TxnStatus.CAPTURED, 250_00, None)
    assert rail.authorize(request).rail_reference == sold.rail_reference
    for amount in (100_00, 50_00):
        done = rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=sold.rail_reference,
                                         amount=amount, currency=CNY, reason="returned goods"))
        assert (done.status, done.amount) == (TxnStatus.REFUNDED, amount)
    assert rail.query(QueryRequest(reference=request.reference)).status is TxnStatus.CAPTURED
    rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=sold.rail_reference, amount=100_00,
                              currency=CNY))
    closed = rail.query(QueryRequest(reference=request.reference))
    assert (closed.status, closed.raw["trade_status"]) == (TxnStatus.REFUNDED, "TRADE_CLOSED")
    records = [r for r in settled(sim, rail) if r.rail_reference == sold.rail_reference]
    assert sorted(r.gross for r in records) == [-100_00, -100_00, -50_00, 250_00]
    assert sum(r.net for r in records) == 250_00 - 1_50 - 250_00


def test_forex_sale_reports_rmb_amount_and_rate(sim: AlipaySimulator, rail: AlipayRail) -> None:
    request = AuthorizeRequest(reference=new_reference("fx"), amount=10_000_00, currency="RUB",
                               method=sim.approving_method(), capture=True)
    sold = rail.authorize(request)
    assert sold.currency == "RUB"
    assert sold.fx == FxDetail(rate=Decimal("0.0785"), settlement_amount=785_00, settlement_currency=CNY)
    assert sold.raw["trans_currency"] == "RUB"
    [record] = [r for r in settled(sim, rail) if r.reference == request.reference]
    assert (record.currency, record.gross, record.fee) == ("RUB", 10_000_00, 120_00)  # 1.2% cross-border
    assert (record.fx_rate, record.settlement_currency) == (Decimal("0.0785"), CNY)
    assert record.settlement_amount == 775_58  # 9880.00 RUB net at 0.0785 CNY, half up


def test_forex_preauthorization_captures_at_the_frozen_rate(sim: AlipaySimulator, rail: AlipayRail) -> None:
    _, auth_no = freeze(rail, sim, 100_00, "USD")
    captured = rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth_no, amount=40_00,
                                           currency="USD"))
    assert captured.fx == FxDetail(rate=Decimal("7.1234"), settlement_amount=284_94, settlement_currency=CNY)
    with pytest.raises(Declined):
        rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth_no, amount=1_00,
                                    currency="USD"))


def test_unsupported_currency_is_refused_before_any_call(sim: AlipaySimulator, rail: AlipayRail) -> None:
    with pytest.raises(Unsupported):
        rail.authorize(AuthorizeRequest(reference=new_reference(), amount=1_00, currency="JPY",
                                        method=sim.approving_method(), capture=True))


def test_forex_rates_come_from_the_rate_file(sim: AlipaySimulator, rail: AlipayRail) -> None:
    assert rail.forex_rates() == {"EUR/CNY": Decimal("7.7415"), "HKD/CNY": Decimal("0.9123"),
                                  "RUB/CNY": Decimal("0.0785"), "USD/CNY": Decimal("7.1234")}
    published = {rate.published_at for rate in rail.forex_rate_file()}
    assert len(published) == 1
    assert published.pop().utcoffset() == dt.timedelta(hours=8)


def test_payout_to_a_seller(sim: AlipaySimulator, rail: AlipayRail) -> None:
    request = PayoutRequest(reference=new_reference("pay"), amount=1234_56, currency=CNY,
                            destination="2088102100000777", beneficiary_name="Seller Ltd")
    paid = rail.payout(request)
    assert (paid.status, paid.amount) == (TxnStatus.CAPTURED, 1234_56)
    assert rail.payout(request).rail_reference == paid.rail_reference
    queried = rail.query(QueryRequest(reference=request.reference, operation="payout"))
    assert (queried.status, queried.rail_reference) == (TxnStatus.CAPTURED, paid.rail_reference)
    [record] = [r for r in settled(sim, rail) if r.reference == request.reference]
    assert (record.record_type, record.gross, record.net) == (RecordType.PAYOUT, -1234_56, -1234_56)
    with pytest.raises(Unsupported):
        rail.payout(PayoutRequest(reference=new_reference("pay"), amount=1_00, currency="RUB", destination="x"))


@pytest.mark.parametrize(("destination", "amount", "code"), [
    ("2088102100000009", 10_00, "PAYEE_NOT_EXIST"),
    ("2088102100000777", 50_000_01, "EXCEED_LIMIT_SM_AMOUNT"),
])
def test_refused_payouts(rail: AlipayRail, destination: str, amount: int, code: str) -> None:
    with pytest.raises(Declined) as refused:
        rail.payout(PayoutRequest(reference=new_reference("pay"), amount=amount, currency=CNY,
                                  destination=destination))
    assert refused.value.rail_code == code


def test_sale_waiting_for_the_buyer_can_be_closed_or_confirmed(sim: AlipaySimulator, rail: AlipayRail) -> None:
    waiting = wallet("2088102100000004")
    abandoned = AuthorizeRequest(reference=new_reference("wait"), amount=60_00, currency=CNY, method=waiting,
                                 capture=True)
    pending = rail.authorize(abandoned)
    assert pending.status is TxnStatus.PENDING
    assert rail.query(QueryRequest(reference=abandoned.reference)).status is TxnStatus.PENDING
    voided = rail.void(VoidRequest(reference=new_reference("void"), rail_reference=pending.rail_reference,
                                   amount=60_00, currency=CNY))
    assert voided.status is TxnStatus.VOIDED
    assert rail.query(QueryRequest(reference=abandoned.reference)).status is TxnStatus.VOIDED

    confirmed = AuthorizeRequest(reference=new_reference("wait"), amount=70_00, currency=CNY, method=waiting,
                                 capture=True)
    rail.authorize(confirmed)
    sim.confirm_payment(confirmed.reference)
    assert rail.query(QueryRequest(reference=confirmed.reference)).status is TxnStatus.CAPTURED


def test_lost_answer_is_a_timeout_and_query_tells_the_truth(sim: AlipaySimulator, rail: AlipayRail) -> None:
    request = AuthorizeRequest(reference=new_reference("lost"), amount=666_66, currency=CNY,
                               method=sim.approving_method(), capture=True)
    with pytest.raises(RailTimeout):
        rail.authorize(request)
    assert rail.query(QueryRequest(reference=request.reference)).status is TxnStatus.CAPTURED
    assert rail.authorize(request).status is TxnStatus.CAPTURED  # the retry answers the original


@pytest.mark.parametrize(("buyer", "amount", "code"), [
    ("2088102100000002", 10_00, "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
    ("2088102100000003", 10_00, "ACQ.BUYER_ENABLE_STATUS_FORBID"),
    ("2088102100000001", 555_55, "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR"),
    ("2088102100000001", 1_000_000_01, "ACQ.TOTAL_FEE_EXCEED"),
])
@pytest.mark.parametrize("capture", [True, False], ids=["sale", "freeze"])
def test_declines_carry_the_sub_code_and_repeat(sim: AlipaySimulator, rail: AlipayRail, buyer: str, amount: int,
                                                code: str, capture: bool) -> None:
    request = AuthorizeRequest(reference=new_reference("dec"), amount=amount, currency=CNY, method=wallet(buyer),
                               capture=capture)
    for _ in range(2):
        with pytest.raises(Declined) as declined:
            rail.authorize(request)
        assert declined.value.rail_code == code
    assert sim.transaction_status(request.reference) is TxnStatus.DECLINED


def test_unknown_references_are_not_found(rail: AlipayRail) -> None:
    assert rail.query(QueryRequest(reference=new_reference("none"))).status is TxnStatus.NOT_FOUND
    assert rail.query(QueryRequest(reference=new_reference("none"), operation="payout")).status is (
        TxnStatus.NOT_FOUND)
