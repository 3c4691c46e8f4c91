"""Payment flows between the adapter and the simulated host, over real TCP sockets."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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
from adapters.mir import MirRail, MirSimulator
from adapters.mir.terms import moscow_now
from adapters.testing import new_reference

from .conftest import RUB, authorize_request, rail_for


def card(pan: str, expiry: str | None = "3112") -> PaymentMethod:
    return PaymentMethod(kind=MethodKind.CARD, pan=pan, expiry=expiry)


def capture(rrn: str, amount: int, *, final: bool = True) -> CaptureRequest:
    return CaptureRequest(reference=new_reference("cap"), rail_reference=rrn, amount=amount,
                          currency=RUB, final=final)


def test_authorize_capture_refund_round_trip(sim: MirSimulator, rail: MirRail) -> None:
    auth = rail.authorize(authorize_request(sim.approving_method(), 1500_00))
    assert auth.status is TxnStatus.AUTHORIZED
    assert auth.amount == 1500_00
    assert auth.response_code == "00"
    assert len(auth.approval_code) == 6
    assert auth.rrn == auth.rail_reference
    assert len(auth.rrn) == 12

    captured = rail.capture(capture(auth.rail_reference, 1500_00))
    assert (captured.status, captured.amount, captured.rail_reference) == (
        TxnStatus.CAPTURED, 1500_00, auth.rail_reference)
    assert captured.rrn != auth.rrn, "a completion has its own RRN"

    refund = rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=auth.rail_reference,
                                       amount=500_00, currency=RUB))
    assert (refund.status, refund.amount) == (TxnStatus.REFUNDED, 500_00)
    assert sim.transaction_status(auth.reference) is TxnStatus.REFUNDED


def test_sale_captures_at_once_and_cannot_be_voided(sim: MirSimulator, rail: MirRail) -> None:
    sale = rail.authorize(authorize_request(sim.approving_method(), 700_00, capture=True))
    assert sale.status is TxnStatus.CAPTURED
    with pytest.raises(Declined) as caught:
        rail.void(VoidRequest(reference=new_reference("void"), rail_reference=sale.rail_reference,
                              amount=700_00, currency=RUB))
    assert caught.value.rail_code == "12"


def test_partial_captures_then_reversal_of_the_rest(sim: MirSimulator, rail: MirRail) -> None:
    auth = rail.authorize(authorize_request(sim.approving_method(), 1000_00))
    first = rail.capture(capture(auth.rail_reference, 300_00, final=False))
    second = rail.capture(capture(auth.rail_reference, 200_00, final=False))
    assert (first.amount, second.amount) == (300_00, 200_00)
    assert second.status is TxnStatus.CAPTURED

    with pytest.raises(Declined) as too_much:
        rail.capture(capture(auth.rail_reference, 500_01, final=False))
    assert too_much.value.rail_code == "13"

    released = rail.void(VoidRequest(reference=new_reference("void"), rail_reference=auth.rail_reference,
                                     amount=500_00, currency=RUB))
    assert released.amount == 500_00, "the reversal releases exactly the uncaptured rest"
    assert released.status is TxnStatus.CAPTURED, "what was captured stays captured"
    with pytest.raises(Declined) as after_void:
        rail.capture(capture(auth.rail_reference, 1_00))
    assert after_void.value.rail_code == "12"

    buffer = io.BytesIO()
    sim.write_settlement_file(buffer, moscow_now().date())
    buffer.seek(0)
    payments = [r for r in rail.parse_settlement_file(buffer)
                if isinstance(r, SettlementRecord) and r.record_type is RecordType.PAYMENT]
    assert sorted(r.gross for r in payments) == [200_00, 300_00]
    assert {r.reference for r in payments} == {auth.reference}
    assert {r.rail_reference for r in payments} == {auth.rail_reference}


def test_a_final_partial_capture_releases_the_rest(sim: MirSimulator, rail: MirRail) -> None:
    auth = rail.authorize(authorize_request(sim.approving_method(), 100_00))
    rail.capture(capture(auth.rail_reference, 60_00, final=True))
    with pytest.raises(Declined) as caught:
        rail.capture(capture(auth.rail_reference, 10_00))
    assert caught.value.rail_code == "12"


def test_refunds_cannot_exceed_what_was_captured(sim: MirSimulator, rail: MirRail) -> None:
    sale = rail.authorize(authorize_request(sim.approving_method(), 100_00, capture=True))
    rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=sale.rail_reference,
                              amount=60_00, currency=RUB))
    with pytest.raises(Declined) as caught:
        rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=sale.rail_reference,
                                  amount=40_01, currency=RUB))
    assert caught.value.rail_code == "13"
    unknown = RefundRequest(reference=new_reference("ref"), rail_reference="000000000001", amount=1_00,
                            currency=RUB)
    with pytest.raises(Declined) as missing:
        rail.refund(unknown)
    assert missing.value.rail_code == "25"


@pytest.mark.parametrize(("pan", "amount", "code"), [
    ("2204000000000059", 10_00, "05"),
    ("2204000000000547", 10_00, "54"),
    ("2204000000000430", 10_00, "43"),
    ("2204000000000620", 10_00, "62"),
    ("2200000000000004", 100_51, "51"),
    ("2200000000000004", 1_000_000_00, "61"),
])
def test_declines_carry_the_hosts_code(sim: MirSimulator, rail: MirRail, pan: str, amount: int,
                                       code: str) -> None:
    request = authorize_request(card(pan), amount)
    with pytest.raises(Declined) as caught:
        rail.authorize(request)
    assert caught.value.rail_code == code
    assert sim.transaction_status(request.reference) is TxnStatus.DECLINED
    again = rail.query(QueryRequest(reference=request.reference))
    assert (again.status, again.response_code, again.amount) == (TxnStatus.DECLINED, code, 0)


def test_an_expired_card_is_declined_54(sim: MirSimulator, rail: MirRail) -> None:
    with pytest.raises(Declined) as caught:
        rail.authorize(authorize_request(card("2200000000000004", expiry="2001"), 10_00))
    assert caught.value.rail_code == "54"


def test_cards_are_checked_before_sending(rail: MirRail) -> None:
    with pytest.raises(Declined) as luhn:
        rail.authorize(authorize_request(card("2200000000000005"), 10_00))
    assert luhn.value.rail_code == "14"
    with pytest.raises(Unsupported):
        rail.authorize(authorize_request(card("4111111111111111"), 10_00))
    with pytest.raises(Unsupported):
        rail.authorize(authorize_request(PaymentMethod(kind=MethodKind.WALLET, buyer_id="x"), 10_00))


def test_requests_outside_the_format_are_refused(sim: MirSimulator, rail: MirRail) -> None:
    method = sim.approving_method()
    with pytest.raises(Unsupported):
        rail.authorize(AuthorizeRequest(reference=new_reference(), amount=10_00, currency="CNY",
                                        method=method))
    for bad_amount in (0, -5, 10**12):
        with pytest.raises(Malformed):
            rail.authorize(authorize_request(method, bad_amount))
    with pytest.raises(Malformed):
        rail.authorize(authorize_request(method, 10_00, reference="has space"))
    with pytest.raises(Malformed):
        rail.capture(capture("not-an-rrn", 10_00))


def test_issuer_unavailable_is_retryable(sim: MirSimulator, rail: MirRail) -> None:
    request = authorize_request(sim.approving_method(), 10_91)
    with pytest.raises(RailUnavailable):
        rail.authorize(request)
    assert sim.transaction_status(request.reference) is TxnStatus.NOT_FOUND


def test_retry_returns_the_original_answer(sim: MirSimulator, rail: MirRail) -> None:
    request = authorize_request(sim.approving_method(), 250_00)
    first = rail.authorize(request)
    second = rail.authorize(request)
    assert (second.rail_reference, second.approval_code, second.amount) == (
        first.rail_reference, first.approval_code, first.amount)
    cap = capture(first.rail_reference, 250_00)
    assert rail.capture(cap).amount == rail.capture(cap).amount == 250_00
    assert len(sim.book) == 1, "a retried capture booked twice"


def test_a_reference_reused_for_another_request_is_refused(sim: MirSimulator, rail: MirRail) -> None:
    request = authorize_request(sim.approving_method(), 250_00)
    rail.authorize(request)
    with pytest.raises(Declined) as caught:
        rail.authorize(authorize_request(sim.approving_method(), 251_00, reference=request.reference))
    assert caught.value.rail_code == "94"


def test_concurrent_calls_from_many_threads(sim: MirSimulator, rail: MirRail) -> None:
    requests = [authorize_request(sim.approving_method(), 10_00 + i, capture=True) for i in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(rail.authorize, requests))
    assert len({r.rail_reference for r in results}) == 40
    assert all(sim.transaction_status(r.reference) is TxnStatus.CAPTURED for r in requests)


def test_query_tells_the_truth_by_reference_only(sim: MirSimulator, rail: MirRail) -> None:
    assert rail.query(QueryRequest(reference=new_reference())).status is TxnStatus.NOT_FOUND
    auth = rail.authorize(authorize_request(sim.approving_method(), 80_00))
    cap_request = capture(auth.rail_reference, 30_00, final=False)
    rail.capture(cap_request)
    by_auth = rail.query(QueryRequest(reference=auth.reference))
    assert (by_auth.status, by_auth.amount, by_auth.rail_reference) == (
        TxnStatus.CAPTURED, 80_00, auth.rail_reference)
    by_capture = rail.query(QueryRequest(reference=cap_request.reference, operation="capture"))
    assert (by_capture.status, by_capture.amount, by_capture.rail_reference) == (
        TxnStatus.CAPTURED, 30_00, auth.rail_reference)
    with pytest.raises(Unsupported):
        rail.query(QueryRequest(reference=auth.reference, operation="payout"))


def test_no_answer_times_out_and_query_finds_the_outcome(sim: MirSimulator) -> None:
    rail = rail_for(sim, timeout="0.3")
    request = authorize_request(sim.approving_method(), 120_68)   # ..68: the host stays silent
    with pytest.raises(RailTimeout):
        rail.authorize(request)
    found = rail.query(QueryRequest(reference=request.reference))
    assert (found.status, found.amount) == (TxnStatus.AUTHORIZED, 120_68)
    assert rail.authorize(request).rail_reference == found.rail_reference, "the retry is answered"


def test_connection_refused_is_unavailable(sim: MirSimulator) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    rail = rail_for(sim, port=str(free_port))
    with pytest.raises(RailUnavailable):
        rail.authorize(authorize_request(sim.approving_method(), 10_00))


@pytest.mark.parametrize(("fault", "message"), [
    ("truncate", "truncated"),
    ("oversize", "oversized"),
    ("garbage", "not an ISO 8583 message"),
])
def test_broken_answers_are_malformed(make_sim: Callable[..., MirSimulator], fault: str,
                                      message: str) -> None:
    sim = make_sim(fault=fault)
    with pytest.raises(Malformed, match=message):
        rail_for(sim).authorize(authorize_request(sim.approving_method(), 10_00))


def test_silence_is_a_timeout(make_sim: Callable[..., MirSimulator]) -> None:
    sim = make_sim(fault="silent")
    request = authorize_request(sim.approving_method(), 10_00)
    with pytest.raises(RailTimeout):
        rail_for(sim, timeout="0.3").authorize(request)
    sim.set_fault("")
    assert rail_for(sim).query(QueryRequest(reference=request.reference)).status is TxnStatus.AUTHORIZED
