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
import json
from collections.abc import Iterator
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


def _int(value: Any, name: str, *, optional: bool = False) -> int | None:
    if value in ("", None) and optional:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value)
    raise BadRow(f"{name} {value!r} is not an integer")


def _req_int(value: Any, name: str) -> int:
    number = _int(value, name)
    assert number is not None
    return number


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise BadRow(f"{name} must be text")
    return value


def _side(debit: Any, credit: Any, currency: str | None) -> tuple[str | None, int | None]:
    debit = None if debit in ("", None) else debit
    credit = None if credit in ("", None) else credit
    if debit is None and credit is None:
        return None, None
    if debit is not None and credit is not None:
        raise BadRow("a row has a debit or a credit, not both")
    if currency is None:
        raise BadRow("an amount without a currency")
    text = _text(debit if debit is not None else credit, "amount")
    return ("D" if debit is not None else "C"), parse_amount(text, currency)


def _leaf(value: Any) -> str:
    text = _text(value, "leaf_hash")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise BadRow("leaf_hash is not 64 lowercase hex digits")
    return text


def journal_line(doc: dict[str, Any], metadata: str) -> JournalLine:
    currency = doc["currency"] or None
    side, amount = _side(doc["debit"], doc["credit"], currency)
    pending_value = doc["pending"]
    pending = {"true": True, "false": False, "": None, True: True, False: False, None: None}.get(pending_value, "x")
    if pending == "x":
        raise BadRow(f"pending {pending_value!r} is not true or false")
    posting_id = _int(doc["posting_id"], "posting_id", optional=True)
    if posting_id is not None and (side is None or pending is None):
        raise BadRow("a posting row needs a debit or credit and pending")
    return JournalLine(
        _req_int(doc["seq"], "seq"), _req_int(doc["entry_id"], "entry_id"), _text(doc["idempotency_key"], "key"),
        _text(doc["kind"], "kind"), _text(doc["effective_at"], "effective_at"),
        _text(doc["recorded_at"], "recorded_at"), _text(doc["description"], "description"), metadata,
        _int(doc["reverses_entry_id"], "reverses_entry_id", optional=True),
        _int(doc["hold_id"], "hold_id", optional=True), posting_id,
        _int(doc["account_id"], "account_id", optional=True), doc["account_code"] or None, side, amount, currency,
        pending if isinstance(pending, bool) else None, _leaf(doc["leaf_hash"]))


def balance_line(doc: dict[str, Any]) -> BalanceLine:
    currency = _text(doc["currency"], "currency")

    def amount(name: str) -> int:
        return parse_amount(_text(doc[name], name), currency, field=name)

    return BalanceLine(_req_int(doc["account_id"], "account_id"), _text(doc["account_code"], "account_code"),
                       currency, _text(doc["type"], "type"), amount("opening_debit") - amount("opening_credit"),
                       amount("debit"), amount("credit"), amount("closing_debit") - amount("closing_credit"))


def statement_line(doc: dict[str, Any]) -> StatementLine:
    currency = _text(doc["currency"], "currency")
    line = doc["line"]
    if line not in ("opening", "posting", "closing"):
        raise BadRow(f"line {line!r} is not opening, posting or closing")
    balance = parse_amount(_text(doc["balance"], "balance"), currency, field="balance")
    out = StatementLine(_text(doc["account_code"], "account_code"), currency, line, balance)
    if line == "posting":
        out.seq = _int(doc["seq"], "seq")
        out.entry_id = _int(doc["entry_id"], "entry_id")
        out.posting_id = _int(doc["posting_id"], "posting_id")
        out.side, out.amount = _side(doc["debit"], doc["credit"], currency)
        if out.side is None:
            raise BadRow("a posting line needs a debit or a credit")
    return out


_PARSERS = {"journal": (JOURNAL_COLUMNS, None), "trial_balance": (TRIAL_BALANCE_COLUMNS, balance_line),
            "statements": (STATEMENT_COLUMNS, statement_line)}


def read_csv(path: Path, report: str) -> Iterator[Row]:
    columns, parser = _PARSERS[report]
    name = path.name
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        rows = csv.reader(handle, strict=True)
        try:
            header = next(rows, None)
            if header is None or tuple(header) != columns:
                yield f"{name} header", f"the header is not {','.join(columns)}"
                return
            for number, row in enumerate(rows, 1):
                where = f"{name} row {number}"
                if len(row) != len(columns):
                    yield where, f"has {len(row)} fields, not {len(columns)}"
                    continue
                doc = dict(zip(columns, row, strict=True))
                yield where, _parse(report, parser, doc, doc.get("metadata"))
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
