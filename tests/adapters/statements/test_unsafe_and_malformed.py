"""Hostile and broken files: refused whole, fast, without expanding or fetching
anything; broken lines inside a usable file become error items."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from adapters.statements import (
    StatementLine,
    StatementLineError,
    UnknownStatementFormat,
    UnsafeStatement,
    UnusableStatement,
    parse_camt053,
    parse_client_bank_exchange,
    parse_statement,
)
from adapters.statements.client_bank_exchange import MAX_LINE_BYTES
from adapters.statements.dispatch import FORMAT_FIELD
from tests.adapters.statements.factories import (
    DOCUMENT_CLOSE,
    Entry,
    camt053,
    document_open,
    entry_xml,
    one_c_document,
    one_c_file,
    one_c_header,
    statement_open,
)

CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
GARBAGE_BYTES = 100 * 1024 * 1024


def _billion_laughs() -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">' for n in range(1, 10)]
    return (f'<?xml version="1.0"?>\n<!DOCTYPE Document [{"".join(levels)}]>\n'
            f'<Document xmlns="{CAMT}"><BkToCstmrStmt><Stmt><Id>&lol9;</Id></Stmt></BkToCstmrStmt>'
            "</Document>").encode()


def _external_entity(target: Path) -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE Document [<!ENTITY secret SYSTEM "file://{target}">]>\n'
            f'<Document xmlns="{CAMT}"><BkToCstmrStmt><Stmt><Id>&secret;</Id></Stmt></BkToCstmrStmt>'
            "</Document>").encode()


def _write_garbage(out: BinaryIO) -> None:
    block = os.urandom(4 * 1024 * 1024)
    for _ in range(GARBAGE_BYTES // len(block)):
        out.write(block)


class _CountingStream(io.RawIOBase):
    """Records how much of the file the parser asked for."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = self._file.readinto(buffer)
        self.consumed += size
        return size

    def close(self) -> None:
        self._file.close()
        super().close()


def test_billion_laughs_is_refused_before_expansion() -> None:
    with pytest.raises(UnsafeStatement) as raised:
        list(parse_statement(io.BytesIO(_billion_laughs())))
    assert raised.value.code == "statement_xml_unsafe"


def test_external_entity_is_refused_and_nothing_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    with pytest.raises(UnsafeStatement) as raised:
        list(parse_statement(io.BytesIO(_external_entity(secret))))
    assert "TOP-SECRET" not in str(raised.value)


@pytest.mark.parametrize("doctype", [
    '<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/camt.dtd">',
    '<!DOCTYPE Document [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>',
    "<!DOCTYPE Document>",
])
def test_any_doctype_is_refused(doctype: str) -> None:
    data = f'<?xml version="1.0"?>\n{doctype}\n<Document xmlns="{CAMT}"><BkToCstmrStmt/></Document>'
    with pytest.raises(UnsafeStatement):
        list(parse_statement(io.BytesIO(data.encode())))


def test_entity_after_good_entries_stops_the_stream() -> None:
    """An internal entity reference without a DTD is not well-formed XML."""
    data = (document_open(8) + statement_open() + entry_xml(8, Entry("1.00", "CRDT"))
            + "<Ntry><Amt Ccy='EUR'>&amp2;</Amt></Ntry></Stmt>" + DOCUMENT_CLOSE).encode()
    items = parse_statement(io.BytesIO(data))
    assert isinstance(next(items), StatementLine)
    with pytest.raises(UnusableStatement, match="not well-formed"):
        next(items)


@pytest.mark.parametrize("data", [b"", b"   \r\n\t "])
def test_empty_files(data: bytes) -> None:
    with pytest.raises(UnusableStatement) as raised:
        parse_statement(io.BytesIO(data))
    assert (raised.value.line_number, raised.value.field_name) == (1, FORMAT_FIELD)


@pytest.mark.parametrize(("parse", "field"), [
    (parse_camt053, "Document"), (parse_client_bank_exchange, "1CClientBankExchange")])
def test_an_empty_file_read_as_either_format_fails_on_line_1(parse: Callable[[BinaryIO], object],
                                                             field: str) -> None:
    with pytest.raises(UnusableStatement, match="empty") as raised:
        parse(io.BytesIO(b""))
    assert (raised.value.line_number, raised.value.field_name) == (1, field)


@pytest.mark.parametrize("data", [
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    b"{\"statement\": []}",
    b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    b":20:STATEMENT\r\n:25:40702810900000000001\r\n:28C:1/1\r\n",   # SWIFT MT940
    b"1CClientBankExchangeX\r\n",
])
def test_other_formats_fail_at_once(data: bytes) -> None:
    with pytest.raises(UnknownStatementFormat, match=r"neither camt\.053 XML nor 1CClientBankExchange"):
        parse_statement(io.BytesIO(data))


def test_100_mb_of_garbage_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "garbage.bin"
    with path.open("wb") as out:
        out.write(b"\x8b\x1f")   # not '<' and not the 1C header, whatever urandom starts with
        _write_garbage(out)
    stream = _CountingStream(path)
    with pytest.raises(UnknownStatementFormat):
        parse_statement(io.BufferedReader(stream))
    assert stream.consumed <= 64 * 1024


def test_100_mb_of_garbage_after_a_valid_start_fails_fast(tmp_path: Path) -> None:
    for name, start in (("camt", document_open(8) + statement_open() + entry_xml(8, Entry("12.34", "CRDT"))),
                        ("1c", "\r\n".join([*one_c_header(), *one_c_document("7", "12.34")]) + "\r\n")):
        path = tmp_path / f"{name}.bin"
        with path.open("wb") as out:
            out.write(start.encode("cp1251"))
            _write_garbage(out)
        stream = _CountingStream(path)
        seen: list[object] = []
        with pytest.raises(UnusableStatement) as raised:
            seen.extend(parse_statement(io.BufferedReader(stream)))
        assert stream.consumed < 2 * 1024 * 1024, name
        good = [item for item in seen if isinstance(item, StatementLine)]
        assert [line.amount for line in good] == [1234], f"{name}: the movement before the garbage was lost"
        assert seen[0] is good[0], name
        assert raised.value.line_number > 1, name
        assert raised.value.field_name, name


def test_overlong_1c_line_is_refused_without_reading_it_whole() -> None:
    data = one_c_file([*one_c_document("1", "1.00", НазначениеПлатежа="x" * (MAX_LINE_BYTES + 10))])
    with pytest.raises(UnusableStatement, match="longer than"):
        list(parse_statement(io.BytesIO(data)))


def test_1c_body_of_stray_lines_gives_up_after_the_limit() -> None:
    data = one_c_file(["СекцияРасчСчет", "КонецРасчСчет", *(["stray"] * 500)])
    items = parse_statement(io.BytesIO(data))
    seen: list[object] = []
    with pytest.raises(UnusableStatement, match="bad lines in a row"):
        seen.extend(items)
    assert 100 <= sum(isinstance(item, StatementLineError) for item in seen) <= 101


def test_non_numeric_amounts_in_both_formats() -> None:
    camt_items = list(parse_statement(io.BytesIO(camt053(8, [Entry("one hundred", "CRDT")]))))
    one_c_items = list(parse_statement(io.BytesIO(one_c_file(one_c_document("1", "сто")))))
    for items, field in ((camt_items, "Ntry/Amt"), (one_c_items, "Сумма")):
        [error] = items
        assert isinstance(error, StatementLineError)
        assert error.field == field
        assert "not a decimal amount" in error.reason


def test_deep_nesting_is_refused() -> None:
    data = (document_open(8) + statement_open() + "<Ntry>" + "<AddtlNtryInf>" * 100_000).encode()
    with pytest.raises(UnusableStatement, match="nested deeper than 64") as raised:
        list(parse_statement(io.BytesIO(data)))
    assert (raised.value.line_number, raised.value.field_name) == (2, "AddtlNtryInf")


def test_entries_outside_a_statement_are_reported_not_booked() -> None:
    data = (document_open(8) + entry_xml(8, Entry("1.00", "CRDT")) + statement_open()
            + entry_xml(8, Entry("2.00", "CRDT")) + "</Stmt>" + DOCUMENT_CLOSE).encode()
    items = list(parse_statement(io.BytesIO(data)))
    assert [(type(i).__name__, getattr(i, "field", "")) for i in items] == [
        ("StatementLineError", "Ntry"), ("StatementLine", "")]
