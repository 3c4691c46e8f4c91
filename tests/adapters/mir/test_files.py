"""The acquirer register: writer and streaming parser, good files and bad ones."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import pickle
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.base import MalformedFile, RecordError, RecordType, SettlementRecord
from adapters.mir.files import HEADER, MirSettlementRecord, _SlowPath, parse_register, write_register
from adapters.mir.register import PackedRecord

DAY, NEXT = dt.date(2026, 1, 5), dt.date(2026, 1, 6)


def record(n: int, gross: int = 100_00, record_type: RecordType = RecordType.PAYMENT) -> MirSettlementRecord:
    fee = 0 if record_type is not RecordType.PAYMENT else gross * 15 // 1000
    return MirSettlementRecord(
        rail="mir", line_number=0, record_type=record_type, rail_reference=f"{n:012d}",
        reference=f"order-{n}", gross=gross, fee=fee, net=gross - fee, currency="RUB",
        transaction_date=DAY, settlement_date=NEXT, rrn=f"{n + 500:012d}", auth_code=f"{n % 10**6:06d}",
        masked_pan="220000******0004")


def good_line(n: int) -> str:
    return (f"PAYMENT;{n + 500:012d};{n:012d};{n:06d};220000******0004;10000;643;05.01.2026;06.01.2026;"
            f"150;9850;order-{n}")


def register_bytes(*lines: str | bytes, trailer: bool = True) -> bytes:
    body = [HEADER.encode(), *(line.encode() if isinstance(line, str) else line for line in lines)]
    if trailer:
        body.append(f"TOTAL;{len(lines)};{9850 * len(lines)}".encode())
    return b"\n".join(body) + b"\n"


def parse(data: bytes, **options: Any) -> list[SettlementRecord | RecordError]:
    return list(parse_register(io.BytesIO(data), **options))


def errors_of(items: list[SettlementRecord | RecordError]) -> list[tuple[int, str]]:
    return [(i.line_number, i.field) for i in items if isinstance(i, RecordError)]


def records_of(items: list[SettlementRecord | RecordError]) -> list[SettlementRecord]:
    return [i for i in items if isinstance(i, SettlementRecord)]


# -- good files -------------------------------------------------------------------


def test_written_records_parse_back_equal() -> None:
    originals = [record(1), record(2, 99_99), record(3, -40_00, RecordType.REFUND),
                 record(4, -100_00, RecordType.CHARGEBACK)]
    out = io.BytesIO()
    assert write_register(out, iter(originals)) == 4
    items = parse(out.getvalue())
    assert errors_of(items) == []
    assert [r.line_number for r in records_of(items)] == [2, 3, 4, 5]
    assert [dataclasses.replace(r, line_number=0) for r in records_of(items)] == originals


def test_columns_are_found_by_name_in_any_order() -> None:
    names = HEADER.split(";")
    order = [*reversed(names), "BRANCH"]
    fields = dict(zip(names, good_line(7).split(";"), strict=True)) | {"BRANCH": "Moscow 1"}
    data = ";".join(order) + "\n" + ";".join(fields[n] for n in order) + "\nTOTAL;1;9850\n"
    (item,) = parse(data.encode())
    assert isinstance(item, SettlementRecord)
    assert (item.reference, item.gross, item.rail_reference) == ("order-7", 100_00, "000000000007")


def test_crlf_line_ends_and_a_byte_order_mark_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + register_bytes(good_line(1), good_line(2)).replace(b"\n", b"\r\n")
    items = parse(data)
    assert errors_of(items) == []
    assert [r.reference for r in records_of(items)] == ["order-1", "order-2"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**9), st.integers(-10**12, 10**12),
                          st.sampled_from(list(RecordType)), st.text("abc-_:.", max_size=20)),
                max_size=30))
def test_round_trip_property(rows: list[tuple[int, int, RecordType, str]]) -> None:
    originals = [dataclasses.replace(record(n, gross, kind), reference=ref) for n, gross, kind, ref in rows]
    out = io.BytesIO()
    write_register(out, originals)
    items = parse(out.getvalue(), chunk_size=256)   # small chunks: lines straddle reads
    assert errors_of(items) == []
    assert [dataclasses.replace(r, line_number=0) for r in records_of(items)] == originals


# -- bad lines --------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "field", "reason"), [
    (good_line(9).encode().replace(b"order-9", "заказ-9".encode("cp1251")), "REFERENCE", "not ASCII"),
    (good_line(9).encode().replace(b"PAYMENT", "ПЛАТЕЖ".encode()), "RECORD_TYPE", "not ASCII"),
    ("PAYMENT;000000000509;000000000009", "AUTH_CODE", "missing column"),
    (good_line(9).replace(";10000;", ";100.00;"), "AMOUNT", "not an integer"),
    (good_line(9).replace(";10000;", ";1_0000;"), "AMOUNT", "not an integer"),
    (good_line(9).replace(";150;9850;", ";150;9851;"), "NET", "AMOUNT - FEE"),
    (good_line(9).replace(";643;", ";840;"), "CURRENCY", "643"),
    (good_line(9).replace("05.01.2026", "31.02.2026"), "TRANSACTION_DATE", "calendar"),
    (good_line(9).replace("06.01.2026", "2026-01-06"), "SETTLEMENT_DATE", "DD.MM.YYYY"),
    (good_line(9).replace("220000******0004", "2200000000000004"), "MASKED_PAN", "unmasked"),
    (good_line(9).replace("PAYMENT", "SALE"), "RECORD_TYPE", "unknown record type"),
    (good_line(9) + ";extra", "line", "fields where the header has"),
])
def test_a_bad_line_names_line_and_field_and_good_lines_come_through(bad: str | bytes, field: str,
                                                                     reason: str) -> None:
    items = parse(register_bytes(good_line(1), bad, good_line(2)))
    assert [r.reference for r in records_of(items)] == ["order-1", "order-2"]
    errors = [i for i in items if isinstance(i, RecordError)]
    assert [(e.line_number, e.field) for e in errors][:1] == [(3, field)]
    assert reason in errors[0].reason
    assert "2200000000000004" not in errors[0].raw, "a bad line's raw text leaked a card number"


def test_an_empty_file_is_malformed_on_line_1_at_the_header() -> None:
    with pytest.raises(MalformedFile, match="empty") as caught:
        parse(b"")
    assert (caught.value.line_number, caught.value.field_name) == (1, "header")


@pytest.mark.parametrize("data", [
    b"\n", b"hello;world\n" + good_line(1).encode(), HEADER.encode("utf-16") + b"\n",
    HEADER.replace("NET", "NETT").encode() + b"\n",
])
def test_a_file_without_a_register_header_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedFile) as caught:
        parse(data)
    assert caught.value.line_number == 1


def test_a_file_cut_short_is_reported() -> None:
    data = register_bytes(good_line(1), good_line(2), trailer=False)[:-20]
    items = parse(data)
    assert [r.reference for r in records_of(items)] == ["order-1"]
    assert errors_of(items) == [(3, "FEE"), (4, "TOTAL")]   # the cut line lacks FEE onwards


def test_the_trailer_is_checked() -> None:
    wrong_count = register_bytes(good_line(1)).replace(b"TOTAL;1;", b"TOTAL;2;")
    assert errors_of(parse(wrong_count)) == [(3, "TOTAL")]
    wrong_total = register_bytes(good_line(1)).replace(b"TOTAL;1;9850", b"TOTAL;1;9851")
    assert errors_of(parse(wrong_total)) == [(3, "TOTAL")]
    after = register_bytes(good_line(1)) + good_line(2).encode() + b"\n"
    assert errors_of(parse(after)) == [(4, "line")]


def test_the_error_budget_counts_consecutive_bad_lines_only() -> None:
    lines = [good_line(n) if n % 10 == 0 else "garbage" for n in range(300)]
    items = parse(register_bytes(*lines), max_consecutive_errors=9)
    assert len(records_of(items)) == 30
    with pytest.raises(MalformedFile) as caught:
        parse(register_bytes(*lines), max_consecutive_errors=8)
    assert caught.value.line_number == 11


def test_a_line_longer_than_a_chunk_is_malformed() -> None:
    data = register_bytes(good_line(1), "x" * 5000, good_line(2))
    with pytest.raises(MalformedFile) as caught:
        parse(data, chunk_size=1024)
    assert caught.value.line_number == 3


# -- 100 MB of garbage ------------------------------------------------------------


GARBAGE_HEAD = (HEADER + "\n" + good_line(1) + "\n").encode()


@pytest.fixture(scope="module")
def garbage_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A register header and one good line followed by 100 MB of random bytes."""
    path = tmp_path_factory.mktemp("mir") / "garbage.csv"
    block = os.urandom(1 << 20)
    with path.open("wb") as out:
        out.write(GARBAGE_HEAD)
        for _ in range(100):
            out.write(block)
    return path


def test_100_mb_of_garbage_fails_fast_at_the_header(garbage_file: Path) -> None:
    started = time.monotonic()
    with garbage_file.open("rb") as stream:
        stream.seek(len(GARBAGE_HEAD))
        with pytest.raises(MalformedFile) as caught:
            list(parse_register(stream))
        assert stream.tell() <= 2 << 20, "the parser read on after the header was missing"
    assert caught.value.line_number == 1
    assert time.monotonic() - started < 2


def test_100_mb_of_garbage_after_a_header_fails_fast(garbage_file: Path) -> None:
    started = time.monotonic()
    seen: list[SettlementRecord | RecordError] = []
    with garbage_file.open("rb") as stream:
        with pytest.raises(MalformedFile, match="bad lines in a row") as caught:
            seen.extend(parse_register(stream))
        assert stream.tell() <= 2 << 20
    assert time.monotonic() - started < 2
    assert [r.reference for r in records_of(seen)] == ["order-1"], "the good line before the garbage was lost"
    assert all(isinstance(item, RecordError) for item in seen[1:])
    assert caught.value.line_number > 2
    assert caught.value.field_name


def test_memory_stays_flat_on_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("wb") as out:
        write_register(out, (record(n) for n in range(20_000)))
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            count = sum(1 for _ in parse_register(stream, chunk_size=64 << 10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 1_000_000 < path.stat().st_size, f"peak {peak} bytes for a {path.stat().st_size}-byte file"


# -- the writer and the record type -----------------------------------------------


@pytest.mark.parametrize("change", [
    {"currency": "CNY"}, {"masked_pan": "2200000000000004"}, {"reference": "a;b"},
    {"rail_reference": "bad rrn"}, {"auth_code": "1234567"}, {"net": 1},
])
def test_the_writer_refuses_what_the_register_cannot_carry(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"^record "):
        write_register(io.BytesIO(), [dataclasses.replace(record(1), **change)])


def test_parsed_records_behave_as_the_dataclass() -> None:
    out = io.BytesIO()
    write_register(out, [record(1)])
    (parsed,) = records_of(parse(out.getvalue()))
    plain = dataclasses.replace(record(1), line_number=2)
    assert isinstance(parsed, PackedRecord)
    assert parsed == plain
    assert plain == parsed
    assert hash(parsed) == hash(plain)
    assert repr(parsed) == repr(plain)
    assert dataclasses.asdict(parsed) == dataclasses.asdict(plain)
    assert dataclasses.replace(parsed, gross=1, net=1, fee=0) == dataclasses.replace(plain, gross=1, net=1, fee=0)
    assert pickle.loads(pickle.dumps(parsed)) == plain
    assert {parsed, plain} == {plain}
    for name in ("gross", "masked_pan", "_values", "anything"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(parsed, name, 0)
    match parsed:
        case SettlementRecord(gross=gross, reference=reference):
            assert (gross, reference) == (100_00, "order-1")


# -- the fast path agrees with the checks that name the bad column ----------------

COLUMN_VALUES = {
    "RECORD_TYPE": st.sampled_from(["PAYMENT", "REFUND", "PAYOUT", "payment", "SALE", ""]),
    "RRN": st.sampled_from(["000000000001", "ABCdef123456", "", "x" * 33, "12 45", "ЖЖ"]),
    "AUTH_CODE": st.sampled_from(["", "123456", "A1", "1234567", "12-4"]),
    "MASKED_PAN": st.sampled_from(["", "220000******0004", "2200000000000004", "220000**0004",
                                   "220000*******00041"]),
    "AMOUNT": st.sampled_from(["10000", "-10000", "0", "-0", "+5", "1_0", " 10000", "1e4", "10.00",
                               "9" * 18, "9" * 19]),
    "CURRENCY": st.sampled_from(["643", "RUB", "840", ""]),
    "DATE": st.sampled_from(["05.01.2026", "31.02.2026", "5.1.2026", "2026-01-05", "00.00.0000"]),
    "FEE": st.sampled_from(["150", "0", "-150", "x"]),
    "REFERENCE": st.sampled_from(["order-1", "", "a b", "x" * 65, "заказ", "ref:1.2_3"]),
}


VALID = dict(zip(HEADER.split(";"), good_line(3).split(";"), strict=True))
CANDIDATES = {name: COLUMN_VALUES["DATE" if name.endswith("_DATE") else name.replace("ORIGINAL_", "")]
              for name in VALID if name != "NET"}


@settings(max_examples=300, deadline=None)
@given(st.data(), st.booleans())
def test_fast_and_slow_paths_agree(data: st.DataObject, consistent_net: bool) -> None:
    """Lines with up to three columns changed, each from a list of valid and invalid
    values: the parser yields exactly what the column-by-column checks decide."""
    columns = dict(VALID)
    for name in data.draw(st.lists(st.sampled_from(sorted(CANDIDATES)), max_size=3, unique=True)):
        columns[name] = data.draw(CANDIDATES[name])
    try:
        net = str(int(columns["AMOUNT"].replace("_", "x")) - int(columns["FEE"]))
    except ValueError:
        net = "1"
    columns["NET"] = net if consistent_net else net + "1"
    raw = ";".join(columns[name] for name in HEADER.split(";")).encode()
    (first, *_) = parse(register_bytes(raw))
    line = raw.decode("ascii", "surrogateescape")   # as the parser reads it
    slow = _SlowPath(HEADER, "mir", 100).check_line(line.split(";"), line, 2)
    if isinstance(slow, RecordError):
        assert isinstance(first, RecordError), f"the fast path accepted what the checks refuse: {raw!r}"
        assert (first.line_number, first.field) == (slow.line_number, slow.field)
    else:
        assert first == slow
