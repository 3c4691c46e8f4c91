"""The discrepancy injection every simulator shares (:mod:`adapters.simulation`), on
records built by hand: what each kind does, and what is not applied when it cannot be."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import Discrepancy, DiscrepancyKind, RecordType, SettlementRecord
from adapters.simulation import (
    RANDOM_KINDS,
    DiscrepancyNotCarried,
    apply_discrepancies,
    plan_random,
    random_kinds,
    refuse_uncarried,
)

DAY = dt.date(2026, 1, 6)


def payment(reference: str, gross: int = 100_00, *, currency: str = "RUB", rate: Decimal | None = None,
            settles_in: str | None = None, settlement_amount: int | None = None) -> SettlementRecord:
    fee = gross // 100
    return SettlementRecord(rail="sim", line_number=0, record_type=RecordType.PAYMENT,
                            rail_reference=f"T{reference}", reference=reference, gross=gross, fee=fee,
                            net=gross - fee, currency=currency, transaction_date=DAY - dt.timedelta(days=1),
                            settlement_date=DAY, rrn=f"R{reference}", settlement_amount=settlement_amount,
                            settlement_currency=settles_in, fx_rate=rate)


def test_reversals_keep_the_payments_references_and_get_their_own_id() -> None:
    records = [payment("p1"), payment("p2", 250_00)]
    injected = [Discrepancy(DiscrepancyKind.REFUND, "p1", delta=30_00),
                Discrepancy(DiscrepancyKind.CHARGEBACK, "p2")]
    written, held, applied = apply_discrepancies(records, injected, rail="sim", settlement_date=DAY,
                                                 chargeback_fee=15_00, operation_id=lambda r: f"OP{r.reference}")
    assert (held, applied) == ([], injected)
    refund, chargeback = written[2:]
    assert (refund.record_type, refund.reference, refund.rail_reference, refund.rrn) == (
        RecordType.REFUND, "p1", "Tp1", "OPp1")
    assert (refund.gross, refund.fee, refund.net) == (-30_00, 0, -30_00)
    assert (chargeback.record_type, chargeback.reference, chargeback.rail_reference, chargeback.rrn) == (
        RecordType.CHARGEBACK, "p2", "Tp2", "OPp2")
    assert (chargeback.gross, chargeback.fee, chargeback.net) == (-250_00, 15_00, -265_00)
    assert written[:2] == records, "the payments themselves are untouched"


def test_the_default_operation_id_is_a_fresh_twelve_digit_number() -> None:
    written, _, _ = apply_discrepancies([payment("p1")], [Discrepancy(DiscrepancyKind.REFUND, "p1")] * 2,
                                        rail="sim", settlement_date=DAY)
    ids = [r.rrn for r in written[1:]]
    assert all(len(i) == 12 and i.isdigit() for i in ids)
    assert len(set(ids)) == 2
    assert "Rp1" not in ids


def test_a_rate_difference_needs_a_converted_record() -> None:
    plain = payment("p1")
    written, _, applied = apply_discrepancies(
        [plain], [Discrepancy(DiscrepancyKind.FX_RATE_DIFFERS, "p1", rate=Decimal("0.08"))], rail="sim",
        settlement_date=DAY)
    assert (written, applied) == ([plain], [])


def test_a_rate_difference_converts_between_the_currencies_exponents() -> None:
    yen = payment("p1", 10_000, currency="JPY", rate=Decimal("0.048"), settles_in="CNY", settlement_amount=475_20)
    injected = [Discrepancy(DiscrepancyKind.FX_RATE_DIFFERS, "p1", rate=Decimal("0.05"))]
    [written], _, applied = apply_discrepancies([yen], injected, rail="sim", settlement_date=DAY)
    assert applied == injected
    # 9,900 yen (net) at 0.05 CNY per yen is 495.00 CNY: 49,500 fen, not 495.
    assert (written.fx_rate, written.settlement_amount, written.settlement_currency) == (
        Decimal("0.05"), 495_00, "CNY")


def test_unknown_records_take_an_invented_reference_and_need_a_currency() -> None:
    nothing, _, applied = apply_discrepancies([], [Discrepancy(DiscrepancyKind.UNKNOWN, delta=5_00)], rail="sim",
                                              settlement_date=DAY)
    assert (nothing, applied) == ([], [])
    [stranger], _, applied = apply_discrepancies([], [Discrepancy(DiscrepancyKind.UNKNOWN, delta=5_00)],
                                                 rail="sim", settlement_date=DAY, currency="HKD")
    assert len(applied) == 1
    assert stranger.reference.startswith("UNKNOWN")
    assert stranger.rail_reference.startswith("UNK")
    assert (stranger.gross, stranger.net, stranger.currency) == (5_00, 5_00, "HKD")
    named, _, _ = apply_discrepancies([payment("p1")], [Discrepancy(DiscrepancyKind.UNKNOWN, "who")],
                                      rail="sim", settlement_date=DAY)
    assert (named[1].reference, named[1].currency, named[1].gross) == ("who", "RUB", 100_00)


def test_late_records_are_held_back_and_other_kinds_change_one_record() -> None:
    records = [payment(f"p{i}") for i in range(4)]
    injected = [Discrepancy(DiscrepancyKind.LATE, "p0"), Discrepancy(DiscrepancyKind.MISSING, "p1"),
                Discrepancy(DiscrepancyKind.FEE_DIFFERS, "p2", delta=7),
                Discrepancy(DiscrepancyKind.AMOUNT_DIFFERS, "p3", delta=-3),
                Discrepancy(DiscrepancyKind.DUPLICATE, "nobody")]
    written, held, applied = apply_discrepancies(records, injected, rail="sim", settlement_date=DAY)
    assert applied == injected[:4], "a discrepancy for a reference not in the file is not applied"
    assert [r.reference for r in held] == ["p0"]
    assert written == [dataclasses.replace(records[2], fee=records[2].fee + 7, net=records[2].net - 7),
                       dataclasses.replace(records[3], gross=records[3].gross - 3, net=records[3].net - 3)]


NO_RATES = {DiscrepancyKind.FX_RATE_DIFFERS: "this file has no rate field"}


def test_a_kind_the_file_cannot_carry_is_refused_by_rail_and_kind() -> None:
    asked = [Discrepancy(DiscrepancyKind.MISSING, "p1"), Discrepancy(DiscrepancyKind.FX_RATE_DIFFERS, "p2")]
    with pytest.raises(DiscrepancyNotCarried) as refused:
        refuse_uncarried("sim", asked, NO_RATES)
    assert isinstance(refused.value, ValueError)
    assert refused.value.code == "discrepancy_not_carried"
    assert (refused.value.rail, refused.value.kind, refused.value.why) == (
        "sim", DiscrepancyKind.FX_RATE_DIFFERS, "this file has no rate field")
    assert str(refused.value) == "the sim settlement file cannot carry FX_RATE_DIFFERS: this file has no rate field"
    refuse_uncarried("sim", asked[:1], NO_RATES)
    refuse_uncarried("sim", asked, {})


@given(st.integers(0, 2**32), st.integers(1, 40))
def test_a_seeded_run_picks_only_kinds_the_file_carries(seed: int, count: int) -> None:
    kinds = random_kinds(NO_RATES)
    assert DiscrepancyKind.FX_RATE_DIFFERS not in kinds
    assert random_kinds({}) == RANDOM_KINDS
    records = [payment(f"p{n}") for n in range(count)]
    planned = plan_random(records, seed, Decimal(1), kinds)
    assert len(planned) == count
    assert {d.kind for d in planned} <= set(kinds)
    refuse_uncarried("sim", planned, NO_RATES)
