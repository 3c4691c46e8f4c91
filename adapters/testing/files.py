"""Conformance checks of settlement files: what settled comes back exactly, broken
files fail as the SPI says, and every kind of injected discrepancy shows up as
declared (reproducibly, for a seeded random run)."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from functools import partial

from adapters.base import (
    Capability,
    Discrepancy,
    DiscrepancyKind,
    MalformedFile,
    PaymentRail,
    RailPlugin,
    RailSimulator,
    RecordError,
    RecordType,
    SettlementRecord,
)
from adapters.testing.support import (
    Payment,
    by_reference,
    captured_payment,
    converted,
    expect,
    running,
    settle,
    today,
)

#: Files no rail can take: empty, blank, binary noise, text of another format.
UNUSABLE_FILES: tuple[bytes, ...] = (
    b"",
    b"\r\n",
    bytes(range(256)) * 8,
    b"Date,Description,Amount\r\n2026-01-05,coffee,3.50\r\n2026-01-06,tea,2.10\r\n",
)
_DIGIT = re.compile(rb"[0-9]")


def _settlement_day() -> dt.date:
    return today() + dt.timedelta(days=1)


def check_file_round_trip(plugin: RailPlugin) -> None:
    """Every captured payment comes back once in the settlement file with its amount,
    currency, the schedule's fee, the settlement date asked for and a transaction date
    of today; MISSING and DUPLICATE show up as declared."""
    with running(plugin) as (sim, rail):
        payments = [captured_payment(rail, sim, amount) for amount in (100_00, 250_50, 999_99, 12_34)]
        missing, duplicated = payments[0].reference, payments[1].reference
        injected = [Discrepancy(DiscrepancyKind.MISSING, reference=missing),
                    Discrepancy(DiscrepancyKind.DUPLICATE, reference=duplicated)]
        day = _settlement_day()
        records, applied, _ = settle(sim, rail, day, injected)
        assert applied == injected, f"asked for {injected}, the simulator applied {applied}"
        mine = by_reference([r for r in records if r.record_type is RecordType.PAYMENT])
        assert missing not in mine, "a MISSING record was written"
        assert len(mine.get(duplicated, [])) == 2, "a DUPLICATE record was not written twice"
        for payment in payments[1:]:
            found = mine.get(payment.reference, [])
            assert len(found) == (2 if payment.reference == duplicated else 1), f"{payment.reference} settled {found}"
            record = found[0]
            where = f"line {record.line_number}"
            assert record.gross == payment.amount, f"{where}: gross {record.gross}, paid {payment.amount}"
            assert record.currency == payment.currency, f"{where}: currency {record.currency}"
            assert record.fee == rail.fee_schedule.fee_for(record.gross), f"{where}: fee differs from the schedule"
            assert record.settlement_date == day, f"{where}: settles {record.settlement_date}, the file is for {day}"
            assert abs(record.transaction_date - today()) <= dt.timedelta(days=1), (
                f"{where}: transaction date {record.transaction_date} is not today")
            assert record.rail_reference, f"{where}: no rail reference"
        # Only what settled since: a day with nothing may be no file at all (UnionPay).
        after = captured_payment(rail, sim, 20_00)
        again, _, _ = settle(sim, rail, day + dt.timedelta(days=1))
        assert [r.reference for r in again] == [after.reference], "records were written twice"


def check_malformed_files(plugin: RailPlugin) -> None:
    """A file that is empty or not the rail's format raises MalformedFile (for the
    empty file naming line 1 and the field the parser expected first); the
    simulator's own file with one data line's digits spoiled gives exactly one
    RecordError, naming that line and a field, and every other record as before."""
    with running(plugin) as (sim, rail):
        for unusable in UNUSABLE_FILES:
            failed = expect(MalformedFile, partial(_parse_all, rail, unusable), f"parsing {unusable[:24]!r}")
            if not unusable:
                assert (failed.line_number, bool(failed.field_name)) == (1, True), (
                    f"an empty file must fail on line 1 naming a field, not line {failed.line_number} "
                    f"field {failed.field_name!r}")
        payments = [captured_payment(rail, sim, amount) for amount in (31_00, 42_00, 53_00)]
        records, _, data = settle(sim, rail, _settlement_day())
        [target] = [r for r in records if r.reference == payments[1].reference]
        lines = data.splitlines(keepends=True)
        lines[target.line_number - 1] = _DIGIT.sub(b"x", lines[target.line_number - 1])
        items = list(rail.parse_settlement_file(io.BytesIO(b"".join(lines))))
        errors = [item for item in items if isinstance(item, RecordError)]
        assert len(errors) == 1, f"one spoiled line gave {len(errors)} errors: {errors[:3]}"
        assert errors[0].line_number == target.line_number, f"the error names line {errors[0].line_number}"
        assert errors[0].field, "the error must name the field"
        assert errors[0].rail == rail.name
        rest = [item for item in items if isinstance(item, SettlementRecord)]
        assert rest == [r for r in records if r.line_number != target.line_number], "good records changed"


def _parse_all(rail: PaymentRail, data: bytes) -> list[SettlementRecord | RecordError]:
    return list(rail.parse_settlement_file(io.BytesIO(data)))


def _forex_payments(rail: PaymentRail, sim: RailSimulator,
                    amounts: tuple[int, ...]) -> tuple[list[Payment], list[Payment]]:
    """(payments in the first currency the rail converts, the payments made finding
    it): the currency is the first whose authorization answers with an FX leg."""
    probes: list[Payment] = []
    for currency in sorted(rail.currencies):
        first = captured_payment(rail, sim, amounts[0], currency=currency)
        if first.authorized.fx is not None:
            return [first] + [captured_payment(rail, sim, amount, currency=currency) for amount in amounts[1:]], probes
        probes.append(first)
    raise AssertionError("a FOREX rail converted none of its currencies")


def _check_fx(record: SettlementRecord, payment: Payment, rate: Decimal) -> None:
    fx = payment.authorized.fx
    assert fx is not None
    where = f"line {record.line_number}"
    assert record.fx_rate == rate, f"{where}: rate {record.fx_rate}, expected {rate}"
    assert record.settlement_currency == fx.settlement_currency, f"{where}: settles in {record.settlement_currency}"
    expected = converted(record.net, record.currency, rate, fx.settlement_currency)
    assert record.settlement_amount == expected, f"{where}: settlement amount {record.settlement_amount} != {expected}"


def check_discrepancies(plugin: RailPlugin) -> None:
    """LATE, REFUND, CHARGEBACK, UNKNOWN, AMOUNT_DIFFERS, FEE_DIFFERS and (FOREX rails)
    FX_RATE_DIFFERS each change the file as declared; a reversal keeps the payment's
    references and gets its own operation id; a LATE record comes in the next file."""
    with running(plugin) as (sim, rail):
        late, refunded, charged, bigger, dearer = (captured_payment(rail, sim, 100_00 + 10 * i) for i in range(5))
        forex, probes = (_forex_payments(rail, sim, (70_00, 80_00)) if Capability.FOREX in rail.capabilities
                         else ([], []))
        injected = [Discrepancy(DiscrepancyKind.LATE, reference=late.reference),
                    Discrepancy(DiscrepancyKind.REFUND, reference=refunded.reference, delta=10_00),
                    Discrepancy(DiscrepancyKind.CHARGEBACK, reference=charged.reference),
                    Discrepancy(DiscrepancyKind.UNKNOWN, delta=77_00),
                    Discrepancy(DiscrepancyKind.AMOUNT_DIFFERS, reference=bigger.reference, delta=5),
                    Discrepancy(DiscrepancyKind.FEE_DIFFERS, reference=dearer.reference, delta=7)]
        new_rate = Decimal("1.234567")
        if forex:
            injected.append(Discrepancy(DiscrepancyKind.FX_RATE_DIFFERS, reference=forex[0].reference, rate=new_rate))
        day = _settlement_day()
        records, applied, _ = settle(sim, rail, day, injected)
        assert applied == injected, f"asked for {injected}, the simulator applied {applied}"
        found = by_reference(records)
        assert late.reference not in found, "a LATE record was written on time"

        for payment, kind, gross in ((refunded, RecordType.REFUND, -10_00),
                                     (charged, RecordType.CHARGEBACK, -charged.amount)):
            [original] = [r for r in found[payment.reference] if r.record_type is RecordType.PAYMENT]
            [reversal] = [r for r in found[payment.reference] if r.record_type is kind]
            where = f"{kind} line {reversal.line_number}"
            assert (reversal.gross, reversal.currency) == (gross, payment.currency), f"{where}: {reversal}"
            assert reversal.net < 0, f"{where}: net {reversal.net}"
            assert reversal.rail_reference == original.rail_reference, (
                f"{where}: rail_reference {reversal.rail_reference!r} is not the payment's {original.rail_reference!r}")
            assert not reversal.rrn or reversal.rrn != original.rrn, f"{where}: carries the payment's own id"

        ours = {p.reference for p in (late, refunded, charged, bigger, dearer, *forex, *probes)}
        strangers = [r for r in records if r.reference not in ours]
        assert [(r.record_type, r.gross) for r in strangers] == [(RecordType.PAYMENT, 77_00)], strangers
        assert strangers[0].rail_reference not in {r.rail_reference for r in records if r.reference in ours}

        [more] = found[bigger.reference]
        assert more.gross == bigger.amount + 5, f"AMOUNT_DIFFERS: gross {more.gross}"
        assert more.fee == rail.fee_schedule.fee_for(bigger.amount), "AMOUNT_DIFFERS changed the fee"
        [costly] = found[dearer.reference]
        assert costly.gross == dearer.amount
        assert costly.fee == rail.fee_schedule.fee_for(dearer.amount) + 7, f"FEE_DIFFERS: fee {costly.fee}"

        if forex:
            [changed] = found[forex[0].reference]
            _check_fx(changed, forex[0], new_rate)
            [plain] = found[forex[1].reference]
            assert forex[1].authorized.fx is not None
            _check_fx(plain, forex[1], forex[1].authorized.fx.rate)

        later = day + dt.timedelta(days=3)
        next_file, _, _ = settle(sim, rail, later)
        assert [(r.reference, r.gross, r.settlement_date) for r in next_file] == [
            (late.reference, late.amount, later)], f"the LATE record came as {next_file}"


def check_seeded_discrepancies(plugin: RailPlugin) -> None:
    """A seeded random run applies the same discrepancies to the same payments each
    time, and the file shows each as declared."""
    with running(plugin) as (sim, rail):
        amounts = tuple(60_00 + 100 * i for i in range(10))
        plans = []
        for _ in range(2):
            payments = [captured_payment(rail, sim, amount, sale=True) for amount in amounts]
            position = {p.reference: index for index, p in enumerate(payments)}
            records, applied, _ = settle(sim, rail, _settlement_day(), seed=20260105, rate=Decimal("0.5"))
            assert applied, "a 50 % rate over 10 payments applied nothing"
            assert all(d.reference in position for d in applied), f"discrepancies for strangers: {applied}"
            plans.append([(d.kind, d.delta, position[d.reference or ""]) for d in applied])
            _check_applied(rail, payments, records, applied)
            # LATE records leave the book, so the second round starts from the same.
            sim.write_settlement_file(io.BytesIO(), _settlement_day() + dt.timedelta(days=1))
        assert plans[0] == plans[1], f"the same seed planned {plans[0]} and then {plans[1]}"


def _check_applied(rail: PaymentRail, payments: list[Payment], records: list[SettlementRecord],
                   applied: list[Discrepancy]) -> None:
    found = by_reference(records)
    amount = {p.reference: p.amount for p in payments}
    for d in applied:
        reference = d.reference or ""
        mine = found.get(reference, [])
        kinds = sorted(r.record_type for r in mine)
        match d.kind:
            case DiscrepancyKind.MISSING | DiscrepancyKind.LATE:
                assert not mine, f"{d.kind} {reference} was written"
            case DiscrepancyKind.DUPLICATE:
                assert kinds == [RecordType.PAYMENT] * 2, f"DUPLICATE {reference}: {kinds}"
            case DiscrepancyKind.FEE_DIFFERS:
                assert mine[0].fee == rail.fee_schedule.fee_for(amount[reference]) + d.delta
            case DiscrepancyKind.AMOUNT_DIFFERS:
                assert mine[0].gross == amount[reference] + d.delta
            case DiscrepancyKind.REFUND | DiscrepancyKind.CHARGEBACK:
                wanted = RecordType.REFUND if d.kind is DiscrepancyKind.REFUND else RecordType.CHARGEBACK
                assert kinds == sorted([RecordType.PAYMENT, wanted]), f"{d.kind} {reference}: {kinds}"
    untouched = set(amount) - {d.reference for d in applied}
    for reference in untouched:
        assert [(r.record_type, r.gross) for r in found.get(reference, [])] == [
            (RecordType.PAYMENT, amount[reference])], f"{reference} without a discrepancy settled differently"

