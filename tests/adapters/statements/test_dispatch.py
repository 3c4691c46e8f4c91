"""Format sniffing, including streams that cannot seek (pipes, sockets)."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator

import pytest

from adapters.statements import StatementFormat, StatementLine, parse_statement
from adapters.statements.dispatch import SNIFF_BYTES, sniff
from tests.adapters.statements.factories import Entry, camt053, one_c_document, one_c_file


@pytest.fixture
def pipe() -> Iterator[tuple[io.BufferedReader, io.BufferedWriter]]:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        yield reader, writer


@pytest.mark.parametrize(("data", "expected"), [
    (camt053(2, [Entry("1.00", "CRDT")]), StatementFormat.CAMT053),
    (b"\xef\xbb\xbf" + camt053(8, [Entry("1.00", "CRDT")]), StatementFormat.CAMT053),
    (b"\r\n  " + camt053(8, [Entry("1.00", "CRDT")]).partition(b"?>")[2], StatementFormat.CAMT053),
    (one_c_file(one_c_document("1", "1.00")), StatementFormat.CLIENT_BANK_EXCHANGE),
    (one_c_file(one_c_document("1", "1.00"), encoding="cp866"), StatementFormat.CLIENT_BANK_EXCHANGE),
])
def test_formats_are_recognised_through_a_pipe(pipe: tuple[io.BufferedReader, io.BufferedWriter],
                                               data: bytes, expected: StatementFormat) -> None:
    reader, writer = pipe
    feeder = threading.Thread(target=lambda: (writer.write(data), writer.close()))
    feeder.start()
    try:
        [line] = [item for item in parse_statement(reader) if isinstance(item, StatementLine)]
    finally:
        feeder.join()
    assert line.format is expected
    assert line.amount == 100


def test_a_large_file_keeps_bytes_across_the_sniff_boundary() -> None:
    entries = [Entry(f"{n}.{n % 100:02d}", "CRDT") for n in range(1, 200)]
    data = camt053(8, entries)
    assert len(data) > 4 * SNIFF_BYTES
    lines = [item for item in parse_statement(io.BytesIO(data)) if isinstance(item, StatementLine)]
    assert [line.amount for line in lines] == [n * 100 + n % 100 for n in range(1, 200)]


def test_sniff() -> None:
    assert sniff(b"1CClientBankExchange\r\nx") == "1c"
    assert sniff(b"\xef\xbb\xbf1CClientBankExchange\n") == "1c"
    assert sniff(b"\n\t<?xml") == "xml"
    assert sniff(b"1CClientBankExchange2\r\n") == ""
    assert sniff(b"garbage") == ""
