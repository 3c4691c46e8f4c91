"""The cross-border settlement file: exact round trips, bad lines named by line and
field, and whole-file failures that come fast."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import pickle
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.alipay import AlipayRail, AlipaySimulator
from adapters.alipay.codec import AmountError, to_minor
from adapters.alipay.file_parser import _FieldError, _minor
from adapters.alipay.files import HEADER, MAX_CONSECUTIVE_ERRORS, parse_settlement, write_settlement
from adapters.base import (
    CaptureRequest,
    Discrepancy,
    DiscrepancyKind,
    MalformedFile,
    RecordError,
    RecordType,
    SettlementRecord,
)
from adapters.testing import new_reference

from .conftest import freeze

DAY = dt.date(2026, 1, 5)
GOOD = "ord-1|2026010522000001|100.00|100.00|0.60|99.40|99.40|CNY||2026-01-05 10:00:00|2026-01-06 16:50:00|P|L|"
FOREX = ("ord-2|2026010522000002|1000.00|78.50|12.00|988.00|77.56|RUB|0.07850000|2026-01-05 10:00:00|"
         "2026-01-06 16:50:00|P|L|茶")
REFUND = "ref-1|2026010522000001|40.00|40.00|0.00|-40.00|-40.00|CNY||2026-01-05 11:00:00|2026-01-06 16:50:00|R|L|"


def _kind(item: object) -> str:
    """What a parsed item is: a record (of whatever concrete class) or an error."""
    return "SettlementRecord" if isinstance(item, SettlementRecord) else type(item).__name__


def parse(text: str | bytes) -> list[SettlementRecord | RecordError]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return list(parse_settlement(io.BytesIO(data)))


def file_of(*lines: str) -> str:
    return "\n".join((HEADER, *lines)) + "\n"


def test_reads_payments_forex_and_refunds() -> None:
    payment, forex, refund = parse(file_of(GOOD, FOREX, REFUND))
    assert payment == SettlementRecord(
        rail="alipay", line_number=2, record_type=RecordType.PAYMENT, rail_reference="2026010522000001",
        reference="ord-1", gross=100_00, fee=60, net=99_40, currency="CNY", transaction_date=DAY,
        settlement_date=DAY + dt.timedelta(days=1), rrn="2026010522000001", status="L")
    assert isinstance(forex, SettlementRecord)
    assert (forex.currency, forex.gross, forex.net, forex.fx_rate, forex.settlement_amount,
            forex.settlement_currency) == ("RUB", 1000_00, 988_00, Decimal("0.0785"), 77_56, "CNY")
    assert isinstance(refund, SettlementRecord)
    assert (refund.record_type, refund.gross, refund.net, refund.line_number) == (RecordType.REFUND, -40_00,
                                                                                 -40_00, 4)
    # A payment's Transaction_id is its own trade (the rrn); a refund's names the trade refunded.
    assert (forex.rrn, refund.rrn, refund.rail_reference) == ("2026010522000002", "", "2026010522000001")


def test_parsed_records_behave_as_the_dataclass() -> None:
    """The parser builds packed records (adapters.packed): they must be
    indistinguishable from the plain dataclass wherever a record is used."""
    (parsed,) = parse(file_of(FOREX))
    assert isinstance(parsed, SettlementRecord)
    plain = SettlementRecord(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(SettlementRecord)})
    assert type(plain) is SettlementRecord
    assert parsed == plain
    assert plain == parsed
    assert hash(parsed) == hash(plain)
    assert repr(parsed) == repr(plain)
    assert dataclasses.asdict(parsed) == dataclasses.asdict(plain)
    assert dataclasses.replace(parsed, fee=0, net=parsed.gross) == dataclasses.replace(plain, fee=0, net=plain.gross)
    assert pickle.loads(pickle.dumps(parsed)) == plain
    assert type(pickle.loads(pickle.dumps(parsed))) is SettlementRecord
    assert {parsed, plain} == {plain}
    for name in ("gross", "_values", "anything"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(parsed, name, 0)


def test_refund_amount_may_be_written_without_its_sign() -> None:
    [refund] = parse(file_of(REFUND.replace("|40.00|40.00|", "|-40.00|-40.00|")))
    [unsigned] = parse(file_of(REFUND))
    assert isinstance(refund, SettlementRecord)
    assert dataclasses.replace(refund, line_number=2) == unsigned


def test_bom_crlf_blank_lines_and_other_decimal_forms() -> None:
    text = "\ufeff" + HEADER + "\r\n" + GOOD + "\r\n\r\n" + GOOD.replace("|100.00|100.00|0.60|99.40|99.40|",
                                                                        "|100|100.0|0.6|99.4|99.40|") + "\r\n"
    first, second = parse(text)
    assert isinstance(first, SettlementRecord)
    assert isinstance(second, SettlementRecord)
    assert (second.line_number, second.gross, second.fee, second.net) == (4, 100_00, 60, 99_40)


def test_last_line_without_newline_and_extra_columns() -> None:
    header = HEADER + "|Secondary_merchant_industry"
    items = parse(header + "\n" + GOOD + "|5812\n" + GOOD + "|5999")
    assert [i.line_number for i in items if isinstance(i, SettlementRecord)] == [2, 3]


@pytest.mark.parametrize(("line", "field", "reason"), [
    (GOOD.replace("|100.00|100.00|", "|12x.00|100.00|"), "Amount", "not a decimal amount"),
    (GOOD.replace("|0.60|", "|0.6O|"), "Fee", "not a decimal amount"),
    (GOOD.replace("|100.00|100.00|", "|100.00||"), "Rmb_amount", "not a decimal amount"),
    (GOOD.replace("|100.00|100.00|", "|100.000|100.00|"), "Amount", "more than 2 decimal places"),
    (GOOD.replace("|100.00|100.00|", "|1e2|100.00|"), "Amount", "not a decimal amount"),
    (GOOD.replace("|100.00|100.00|", "|\uff11\uff10\uff10.00|100.00|"), "Amount", "not a decimal amount"),
    (GOOD.replace("|100.00|100.00|", "| 100.00|100.00|"), "Amount", "not a decimal amount"),
    (GOOD.replace("|99.40|99.40|", "|99.41|99.41|"), "Settlement", "Amount - Fee"),
    (GOOD.replace("|CNY|", "|XYZ|"), "Currency", "unknown currency"),
    (GOOD.replace("|P|L|", "|Q|L|"), "Type", "unknown type"),
    (GOOD.replace("2026-01-05 10:00:00", "2026-02-30 10:00:00"), "Payment_time", "YYYY-MM-DD"),
    (GOOD.replace("2026-01-06 16:50:00", "06/01/2026 16:50"), "Settlement_time", "YYYY-MM-DD"),
    (FOREX.replace("|0.07850000|", "||"), "Rate", "needs its rate"),
    (FOREX.replace("|0.07850000|", "|-1|"), "Rate", "not a decimal rate"),
    (GOOD.rsplit("|", 1)[0], "Remarks", "missing column"),
    ("|".join(GOOD.split("|")[:5]), "Settlement", "missing column"),
    (GOOD + "|extra", "line", "fields"),
    (GOOD.replace("ord-1|", "|"), "Partner_transaction_id", "empty"),
    (GOOD.replace("|100.00|100.00|0.60|99.40|99.40|", "|-100.00|-100.00|0.00|-100.00|-100.00|"), "Amount",
     "negative"),
])
def test_bad_lines_are_named_and_good_lines_still_come_through(line: str, field: str, reason: str) -> None:
    first, bad, last = parse(file_of(GOOD, line, REFUND))
    assert isinstance(first, SettlementRecord)
    assert isinstance(last, SettlementRecord)
    assert isinstance(bad, RecordError), bad
    assert (bad.line_number, bad.field) == (3, field)
    assert reason in bad.reason
    assert bad.raw


def test_wrong_encoding_names_the_field() -> None:
    latin = GOOD.encode("utf-8") + "café".encode("latin-1")
    gbk = FOREX.replace("茶", "茶叶").encode("gbk")
    items = parse(HEADER.encode() + b"\n" + GOOD.encode() + b"\n" + latin + b"\n" + gbk + b"\n"
                  + REFUND.encode() + b"\n")
    kinds = [(_kind(i), i.line_number, getattr(i, "field", "")) for i in items]
    assert kinds == [("SettlementRecord", 2, ""), ("RecordError", 3, "Remarks"), ("RecordError", 4, "Remarks"),
                     ("SettlementRecord", 5, "")]


def test_overlong_line_is_one_error() -> None:
    items = parse(file_of(GOOD, GOOD[:-1] + "x" * 10_000, REFUND))
    assert [(_kind(i), i.line_number) for i in items] == [
        ("SettlementRecord", 2), ("RecordError", 3), ("SettlementRecord", 4)]


@pytest.mark.parametrize("text", [b"", b"Partner_transaction_id|Transaction_id\n" + GOOD.encode(),
                                  b"\xff\xfe\x00garbage\n", GOOD.encode() + b"\n"])
def test_unusable_files(text: bytes) -> None:
    with pytest.raises(MalformedFile) as failed:
        parse(text)
    assert failed.value.line_number == 1


def test_an_empty_file_fails_on_line_1_at_the_header() -> None:
    with pytest.raises(MalformedFile, match="empty") as failed:
        parse(b"")
    assert (failed.value.line_number, failed.value.field_name) == (1, "header")


def test_header_only_file_has_no_records() -> None:
    assert parse(HEADER + "\n") == []


def test_100_mb_of_garbage_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "garbage.txt"
    with path.open("wb") as out:
        for _ in range(100):
            out.write(os.urandom(1 << 20))
    started = time.monotonic()
    with path.open("rb") as stream, pytest.raises(MalformedFile):
        list(parse_settlement(stream))
    assert time.monotonic() - started < 1.0


def test_100_mb_of_garbage_after_a_valid_header_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "garbage.txt"
    noise = os.urandom(1 << 20).replace(b"|", b"#")
    with path.open("wb") as out:
        out.write(HEADER.encode() + b"\n" + GOOD.encode() + b"\n")
        for _ in range(100):
            out.write(noise)
    started = time.monotonic()
    items: list[SettlementRecord | RecordError] = []
    with path.open("rb") as stream, pytest.raises(MalformedFile) as failed:
        items.extend(parse_settlement(stream))
    assert time.monotonic() - started < 2.0
    assert failed.value.field_name == "line"
    # The good line shares its read chunk with the garbage that condemns the file: it
    # still reaches the caller, before the error.
    assert [(_kind(i), i.line_number) for i in items[:1]] == [("SettlementRecord", 2)]
    assert isinstance(items[0], SettlementRecord)
    assert items[0].reference == "ord-1"
    assert all(isinstance(i, RecordError) for i in items[1:])
    assert len(items) == 1 + MAX_CONSECUTIVE_ERRORS
    assert failed.value.line_number > items[-1].line_number


def test_the_error_budget_running_out_mid_chunk_keeps_the_lines_before() -> None:
    lines = [GOOD, REFUND, *(["garbage"] * 5), FOREX]
    items: list[SettlementRecord | RecordError] = []
    with pytest.raises(MalformedFile, match="consecutive bad lines up to line 8") as failed:
        items.extend(parse_settlement(io.BytesIO(file_of(*lines).encode()), max_consecutive_errors=4))
    assert [(_kind(i), i.line_number) for i in items] == [
        ("SettlementRecord", 2), ("SettlementRecord", 3), *[("RecordError", n) for n in range(4, 8)]]
    assert (failed.value.line_number, failed.value.field_name) == (8, "line")


def test_scattered_bad_lines_do_not_condemn_the_file() -> None:
    lines = [GOOD if n % 2 else "garbage" for n in range(3000)]
    items = parse(file_of(*lines))
    assert sum(isinstance(i, SettlementRecord) for i in items) == 1500


# -- properties -------------------------------------------------------------------

REFS = st.text(st.characters(exclude_characters="|\r\n", exclude_categories=["Cs"]), min_size=1, max_size=24)
CURRENCIES = st.sampled_from(["CNY", "RUB", "USD", "EUR", "HKD", "JPY"])


@st.composite
def records(draw: st.DrawFn) -> SettlementRecord:
    kind = draw(st.sampled_from(list(RecordType)))
    currency = draw(CURRENCIES)
    magnitude = draw(st.integers(0, 10**12))
    gross = magnitude if kind is RecordType.PAYMENT else -magnitude
    fee = draw(st.integers(-10**6, 10**6))
    rate = None if currency == "CNY" and draw(st.booleans()) else draw(
        st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10), places=6))
    day = draw(st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)))
    return SettlementRecord(
        rail="alipay", line_number=0, record_type=kind, rail_reference=draw(REFS), reference=draw(REFS),
        gross=gross, fee=fee, net=gross - fee, currency=currency, transaction_date=day,
        settlement_date=day + dt.timedelta(days=draw(st.integers(0, 5))),
        settlement_amount=None if rate is None else draw(st.integers(-10**12, 10**12)),
        settlement_currency=None if rate is None else "CNY", fx_rate=rate, status=draw(st.sampled_from("LP")))


@settings(max_examples=60, deadline=None)
@given(st.lists(records(), max_size=30))
def test_write_then_parse_gives_back_every_record(written: list[SettlementRecord]) -> None:
    buffer = io.BytesIO()
    assert write_settlement(buffer, written) == len(written)
    buffer.seek(0)
    own = (RecordType.PAYMENT, RecordType.PAYOUT)
    expected = [dataclasses.replace(r, line_number=n, rrn=r.rail_reference if r.record_type in own else "")
                for n, r in enumerate(written, start=2)]
    assert list(parse_settlement(buffer)) == expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.from_regex(r"-?[0-9]{1,16}(\.[0-9]{0,4})?", fullmatch=True),
    st.text(alphabet="0123456789.-+_ e", max_size=12)),
    st.sampled_from([0, 2]))
def test_digit_conversion_agrees_with_decimal(text: str, places: int) -> None:
    currency = "JPY" if places == 0 else "CNY"
    try:
        expected: int | None = to_minor(text, currency)
    except AmountError:
        expected = None
    try:
        got: int | None = _minor(text, places, "Amount")
    except _FieldError:
        got = None
    assert got == expected
    if expected is not None:
        assert Decimal(text).scaleb(places) == expected


# -- the simulator's files --------------------------------------------------------


def test_simulator_file_with_every_discrepancy_parses_cleanly(sim: AlipaySimulator, rail: AlipayRail) -> None:
    references = []
    for amount in (100_00, 200_00, 300_00, 400_00, 500_00, 600_00):
        order, auth_no = freeze(rail, sim, amount, "RUB")
        rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth_no, amount=amount,
                                    currency="RUB"))
        references.append(order)
    planned = [Discrepancy(DiscrepancyKind.FX_RATE_DIFFERS, reference=references[0], rate=Decimal("0.08")),
               Discrepancy(DiscrepancyKind.LATE, reference=references[1]),
               Discrepancy(DiscrepancyKind.CHARGEBACK, reference=references[2]),
               Discrepancy(DiscrepancyKind.REFUND, reference=references[3], delta=10_00),
               Discrepancy(DiscrepancyKind.FEE_DIFFERS, reference=references[4], delta=7),
               Discrepancy(DiscrepancyKind.UNKNOWN, delta=55_00)]
    buffer = io.BytesIO()
    applied = sim.write_settlement_file(buffer, dt.date(2026, 1, 6), planned)
    assert len(applied) == len(planned)
    buffer.seek(0)
    items = list(rail.parse_settlement_file(buffer))
    assert not [i for i in items if isinstance(i, RecordError)]
    by_ref: dict[str, list[SettlementRecord]] = {}
    for item in items:
        assert isinstance(item, SettlementRecord)
        by_ref.setdefault(item.reference, []).append(item)
    assert by_ref[references[0]][0].fx_rate == Decimal("0.08")
    assert references[1] not in by_ref
    assert {r.record_type for r in by_ref[references[2]]} == {RecordType.PAYMENT, RecordType.CHARGEBACK}
    assert [r.gross for r in by_ref[references[3]] if r.record_type is RecordType.REFUND] == [-10_00]
    assert by_ref[references[4]][0].fee == 6_00 + 7  # 1.2% of 500.00 RUB, plus the injected 0.07
    assert any(r.reference.startswith("UNKNOWN") and r.gross == 55_00 for r in items
               if isinstance(r, SettlementRecord))
    late = io.BytesIO()
    sim.write_settlement_file(late, dt.date(2026, 1, 7))
    late.seek(0)
    assert [r.reference for r in rail.parse_settlement_file(late) if isinstance(r, SettlementRecord)
            and r.reference == references[1]] == [references[1]]
