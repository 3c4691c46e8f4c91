"""The verifier's CSV reading is csv.reader's: the same records, the same errors at
the same line numbers, for any text; and a file read in two parts cut after a line
break gives the same lines as read whole."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.exports.readers import CsvRecords, open_text

PIECES = st.lists(st.sampled_from(["a", "7", ",", '"', "\n", "\r", "\r\n", "\0", " ", "\u00e9", '""']), max_size=40)


def read(rows: Iterable[list[str]], line_num: Iterator[int]) -> tuple[list[list[str]], str | None, int]:
    out: list[list[str]] = []
    try:
        out.extend(rows)
        error = None
    except csv.Error as exc:
        error = str(exc)
    return out, error, next(line_num)


def both(text: str) -> tuple[tuple[list[list[str]], str | None, int], tuple[list[list[str]], str | None, int]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = CsvRecords(io.StringIO(text, newline=""))
    return (read(reader, iter(lambda: reader.line_num, None)),
            read(records, iter(lambda: records.line_num, None)))


@given(PIECES)
def test_records_are_what_csv_reader_reads(pieces: list[str]) -> None:
    expected, got = both("".join(pieces))
    assert got == expected


@pytest.mark.parametrize("text", [
    "a,b\n\nc,d\r\n\r\ne\rf",
    'x,"multi\nline, with ""quotes""",y\nnext,row\n',
    'x,"open quote\nnever closed\n',
    'a,b"c,d\n"x"y,z\n',
    "nul\0inside,field\n",
    "",
    "\n",
    "only,a,line",
])
def test_awkward_texts(text: str) -> None:
    expected, got = both(text)
    assert got == expected


def test_fields_near_the_size_limit() -> None:
    previous = csv.field_size_limit(8)
    try:
        for text in ["1234567,12345678\n", "123456789,1\n", "a,b\n" + "x" * 9 + "\nlast\n"]:
            expected, got = both(text)
            assert got == expected, text
    finally:
        csv.field_size_limit(previous)


def test_a_file_read_in_two_parts_has_the_lines_of_the_whole(tmp_path: Path) -> None:
    data = b'h1,h2\r\n1,"two\r\nlines"\n2,\xff\xfe bad bytes\r3,x\n4,\xc3\xa9\n5,\xc3\n'
    path = tmp_path / "file.csv"
    path.write_bytes(data)
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        whole = list(handle)
    with open_text(path) as text:
        assert list(text) == whole
    cuts = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    for cut in cuts:
        with open_text(path, 0, cut) as head, open_text(path, cut) as tail:
            assert list(head) + list(tail) == whole, cut
        assert head.closed
