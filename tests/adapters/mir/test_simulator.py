"""The simulator's book and its settlement files, with injected discrepancies."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from adapters.base import (
    CaptureRequest,
    Discrepancy,
    DiscrepancyKind,
    RecordError,
    RecordType,
    RefundRequest,
    SettlementRecord,
)
from adapters.mir import MirRail, MirSimulator
from adapters.mir.files import HEADER
from adapters.mir.terms import FEE_SCHEDULE, moscow_now
from adapters.simulation import DiscrepancyNotCarried
from adapters.testing import new_reference

from .conftest import RUB, authorize_request

FILE_DAY = dt.date(2026, 3, 2)


def settle(sim: MirSimulator, rail: MirRail, day: dt.date = FILE_DAY,
           discrepancies: list[Discrepancy] | None = None, seed: int | None = None,
           rate: Decimal = Decimal(0)) -> tuple[list[SettlementRecord], list[Discrepancy], bytes]:
    out = io.BytesIO()
    applied = sim.write_settlement_file(out, day, discrepancies or [], seed=seed, rate=rate)
    items = list(rail.parse_settlement_file(io.BytesIO(out.getvalue())))
    assert not [i for i in items if isinstance(i, RecordError)]
    return [i for i in items if isinstance(i, SettlementRecord)], applied, out.getvalue()


def sales(sim: MirSimulator, rail: MirRail, *amounts: int) -> list[str]:
    return [rail.authorize(authorize_request(sim.approving_method(), a, capture=True)).reference
            for a in amounts]


def test_the_register_carries_payments_and_refunds(sim: MirSimulator, rail: MirRail) -> None:
    auth = rail.authorize(authorize_request(sim.approving_method(), 1000_00))
    cap = rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth.rail_reference,
                                      amount=1000_00, currency=RUB))
    refund_ref = new_reference("ref")
    refund = rail.refund(RefundRequest(reference=refund_ref, rail_reference=auth.rail_reference,
                                       amount=250_00, currency=RUB))
    records, _, raw = settle(sim, rail)
    assert raw.decode().splitlines()[0] == HEADER
    assert raw.decode().splitlines()[-1] == f"TOTAL;2;{1000_00 - 15_00 - 250_00}"
    payment, back = records
    assert (payment.record_type, payment.reference, payment.rail_reference, payment.rrn) == (
        RecordType.PAYMENT, auth.reference, auth.rail_reference, cap.rrn)
    assert (payment.gross, payment.fee, payment.net) == (1000_00, FEE_SCHEDULE.fee_for(1000_00), 985_00)
    assert (back.record_type, back.reference, back.rail_reference, back.rrn) == (
        RecordType.REFUND, refund_ref, auth.rail_reference, refund.rrn)
    assert (back.gross, back.fee, back.net) == (-250_00, 0, -250_00)
    assert payment.transaction_date == moscow_now().date()
    assert {payment.settlement_date, back.settlement_date} == {FILE_DAY}
    assert settle(sim, rail)[0] == [], "a record was written twice"


def test_injected_discrepancies_show_up_as_declared(sim: MirSimulator, rail: MirRail) -> None:
    refs = sales(sim, rail, 100_00, 200_00, 300_00, 400_00, 500_00, 600_00)
    injected = [Discrepancy(DiscrepancyKind.MISSING, refs[0]), Discrepancy(DiscrepancyKind.DUPLICATE, refs[1]),
                Discrepancy(DiscrepancyKind.FEE_DIFFERS, refs[2], delta=7),
                Discrepancy(DiscrepancyKind.LATE, refs[3]),
                Discrepancy(DiscrepancyKind.CHARGEBACK, refs[4]),
                Discrepancy(DiscrepancyKind.AMOUNT_DIFFERS, refs[5], delta=-3),
                Discrepancy(DiscrepancyKind.UNKNOWN, "nobody-asked", delta=77_00)]
    records, applied, _ = settle(sim, rail, discrepancies=injected)
    assert applied == injected
    by_ref: dict[str, list[SettlementRecord]] = {}
    for r in records:
        by_ref.setdefault(r.reference, []).append(r)
    assert refs[0] not in by_ref
    assert len(by_ref[refs[1]]) == 2
    assert by_ref[refs[2]][0].fee == FEE_SCHEDULE.fee_for(300_00) + 7
    assert refs[3] not in by_ref
    assert [r.record_type for r in by_ref[refs[4]]] == [RecordType.PAYMENT, RecordType.CHARGEBACK]
    assert by_ref[refs[5]][0].gross == 600_00 - 3
    assert by_ref["nobody-asked"][0].gross == 77_00

    late, _, _ = settle(sim, rail, FILE_DAY + dt.timedelta(days=1))
    assert [(r.reference, r.settlement_date) for r in late] == [(refs[3], FILE_DAY + dt.timedelta(days=1))]


def test_a_rate_difference_is_refused_by_name_and_the_book_kept(sim: MirSimulator, rail: MirRail) -> None:
    refs = sales(sim, rail, 100_00, 200_00)
    asked = [Discrepancy(DiscrepancyKind.FEE_DIFFERS, refs[0], delta=1),
             Discrepancy(DiscrepancyKind.FX_RATE_DIFFERS, refs[1], rate=Decimal("0.011"))]
    out = io.BytesIO()
    with pytest.raises(DiscrepancyNotCarried, match=r"mir settlement file cannot carry FX_RATE_DIFFERS") as refused:
        sim.write_settlement_file(out, FILE_DAY, asked)
    assert isinstance(refused.value, ValueError)
    assert (refused.value.rail, refused.value.kind) == ("mir", DiscrepancyKind.FX_RATE_DIFFERS)
    assert "RUB" in refused.value.why
    assert out.getvalue() == b"", "a file was written"
    records, applied, _ = settle(sim, rail)
    assert applied == []
    assert sorted(r.reference for r in records) == sorted(refs), "the refusal lost the book's records"


def test_seeded_random_discrepancies_are_reported(sim: MirSimulator, rail: MirRail) -> None:
    refs = sales(sim, rail, *(100_00 + i for i in range(30)))
    records, applied, _ = settle(sim, rail, seed=7, rate=Decimal("0.5"))
    assert applied, "a 50 % rate over 30 payments applied nothing"
    written = {r.reference for r in records}
    for d in applied:
        assert d.reference in refs
        if d.kind in (DiscrepancyKind.MISSING, DiscrepancyKind.LATE):
            assert d.reference not in written
