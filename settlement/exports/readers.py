"""Reading export files back, row by row, for the verifier: CSV and JSON Lines
here, SAF-T XML in :mod:`settlement.exports.saft_reader`.

Every reader yields ``(where, row)`` where ``where`` names the file and row
(``journal.csv row 17``: data rows counted from 1 after the header; ``line 17`` for
JSON Lines) and ``row`` is the parsed row, or a string saying why the row could not
be read. Bytes that are not UTF-8 are replaced, so the row still parses and the
hash checks name it.
"""

from __future__ import annotations

import csv
import io
import json
import operator
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from settlement.errors import SettlementError
from settlement.exports.rows import (
    JOURNAL_COLUMNS,
    STATEMENT_COLUMNS,
    TRIAL_BALANCE_COLUMNS,
    BalanceLine,
    JournalLine,
    StatementLine,
    parse_amount,
)
from settlement.journal.canonical import canonical_json

Row = tuple[str, Any]


class BadRow(ValueError):
    pass


LEAF_PATTERN = re.compile("[0-9a-f]{64}")
TIME_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_PENDING: dict[Any, bool] = {"true": True, "false": False, True: True, False: False}
_EMPTY = ("", None)


def _int(value: Any, name: str, *, optional: bool = False) -> int | None:
    if optional and value in _EMPTY:
        return None
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit() and value.isascii():
        return int(value)
    raise BadRow(f"{name} {value!r} is not an integer")


def _req_int(value: Any, name: str) -> int:
    number = _int(value, name)
    assert number is not None
    return number


def _text(value: Any, name: str) -> str:
    if type(value) is not str:
        raise BadRow(f"{name} must be text")
    return value


def _time(value: Any, name: str) -> str:
    if type(value) is not str or not TIME_PATTERN.fullmatch(value):
        raise BadRow(f"{name} {value!r} is not a canonical time (YYYY-MM-DDTHH:MM:SS.ffffffZ)")
    return value


def _side(debit: Any, credit: Any, currency: str | None) -> tuple[str | None, int | None]:
    debit = None if debit in _EMPTY else debit
    credit = None if credit in _EMPTY else credit
    if debit is None and credit is None:
        return None, None
    if debit is not None and credit is not None:
        raise BadRow("a row has a debit or a credit, not both")
    if currency is None:
        raise BadRow("an amount without a currency")
    text = _text(debit if debit is not None else credit, "amount")
    return ("D" if debit is not None else "C"), parse_amount(text, currency)


def journal_values(values: Sequence[Any], metadata: str) -> JournalLine:
    """A journal row from its values in :data:`JOURNAL_COLUMNS` order (CSV strings, or
    JSON values), checked for shape; the hashes decide whether it is right."""
    (seq, entry_id, key, kind, effective, recorded, description, _, reverses, hold, posting_id, account_id, code,
     debit, credit, currency, pending, leaf) = values
    if type(leaf) is not str or not LEAF_PATTERN.fullmatch(leaf):
        raise BadRow("leaf_hash is not 64 lowercase hex digits")
    line = JournalLine(_req_int(seq, "seq"), _req_int(entry_id, "entry_id"), _text(key, "idempotency_key"),
                       _text(kind, "kind"), _time(effective, "effective_at"), _time(recorded, "recorded_at"),
                       _text(description, "description"), metadata, _int(reverses, "reverses_entry_id", optional=True),
                       _int(hold, "hold_id", optional=True), None, None, None, None, None, None, None, leaf)
    if posting_id in _EMPTY:
        if any(v not in _EMPTY for v in (account_id, code, debit, credit, currency, pending)):
            raise BadRow("posting fields without a posting_id")
        return line
    line.posting_id = _req_int(posting_id, "posting_id")
    line.account_id = _req_int(account_id, "account_id")
    line.account_code = _text(code, "account_code")
    if not code:
        raise BadRow("account_code is empty")
    line.currency = _text(currency, "currency")
    line.pending = _PENDING.get(pending)
    if line.pending is None:
        raise BadRow(f"pending {pending!r} is not true or false")
    line.side, line.amount = _side(debit, credit, line.currency)
    if line.amount is None or line.amount <= 0:
        raise BadRow("a posting needs a debit or a credit greater than zero")
    return line


def _digits(text: str, name: str) -> int:
    if text.isdigit() and text.isascii():
        return int(text)
    raise BadRow(f"{name} {text!r} is not an integer")


def journal_csv(row: list[str]) -> JournalLine:
    """:func:`journal_values` for a CSV row (every value a string), on the hot path."""
    (seq, entry_id, key, kind, effective, recorded, description, metadata, reverses, hold, posting_id, account_id,
     code, debit, credit, currency, pending, leaf) = row
    if not LEAF_PATTERN.fullmatch(leaf):
        raise BadRow("leaf_hash is not 64 lowercase hex digits")
    if not TIME_PATTERN.fullmatch(effective) or not TIME_PATTERN.fullmatch(recorded):
        raise BadRow("effective_at and recorded_at must be canonical times (YYYY-MM-DDTHH:MM:SS.ffffffZ)")
    line = JournalLine(_digits(seq, "seq"), _digits(entry_id, "entry_id"), key, kind, effective, recorded,
                       description, metadata, _digits(reverses, "reverses_entry_id") if reverses else None,
                       _digits(hold, "hold_id") if hold else None, None, None, None, None, None, None, None, leaf)
    if not posting_id:
        if account_id or code or debit or credit or currency or pending:
            raise BadRow("posting fields without a posting_id")
        return line
    line.posting_id = _digits(posting_id, "posting_id")
    line.account_id = _digits(account_id, "account_id")
    if not code:
        raise BadRow("account_code is empty")
    line.account_code = code
    line.currency = currency
    line.pending = _PENDING.get(pending)
    if line.pending is None:
        raise BadRow(f"pending {pending!r} is not true or false")
    if debit and not credit:
        line.side, line.amount = "D", parse_amount(debit, currency)
    elif credit and not debit:
        line.side, line.amount = "C", parse_amount(credit, currency)
    else:
        raise BadRow("a posting has a debit or a credit, not both or neither")
    if line.amount <= 0:
        raise BadRow("a posting's amount must be greater than zero")
    return line


def journal_line(doc: dict[str, Any], metadata: str) -> JournalLine:
    return journal_values(_JOURNAL_FIELDS(doc), metadata)


_JOURNAL_FIELDS = operator.itemgetter(*JOURNAL_COLUMNS)


def balance_line(doc: dict[str, Any]) -> BalanceLine:
    currency = _text(doc["currency"], "currency")

    def amount(name: str) -> int:
        return parse_amount(_text(doc[name], name), currency, field=name)

    return BalanceLine(_req_int(doc["account_id"], "account_id"), _text(doc["account_code"], "account_code"),
                       currency, _text(doc["type"], "type"), amount("opening_debit") - amount("opening_credit"),
                       amount("debit"), amount("credit"), amount("closing_debit") - amount("closing_credit"))


def statement_values(values: Sequence[Any]) -> StatementLine:
    """A statement line from its values in :data:`STATEMENT_COLUMNS` order."""
    code, currency, line, seq, entry_id, posting_id, recorded, description, debit, credit, balance = values
    currency = _text(currency, "currency")
    if line not in ("opening", "posting", "closing"):
        raise BadRow(f"line {line!r} is not opening, posting or closing")
    out = StatementLine(_text(code, "account_code"), currency, line,
                        parse_amount(_text(balance, "balance"), currency, field="balance"))
    if line == "posting":
        out.seq = _int(seq, "seq")
        out.entry_id = _int(entry_id, "entry_id")
        out.posting_id = _int(posting_id, "posting_id")
        out.recorded_at = None if recorded in _EMPTY else _text(recorded, "recorded_at")
        out.description = None if description is None else _text(description, "description")
        out.side, out.amount = _side(debit, credit, currency)
        if out.side is None:
            raise BadRow("a posting line needs a debit or a credit")
    return out


_STATEMENT_FIELDS = operator.itemgetter(*STATEMENT_COLUMNS)


def statement_line(doc: dict[str, Any]) -> StatementLine:
    return statement_values(_STATEMENT_FIELDS(doc))


_PARSERS = {"journal": (JOURNAL_COLUMNS, None), "trial_balance": (TRIAL_BALANCE_COLUMNS, balance_line),
            "statements": (STATEMENT_COLUMNS, statement_line)}


def header_problem(name: str, header: list[str] | None, columns: tuple[str, ...]) -> tuple[str, str] | None:
    """(where, what) if a CSV file's first record is not ``columns``, else None."""
    if header is None or tuple(header) != columns:
        return f"{name} header", f"the header is not {','.join(columns)}"
    return None


def read_csv(path: Path, report: str) -> Iterator[Row]:
    columns, parser = _PARSERS[report]
    name = path.name
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        rows = csv.reader(handle, strict=True)
        try:
            problem = header_problem(name, next(rows, None), columns)
            if problem is not None:
                yield problem
                return
            for number, row in enumerate(rows, 1):
                where = f"{name} row {number}"
                if len(row) != len(columns):
                    yield where, f"has {len(row)} fields, not {len(columns)}"
                    continue
                if report != "trial_balance":
                    try:
                        yield where, journal_csv(row) if report == "journal" else statement_values(row)
                    except (BadRow, SettlementError) as exc:
                        yield where, str(exc)
                    continue
                yield where, _parse(report, parser, dict(zip(columns, row, strict=True)), None)
        except csv.Error as exc:
            yield f"{name} row {rows.line_num}", f"is not valid CSV ({exc})"


def read_jsonl(path: Path, report: str) -> Iterator[Row]:
    columns, parser = _PARSERS[report]
    name = path.name
    with path.open("r", encoding="utf-8", errors="replace", newline="\n") as handle:
        for number, text in enumerate(handle, 1):
            where = f"{name} line {number}"
            try:
                doc = json.loads(text)
            except ValueError as exc:
                yield where, f"is not JSON ({exc})"
                continue
            if not isinstance(doc, dict) or set(doc) != set(columns):
                yield where, f"does not have exactly the fields {', '.join(columns)}"
                continue
            metadata = None
            if report == "journal":
                if not isinstance(doc["metadata"], dict):
                    yield where, "metadata is not a JSON object"
                    continue
                metadata = canonical_json(doc["metadata"])
            yield where, _parse(report, parser, doc, metadata)


def _parse(report: str, parser: Any, doc: dict[str, Any], metadata: str | None) -> Any:
    try:
        if report == "journal":
            return journal_line(doc, _text(metadata, "metadata"))
        return parser(doc)
    except (BadRow, SettlementError) as exc:
        return str(exc)
    except (KeyError, TypeError) as exc:
        return f"malformed row ({exc})"


class CsvRecords:
    """The records ``csv.reader(lines, strict=True)`` gives and its ``line_num``,
    for ``lines`` as a text file opened with ``newline=""`` gives them; faster. A
    line without a quote character (or a NUL, or a field that could reach csv's
    size limit) is split at its commas here, which is all csv does with such a
    line; the reader takes the others, and the lines after them that a quoted
    field spans. Iterate it once."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = iter(lines)
        self._held: list[str] = []
        self.line_num = 0
        self._reader = csv.reader(self._feed(), strict=True)

    def _feed(self) -> Iterator[str]:
        held, lines = self._held, self._lines
        while True:
            if held:
                line = held.pop()
            else:
                taken = next(lines, None)
                if taken is None:
                    return
                line = taken
            self.line_num += 1
            yield line

    def __iter__(self) -> Iterator[list[str]]:
        limit = csv.field_size_limit()
        reader, held = self._reader, self._held
        for line in self._lines:
            if '"' in line or "\0" in line or len(line) >= limit:
                held.append(line)
                yield next(reader)
                continue
            self.line_num += 1
            body = line.rstrip("\r\n")  # a line holds one line break, at its end
            yield body.split(",") if body else []


class _Window(io.RawIOBase):
    """The next ``size`` bytes of an open file (closed with it)."""

    def __init__(self, handle: io.BufferedReader, size: int) -> None:
        super().__init__()
        self._handle, self._left = handle, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as view:
            count = self._handle.readinto(view[:self._left]) or 0
        self._left -= count
        return count

    def close(self) -> None:
        self._handle.close()
        super().close()


def open_text(path: Path, start: int = 0, end: int | None = None) -> io.TextIOWrapper:
    """Bytes ``[start, end)`` of a file, read as ``path.open("r", encoding="utf-8",
    errors="replace", newline="")`` reads a whole file: cut after a line break, the
    parts' lines are the whole's."""
    handle = path.open("rb")
    try:
        handle.seek(start)
        raw = handle if end is None else io.BufferedReader(_Window(handle, end - start), 1 << 16)
        return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
    except BaseException:
        handle.close()
        raise
