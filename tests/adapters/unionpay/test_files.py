"""ZM files: round trips (GBK included), every kind of malformed line, files that
are unusable as a whole, and the fileTransfer download."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import (
    Declined,
    Discrepancy,
    DiscrepancyKind,
    Malformed,
    MalformedFile,
    RecordError,
    RecordType,
    SettlementRecord,
)
from adapters.simulation import DiscrepancyNotCarried
from adapters.unionpay import UnionPayRail, UnionPaySimulator
from adapters.unionpay.constants import BEIJING, FEES
from adapters.unionpay.files import format_zm_line, parse_zm, read_zm_fields, write_zm, zm_values
from adapters.unionpay.transfer import pack_files, unpack_zm
from adapters.unionpay.zm_layout import BY_KEY, RECORD_LENGTH

from .conftest import card_request

SETTLED = dt.date(2026, 1, 6)


def record(reference: str = "ORDER0000001", gross: int = 100_00, kind: RecordType = RecordType.PAYMENT,
           day: dt.date = dt.date(2026, 1, 5), rrn: str = "") -> SettlementRecord:
    fee = FEES.fee_for(gross, kind)
    return SettlementRecord("unionpay", 0, kind, "202601051030000000001", reference, gross, fee, gross - fee,
                            "CNY", day, SETTLED, rrn=rrn)


def zm(*records: SettlementRecord) -> bytes:
    out = io.BytesIO()
    write_zm(out, records, settlement_date=SETTLED, mer_id="777290058110048")
    return out.getvalue()


def parse(data: bytes, **kwargs: object) -> list[SettlementRecord | RecordError]:
    return list(parse_zm(io.BytesIO(data), **kwargs))  # type: ignore[arg-type]


def test_record_layout_is_607_bytes_with_the_published_widths() -> None:
    line = zm(record()).split(b"\r\n")[0]
    assert len(line) == RECORD_LENGTH == 607
    assert line[BY_KEY["txnAmt"].start:BY_KEY["txnAmt"].end] == b"000000010000"
    assert line[BY_KEY["merFee"].start:BY_KEY["merFee"].end] == b"D000000000060"
    assert line[BY_KEY["netAmt"].start:BY_KEY["netAmt"].end] == b"C000000009940"


def test_round_trip_of_each_record_type_and_line_numbers() -> None:
    written = [record("PAY00000001", 250_50, rrn="0000420105103000"), record("REF00000001", -50_00, RecordType.REFUND),
               record("CBK00000001", -99_99, RecordType.CHARGEBACK), record("OUT00000001", -7_00, RecordType.PAYOUT),
               record("ADJ00000001", 3_00, RecordType.ADJUSTMENT)]
    parsed = parse(zm(*written))
    assert all(isinstance(p, SettlementRecord) for p in parsed)
    for number, (before, after) in enumerate(zip(written, parsed, strict=True), 1):
        assert isinstance(after, SettlementRecord)
        assert after.line_number == number
        assert (after.record_type, after.reference, after.rail_reference, after.gross, after.fee, after.net,
                after.transaction_date, after.settlement_date) == (
            before.record_type, before.reference, before.rail_reference, before.gross, before.fee, before.net,
            before.transaction_date, before.settlement_date)
    first = parsed[0]
    assert isinstance(first, SettlementRecord)
    assert first.rrn == "0000420105103000"


_references = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=8, max_size=32)


@st.composite
def zm_files(draw: st.DrawFn) -> tuple[dt.date, list[SettlementRecord]]:
    """A clearing date and records that a ZM file can hold for it."""
    settled = draw(st.dates(min_value=dt.date(2001, 1, 1), max_value=dt.date(2099, 12, 31)))
    records = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        kind = draw(st.sampled_from(list(RecordType)))
        magnitude = draw(st.integers(min_value=0, max_value=10**12 - 1))
        gross = magnitude if kind in (RecordType.PAYMENT, RecordType.ADJUSTMENT) else -magnitude
        fee = draw(st.integers(min_value=-(10**11), max_value=10**11))
        if abs(gross - fee) >= 10**12:
            fee = 0
        day = settled - dt.timedelta(days=draw(st.integers(min_value=0, max_value=364)))
        rrn = f"{draw(st.integers(0, 999_999)):06d}{day:%m%d}{draw(st.integers(0, 23)):02d}5959"
        records.append(SettlementRecord("unionpay", 0, kind, draw(_references)[:21], draw(_references),
                                        gross, fee, gross - fee, "CNY", day, settled, rrn=rrn))
    return settled, records


@settings(max_examples=150, deadline=None)
@given(file=zm_files())
def test_write_then_parse_is_the_identity(file: tuple[dt.date, list[SettlementRecord]]) -> None:
    settled, records = file
    out = io.BytesIO()
    assert write_zm(out, records, settlement_date=settled) == len(records)
    expected = [dataclasses.replace(r, line_number=n) for n, r in enumerate(records, 1)]
    assert parse(out.getvalue()) == expected


def test_gbk_round_trip_with_chinese_merchant_names() -> None:
    names = {"subMerAbbr": "北京丝路贸易有限公司", "merReserved": "莫斯科—北京 跨境订单"}
    out = io.BytesIO()
    write_zm(out, [record()], settlement_date=SETTLED, details=lambda _: names)
    data = out.getvalue()
    line = data.rstrip(b"\r\n")
    assert len(line) == RECORD_LENGTH
    assert not line.isascii()
    assert line[BY_KEY["subMerAbbr"].start:BY_KEY["subMerAbbr"].end].decode("gbk").strip() == names["subMerAbbr"]
    ((number, values),) = list(read_zm_fields(io.BytesIO(data)))  # type: ignore[misc]
    assert number == 1
    assert {k: values[k] for k in names} == names
    (parsed,) = parse(data)
    assert isinstance(parsed, SettlementRecord)
    assert parsed.gross == 100_00


_hanzi = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)


@settings(max_examples=100, deadline=None)
@given(name=st.text(alphabet=_hanzi, max_size=16).map(str.strip),
       note=st.text(alphabet=st.one_of(_hanzi, st.sampled_from("ABC123-")), max_size=16).map(str.strip))
def test_gbk_text_fields_round_trip(name: str, note: str) -> None:
    out = io.BytesIO()
    write_zm(out, [record()], settlement_date=SETTLED,
             details=lambda _: {"subMerAbbr": name, "merReserved": note})
    ((_, values),) = list(read_zm_fields(io.BytesIO(out.getvalue())))  # type: ignore[misc]
    assert (values["subMerAbbr"], values["merReserved"]) == (name, note)
    (parsed,) = parse(out.getvalue())
    assert isinstance(parsed, SettlementRecord)


def test_long_chinese_text_is_shortened_on_a_character_boundary() -> None:
    line = format_zm_line({"subMerAbbr": "中" * 20})
    field = line[BY_KEY["subMerAbbr"].start:BY_KEY["subMerAbbr"].end]
    assert field.decode("gbk") == "中" * 16
    with pytest.raises(ValueError, match="wider"):
        format_zm_line({"orderId": "X" * 33})
    with pytest.raises(ValueError, match="gross - fee"):
        zm_values(SettlementRecord("unionpay", 0, RecordType.PAYMENT, "Q", "R", 10, 1, 10, "CNY",
                                   SETTLED, SETTLED), 1, SETTLED)


def test_year_of_a_transaction_is_inferred_across_new_year() -> None:
    out = io.BytesIO()
    write_zm(out, [record(day=dt.date(2025, 12, 31))], settlement_date=dt.date(2026, 1, 2))
    (parsed,) = parse(out.getvalue())
    assert isinstance(parsed, SettlementRecord)
    assert (parsed.transaction_date, parsed.settlement_date) == (dt.date(2025, 12, 31), dt.date(2026, 1, 2))


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")[:-1]


def _set(line: bytes, key: str, value: bytes) -> bytes:
    f = BY_KEY[key]
    assert len(value) == f.width
    return line[:f.start] + value + line[f.end:]


def test_bad_lines_are_errors_naming_line_and_field_and_good_lines_still_come() -> None:
    good = _lines(zm(*(record(f"ORDER000000{i}") for i in range(1, 8))))
    bad = [
        _set(good[1], "subMerAbbr", b"\xff\xfe" + b" " * 30),                # not GBK
        good[2][:130],                                                      # short line
        _set(good[3], "txnAmt", b"00000001O000"),                           # letter O in an amount
        _set(good[4], "merFee", b"X000000000060"),                          # no direction letter
        _set(good[5], "netAmt", b"C000000000001"),                          # gross - fee != net
        _set(good[6], "txnCode", b"ZZZ")[:BY_KEY["txnType"].start] + b"99"  # unknown code and type
        + good[6][BY_KEY["txnType"].end:],
    ]
    data = b"\r\n".join([good[0], *bad, good[0] + b" extra", b"", good[0]]) + b"\r\n"
    items = parse(data)
    errors = {i.line_number: i.field for i in items if isinstance(i, RecordError)}
    assert errors == {2: "subMerAbbr", 3: "orderId", 4: "txnAmt", 5: "merFee", 6: "netAmt", 7: "txnCode",
                      8: "record"}
    reasons = [i.reason for i in items if isinstance(i, RecordError)]
    assert "GBK" in reasons[0]
    assert "二级商户简称" in reasons[0]
    assert "130 bytes" in reasons[1]
    assert "商户订单号" in reasons[1]
    assert "交易金额" in reasons[2]
    assert "not a number" in reasons[2]
    assert [i.line_number for i in items if isinstance(i, SettlementRecord)] == [1, 10]


def test_lf_line_breaks_and_trimmed_reserved_fields_parse(tmp_path: Path, rail: UnionPayRail) -> None:
    line = _lines(zm(record()))[0]
    assert parse(line + b"\n" + line) == parse(line + b"\r\n" + line + b"\r\n")
    trimmed = line[:BY_KEY["origOrderId"].end]
    _, error = parse(line + b"\n" + trimmed + b"\n")
    assert isinstance(error, RecordError)
    assert error.field == "reserved"
    named = tmp_path / "INN26010688ZM_777290058110048"
    named.write_bytes(trimmed + b"\n")
    with named.open("rb") as stream:
        (parsed,) = list(rail.parse_settlement_file(stream))
    assert isinstance(parsed, SettlementRecord)
    assert parsed.settlement_date == SETTLED


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n\n"], ids=["empty", "blank-lines"])
def test_an_empty_file_is_malformed_on_line_1_at_the_first_field(data: bytes) -> None:
    with pytest.raises(MalformedFile, match="empty") as caught:
        parse(data)
    assert (caught.value.line_number, caught.value.field_name) == (1, "txnCode")


def test_a_file_with_no_record_is_malformed_naming_its_first_bad_line() -> None:
    with pytest.raises(MalformedFile, match="no line") as caught:
        parse(b"\r\nthis is not a ZM file\nnor is this\n")
    assert (caught.value.line_number, caught.value.field_name) == (2, "sendInsCode")


@pytest.mark.parametrize("good_first", [False, True], ids=["garbage-only", "good-line-first"])
def test_100_mb_of_garbage_fails_fast(tmp_path: Path, good_first: bool) -> None:
    path = tmp_path / "garbage.zm"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        if good_first:
            out.write(zm(record()))
        for _ in range(100):
            out.write(block)
    started = time.monotonic()
    seen: list[RecordError | SettlementRecord] = []
    with path.open("rb") as stream, pytest.raises(MalformedFile, match="in a row") as caught:
        seen.extend(parse_zm(stream))
    assert time.monotonic() - started < 2
    good = seen[:1] if good_first else []
    assert [(type(s).__name__, s.line_number) for s in good] == [("SettlementRecord", 1)] * len(good)
    bad = seen[len(good):]
    assert len(bad) == 101
    assert all(isinstance(s, RecordError) for s in bad)
    assert (caught.value.line_number, caught.value.field_name) == (bad[-1].line_number, bad[-1].field)


@pytest.mark.parametrize("good_lines", [0, 2])
def test_100_mb_without_a_line_break_fails_fast(tmp_path: Path, good_lines: int) -> None:
    path = tmp_path / "blob.zm"
    block = bytes(b for b in range(256) if b != ord("\n")) * 4096
    with path.open("wb") as out:
        out.write(zm(*(record(f"ORDER{n:07d}") for n in range(good_lines))))
        while out.tell() < 100 * 1024 * 1024:
            out.write(block)
    started = time.monotonic()
    seen: list[RecordError | SettlementRecord] = []
    with path.open("rb") as stream, pytest.raises(MalformedFile, match="without a line break") as caught:
        seen.extend(parse_zm(stream))
    assert time.monotonic() - started < 2
    assert [s.reference for s in seen if isinstance(s, SettlementRecord)] == [
        f"ORDER{n:07d}" for n in range(good_lines)]
    assert (caught.value.line_number, caught.value.field_name) == (good_lines + 1, "record")


def test_parsing_memory_does_not_grow_with_the_file() -> None:
    records = (record(f"ORDER{i:010d}", 1_000 + i) for i in range(20_000))
    out = io.BytesIO()
    write_zm(out, records, settlement_date=SETTLED)
    out.seek(0)
    tracemalloc.start()
    try:
        count = sum(1 for _ in parse_zm(out))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a {len(out.getvalue())}-byte file"


def test_simulator_file_carries_sub_merchant_names_and_downloads(
        gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    sale = card_request(gateway, 321_00, capture=True, sub_merchant_id="SELLER0000001",
                        sub_merchant_name="义乌小商品城旗舰店")
    rail.authorize(sale)
    day = dt.datetime.now(BEIJING).date() + dt.timedelta(days=1)
    data = rail.download_settlement_file(day)
    mine = [v for v in read_zm_fields(io.BytesIO(data)) if isinstance(v, tuple) and v[1]["orderId"] == sale.reference]
    assert len(mine) == 1
    values = mine[0][1]
    assert (values["subMerAbbr"], values["subMerId"], values["merId"]) == (
        "义乌小商品城旗舰店", "SELLER0000001", gateway.mer_id)
    assert values["accNo"].startswith("621626")
    assert "*" in values["accNo"]
    parsed = [r for r in parse_zm(io.BytesIO(data)) if isinstance(r, SettlementRecord)]
    assert any(r.reference == sale.reference and r.gross == 321_00 for r in parsed)
    assert rail.download_settlement_file(day) == data, "a downloaded day's file does not change"
    with pytest.raises(Declined) as missing:
        rail.download_settlement_file(day - dt.timedelta(days=30))
    assert missing.value.rail_code == "98"


def test_a_rate_difference_is_refused_by_name_and_the_book_kept(
        gateway: UnionPaySimulator, rail: UnionPayRail) -> None:
    sale = card_request(gateway, 88_00, capture=True)
    rail.authorize(sale)
    day = dt.datetime.now(BEIJING).date() + dt.timedelta(days=1)
    asked = [Discrepancy(DiscrepancyKind.FX_RATE_DIFFERS, sale.reference, rate=Decimal("0.5"))]
    out = io.BytesIO()
    with pytest.raises(DiscrepancyNotCarried, match="unionpay settlement file cannot carry FX_RATE_DIFFERS") as refused:
        gateway.write_settlement_file(out, day, asked)
    assert (refused.value.rail, refused.value.kind) == ("unionpay", DiscrepancyKind.FX_RATE_DIFFERS)
    assert "CNY" in refused.value.why
    assert out.getvalue() == b""
    assert gateway.write_settlement_file(out, day) == []
    parsed = [r for r in parse_zm(io.BytesIO(out.getvalue())) if isinstance(r, SettlementRecord)]
    assert [(r.reference, r.gross) for r in parsed] == [(sale.reference, 88_00)], "the refusal lost the record"


def test_file_content_that_inflates_too_far_is_refused() -> None:
    content = pack_files({"INN26010688ZM_777290058110048": b" " * 1_000_000})
    with pytest.raises(Malformed, match=r"inflates|exceeds"):
        unpack_zm(content, limit=100_000)
    with pytest.raises(Malformed):
        unpack_zm("not base64!", limit=100_000)
