"""Payouts (代付, txnType 12): answer, query, notification and settlement record."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from adapters.base import (
    Declined,
    Malformed,
    PayoutRequest,
    QueryRequest,
    RecordType,
    SettlementRecord,
    TxnStatus,
)
from adapters.testing import new_reference
from adapters.unionpay import UnionPayRail, UnionPaySimulator
from adapters.unionpay.constants import BEIJING, TestCards

from .conftest import CNY, Receiver


def test_payout_pays_notifies_and_settles(gateway: UnionPaySimulator, rail: UnionPayRail,
                                          receiver: Receiver) -> None:
    request = PayoutRequest(new_reference("pay"), 1_234_00, CNY, destination=TestCards.APPROVE,
                            beneficiary_name="李四")
    paid = rail.payout(request)
    assert (paid.status, paid.amount, paid.raw["txnType"]) == (TxnStatus.CAPTURED, 1_234_00, "12")
    assert paid.raw["bizType"] == "000401"
    queried = rail.query(QueryRequest(request.reference, operation="payout"))
    assert (queried.status, queried.rail_reference) == (TxnStatus.CAPTURED, paid.rail_reference)

    receiver.wait_for(lambda got: any(n.reference == request.reference for n in got))
    notification = next(n for n in receiver.accepted if n.reference == request.reference)
    assert (notification.status, notification.amount) == (TxnStatus.CAPTURED, 1_234_00)

    buffer = io.BytesIO()
    gateway.write_settlement_file(buffer, dt.datetime.now(BEIJING).date() + dt.timedelta(days=1))
    buffer.seek(0)
    records = [r for r in rail.parse_settlement_file(buffer)
               if isinstance(r, SettlementRecord) and r.reference == request.reference]
    assert [(r.record_type, r.gross, r.net) for r in records] == [(RecordType.PAYOUT, -1_234_00, -1_234_00)]


def test_a_deferred_payout_is_pending_until_it_resolves(gateway: UnionPaySimulator, rail: UnionPayRail,
                                                        receiver: Receiver) -> None:
    request = PayoutRequest(new_reference("pay"), 500_05, CNY, destination=TestCards.APPROVE)
    assert rail.payout(request).status is TxnStatus.PENDING
    receiver.wait_for(lambda got: any(n.reference == request.reference for n in got))
    assert rail.query(QueryRequest(request.reference, operation="payout")).status is TxnStatus.CAPTURED


def test_payouts_to_bad_destinations_are_refused(rail: UnionPayRail) -> None:
    with pytest.raises(Declined) as invalid:
        rail.payout(PayoutRequest(new_reference("pay"), 10_00, CNY, destination="6216261000000000019"))
    assert invalid.value.rail_code == "61"
    with pytest.raises(Declined) as blocked:
        rail.payout(PayoutRequest(new_reference("pay"), 10_00, CNY, destination=TestCards.CARD_BLOCKED))
    assert blocked.value.rail_code == "63"
    with pytest.raises(Malformed):
        rail.payout(PayoutRequest(new_reference("pay"), 10_00, CNY, destination="IBAN DE00"))
