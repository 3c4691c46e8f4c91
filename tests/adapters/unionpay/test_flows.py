"""Money flows through the client against the simulator over HTTP: pre-authorization
with several completions, sale, refund, cancel, declines, and the documented
amounts that make the gateway time out, defer or refuse."""

from __future__ import annotations

import datetime as dt
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from adapters.base import (
    AuthorizeRequest,
    CaptureRequest,
    Declined,
    Malformed,
    MethodKind,
    PaymentMethod,
    QueryRequest,
    RailTimeout,
    RailUnavailable,
    RecordType,
    RefundRequest,
    SettlementRecord,
    TxnStatus,
    Unsupported,
    VoidRequest,
)
from adapters.testing import new_reference
from adapters.unionpay import UnionPayRail, UnionPaySimulator
from adapters.unionpay.constants import BEIJING, TestCards
from adapters.unionpay.files import parse_zm

from .conftest import CNY, card_request


def _settled(gateway: UnionPaySimulator, reference: str) -> list[SettlementRecord]:
    buffer = io.BytesIO()
    gateway.write_settlement_file(buffer, dt.datetime.now(BEIJING).date() + dt.timedelta(days=1))
    buffer.seek(0)
    return [r for r in parse_zm(buffer) if isinstance(r, SettlementRecord) and r.reference == reference]


def test_preauth_two_partial_completions_partial_refund_and_cancel_of_the_rest(
        gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    request = card_request(gateway, 100_00)
    held = rail.authorize(request)
    assert held.status is TxnStatus.AUTHORIZED
    assert held.amount == 100_00
    query_id = held.rail_reference
    assert len(query_id) == 21
    assert query_id.isdigit()

    first = rail.capture(CaptureRequest(new_reference("cap"), query_id, 30_00, CNY, final=False))
    second = rail.capture(CaptureRequest(new_reference("cap"), query_id, 20_00, CNY, final=False))
    assert (first.status, first.amount, second.amount) == (TxnStatus.CAPTURED, 30_00, 20_00)
    assert first.rail_reference == second.rail_reference == query_id
    assert gateway.transaction_status(request.reference) is TxnStatus.CAPTURED

    refund = rail.refund(RefundRequest(new_reference("ref"), query_id, 15_00, CNY))
    assert (refund.status, refund.amount) == (TxnStatus.REFUNDED, 15_00)

    with pytest.raises(Declined) as wrong_rest:
        rail.void(VoidRequest(new_reference("void"), query_id, 100_00, CNY))
    assert wrong_rest.value.rail_code == "36"
    voided = rail.void(VoidRequest(new_reference("void"), query_id, 50_00, CNY))
    assert (voided.status, voided.amount) == (TxnStatus.VOIDED, 50_00)
    with pytest.raises(Declined) as after_cancel:
        rail.capture(CaptureRequest(new_reference("cap"), query_id, 1_00, CNY))
    assert after_cancel.value.rail_code == "35"

    assert rail.query(QueryRequest(request.reference)).status is TxnStatus.AUTHORIZED
    settled = _settled(gateway, request.reference)
    assert sorted((r.record_type, r.gross, r.fee) for r in settled) == [
        (RecordType.PAYMENT, 20_00, 12), (RecordType.PAYMENT, 30_00, 18), (RecordType.REFUND, -15_00, 0)]
    assert {r.rail_reference for r in settled} == {query_id}


def test_final_completion_releases_the_rest_as_unionpay_does(
        gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    held = rail.authorize(card_request(gateway, 80_00))
    rail.capture(CaptureRequest(new_reference("cap"), held.rail_reference, 50_00, CNY))
    with pytest.raises(Declined) as more:
        rail.capture(CaptureRequest(new_reference("cap"), held.rail_reference, 10_00, CNY))
    assert more.value.rail_code == "35"


def test_completion_above_the_hold_is_refused(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    held = rail.authorize(card_request(gateway, 10_00))
    with pytest.raises(Declined) as over:
        rail.capture(CaptureRequest(new_reference("cap"), held.rail_reference, 10_01, CNY))
    assert over.value.rail_code == "33"


def test_sale_then_refund_in_full_then_no_more(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    request = card_request(gateway, 88_00, capture=True)
    sale = rail.authorize(request)
    assert sale.status is TxnStatus.CAPTURED
    refund = rail.refund(RefundRequest(new_reference("ref"), sale.rail_reference, 88_00, CNY))
    assert refund.status is TxnStatus.REFUNDED
    assert gateway.transaction_status(request.reference) is TxnStatus.REFUNDED
    with pytest.raises(Declined) as again:
        rail.refund(RefundRequest(new_reference("ref"), sale.rail_reference, 1, CNY))
    assert again.value.rail_code == "33"


def test_void_of_a_same_day_sale_is_a_cancel_that_nets_to_zero(
        gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    request = card_request(gateway, 66_66, capture=True)
    sale = rail.authorize(request)
    voided = rail.void(VoidRequest(new_reference("void"), sale.rail_reference, 66_66, CNY))
    assert voided.status is TxnStatus.VOIDED
    assert voided.raw["txnType"] == "31"
    assert gateway.transaction_status(request.reference) is TxnStatus.VOIDED
    settled = _settled(gateway, request.reference)
    assert sum(r.net for r in settled) == 0
    assert len(settled) == 2


@pytest.mark.parametrize(("pan", "code"), sorted(TestCards.DECLINES.items()))
def test_declined_cards_surface_the_resp_code(gateway: UnionPaySimulator, rail: UnionPayRail,
                                              pan: str, code: str) -> None:
    request = AuthorizeRequest(new_reference("up"), 10_00, CNY, PaymentMethod(MethodKind.CARD, pan=pan))
    with pytest.raises(Declined) as declined:
        rail.authorize(request)
    assert declined.value.rail_code == code
    assert rail.query(QueryRequest(request.reference)).status is TxnStatus.DECLINED


@pytest.mark.parametrize(("pan", "expiry", "code"), [("6216261000000000019", "3012", "61"),
                                                     ("4111111111111111", "3012", "61"),
                                                     (TestCards.APPROVE, "2001", "73")])
def test_invalid_or_expired_cards(gateway: UnionPaySimulator, rail: UnionPayRail,
                                  pan: str, expiry: str, code: str) -> None:
    request = AuthorizeRequest(new_reference("up"), 10_00, CNY,
                               PaymentMethod(MethodKind.CARD, pan=pan, expiry=expiry))
    with pytest.raises(Declined) as declined:
        rail.authorize(request)
    assert declined.value.rail_code == code


def test_amount_ending_33_is_over_the_limit(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    with pytest.raises(Declined) as declined:
        rail.authorize(card_request(gateway, 12_33))
    assert declined.value.rail_code == "33"


def test_amount_ending_03_times_out_but_query_finds_it_approved(
        gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    request = card_request(gateway, 45_03, capture=True)
    with pytest.raises(RailTimeout):
        rail.authorize(request)
    found = rail.query(QueryRequest(request.reference))
    assert (found.status, found.amount, found.response_code) == (TxnStatus.CAPTURED, 45_03, "00")
    again = rail.authorize(request)     # the retry gets the original outcome, no second sale
    assert (again.status, again.rail_reference) == (TxnStatus.CAPTURED, found.rail_reference)


def test_amount_ending_06_is_busy_and_nothing_happened(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    request = card_request(gateway, 7_06)
    with pytest.raises(RailUnavailable):
        rail.authorize(request)
    assert rail.query(QueryRequest(request.reference)).status is TxnStatus.NOT_FOUND


def test_a_retry_returns_the_original_and_a_reused_reference_is_refused(
        gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    request = card_request(gateway, 25_00)
    first, second = rail.authorize(request), rail.authorize(request)
    assert first.rail_reference == second.rail_reference
    with pytest.raises(Declined) as reused:
        rail.authorize(AuthorizeRequest(request.reference, 26_00, CNY, request.method))
    assert reused.value.rail_code == "12"


def test_query_of_an_unknown_reference_is_not_found(rail: UnionPayRail) -> None:
    result = rail.query(QueryRequest(new_reference("none")))
    assert (result.status, result.response_code) == (TxnStatus.NOT_FOUND, "34")


def test_requests_the_rail_cannot_carry(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    with pytest.raises(Unsupported):
        rail.authorize(AuthorizeRequest(new_reference("up"), 10_00, "RUB", gateway.approving_method()))
    with pytest.raises(Unsupported):
        rail.authorize(AuthorizeRequest(new_reference("up"), 10_00, CNY,
                                        PaymentMethod(MethodKind.WALLET, buyer_id="buyer")))
    with pytest.raises(Malformed, match="letters and digits"):
        rail.authorize(AuthorizeRequest("order-1_x", 10_00, CNY, gateway.approving_method()))
    with pytest.raises(Malformed, match="positive"):
        rail.authorize(AuthorizeRequest(new_reference("up"), 0, CNY, gateway.approving_method()))


def test_front_form_is_accepted_by_front_trans_req(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    url, form = rail.front_form(card_request(gateway, 19_90), front_url="https://shop.example/back")
    page = httpx.post(url, data=form)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert form["orderId"] in page.text
    assert "19.90" in page.text
    tampered = httpx.post(url, data={**form, "txnAmt": "1"})
    assert "respCode=11" in tampered.text


def test_one_rail_serves_many_threads(gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    requests = [card_request(gateway, (10 + i) * 100, capture=True) for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(rail.authorize, requests))
    assert {r.status for r in results} == {TxnStatus.CAPTURED}
    assert len({r.rail_reference for r in results}) == len(requests)
