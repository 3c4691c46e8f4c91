"""Writers of the three reports as CSV (RFC 4180, UTF-8, a header row) and JSON Lines
(one object per line). Each writer streams: it holds one entry at a time."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from settlement.exports.rows import (
    JOURNAL_COLUMNS,
    STATEMENT_COLUMNS,
    TRIAL_BALANCE_COLUMNS,
    BalanceLine,
    EntryFields,
    PostingFields,
    StatementLine,
    format_amount,
)

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class ReportWriter(Protocol):
    rows: int

    def journal(self, entry: EntryFields, postings: Sequence[PostingFields]) -> None: ...

    def balance(self, line: BalanceLine) -> None: ...

    def statement(self, line: StatementLine) -> None: ...

    def close(self) -> None: ...


def _opt(value: Any) -> str:
    return "" if value is None else str(value)


def _sides(side: str | None, amount: int | None, currency: str | None) -> tuple[str | None, str | None]:
    if side is None or amount is None or currency is None:
        return None, None
    text = format_amount(amount, currency)
    return (text, None) if side == "D" else (None, text)


def split_net(net: int, currency: str) -> tuple[str, str]:
    """A net balance (debits - credits) as (debit, credit) columns, the other zero."""
    zero = format_amount(0, currency)
    return (format_amount(net, currency), zero) if net >= 0 else (zero, format_amount(-net, currency))


class CsvWriter:
    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self._handle: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._handle, lineterminator="\n")
        self._csv.writerow(columns)
        self.rows = 0

    def journal(self, entry: EntryFields, postings: Sequence[PostingFields]) -> None:
        seq, entry_id, key, kind, effective, recorded, description, metadata, reverses, hold, leaf = entry
        head = (seq, entry_id, key, kind, effective, recorded, description, metadata,
                "" if reverses is None else reverses, "" if hold is None else hold)
        if not postings:
            self._csv.writerow((*head, "", "", "", "", "", "", "", leaf))
            self.rows += 1
            return
        rows = []
        for posting_id, account_id, code, side, amount, currency, pending, _, _ in postings:
            text = format_amount(amount, currency)
            rows.append((*head, posting_id, account_id, code, text if side == "D" else "",
                         "" if side == "D" else text, currency, "true" if pending else "false", leaf))
        self._csv.writerows(rows)
        self.rows += len(rows)

    def balance(self, line: BalanceLine) -> None:
        c = line.currency
        self._csv.writerow((line.account_id, line.account_code, c, line.type, *split_net(line.opening, c),
                            format_amount(line.debit, c), format_amount(line.credit, c),
                            *split_net(line.closing, c)))
        self.rows += 1

    def statement(self, line: StatementLine) -> None:
        debit, credit = _sides(line.side, line.amount, line.currency)
        self._csv.writerow((line.account_code, line.currency, line.line, _opt(line.seq), _opt(line.entry_id),
                            _opt(line.posting_id), _opt(line.recorded_at), _opt(line.description), _opt(debit),
                            _opt(credit), format_amount(line.balance, line.currency)))
        self.rows += 1

    def close(self) -> None:
        self._handle.close()


class JsonLinesWriter:
    def __init__(self, path: Path) -> None:
        self._handle: IO[str] = path.open("w", encoding="utf-8", newline="\n")
        self.rows = 0

    def journal(self, entry: EntryFields, postings: Sequence[PostingFields]) -> None:
        seq, entry_id, key, kind, effective, recorded, description, metadata, reverses, hold, leaf = entry
        # metadata is already canonical JSON text: splice it in rather than parse it again.
        head = '{"metadata":' + metadata + "," + _JSON.encode({
            "seq": seq, "entry_id": entry_id, "idempotency_key": key, "kind": kind, "effective_at": effective,
            "recorded_at": recorded, "description": description, "reverses_entry_id": reverses, "hold_id": hold,
            "leaf_hash": leaf})[1:-1] + ","
        if not postings:
            self._handle.write(head + '"posting_id":null,"account_id":null,"account_code":null,"debit":null,'
                                      '"credit":null,"currency":null,"pending":null}\n')
            self.rows += 1
            return
        lines = []
        for posting_id, account_id, code, side, amount, currency, pending, _, _ in postings:
            text = format_amount(amount, currency)
            lines.append(head + _JSON.encode({
                "posting_id": posting_id, "account_id": account_id, "account_code": code,
                "debit": text if side == "D" else None, "credit": None if side == "D" else text,
                "currency": currency, "pending": pending})[1:] + "\n")
        self._handle.write("".join(lines))
        self.rows += len(lines)

    def balance(self, line: BalanceLine) -> None:
        c = line.currency
        opening_debit, opening_credit = split_net(line.opening, c)
        closing_debit, closing_credit = split_net(line.closing, c)
        self._write({"account_id": line.account_id, "account_code": line.account_code, "currency": c,
                     "type": line.type, "opening_debit": opening_debit, "opening_credit": opening_credit,
                     "debit": format_amount(line.debit, c), "credit": format_amount(line.credit, c),
                     "closing_debit": closing_debit, "closing_credit": closing_credit})

    def statement(self, line: StatementLine) -> None:
        debit, credit = _sides(line.side, line.amount, line.currency)
        self._write({"account_code": line.account_code, "currency": line.currency, "line": line.line,
                     "seq": line.seq, "entry_id": line.entry_id, "posting_id": line.posting_id,
                     "recorded_at": line.recorded_at, "description": line.description, "debit": debit,
                     "credit": credit, "balance": format_amount(line.balance, line.currency)})

    def _write(self, doc: dict[str, Any]) -> None:
        self._handle.write(_JSON.encode(doc) + "\n")
        self.rows += 1

    def close(self) -> None:
        self._handle.close()


COLUMNS = {"journal": JOURNAL_COLUMNS, "trial_balance": TRIAL_BALANCE_COLUMNS, "statements": STATEMENT_COLUMNS}
