"""Writers of the three reports as CSV (RFC 4180, UTF-8, a header row) and JSON Lines
(one object per line). Each writer streams: it holds one row at a time."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO, Any, Protocol

from settlement.exports.rows import (
    JOURNAL_COLUMNS,
    STATEMENT_COLUMNS,
    TRIAL_BALANCE_COLUMNS,
    BalanceLine,
    JournalLine,
    StatementLine,
    format_amount,
)

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class ReportWriter(Protocol):
    rows: int

    def journal(self, line: JournalLine) -> None: ...

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

    def journal(self, line: JournalLine) -> None:
        debit, credit = _sides(line.side, line.amount, line.currency)
        self._csv.writerow((line.seq, line.entry_id, line.idempotency_key, line.kind, line.effective_at,
                            line.recorded_at, line.description, line.metadata, _opt(line.reverses_entry_id),
                            _opt(line.hold_id), _opt(line.posting_id), _opt(line.account_id),
                            _opt(line.account_code), _opt(debit), _opt(credit), _opt(line.currency),
                            "" if line.pending is None else ("true" if line.pending else "false"), line.leaf_hash))
        self.rows += 1

    def balance(self, line: BalanceLine) -> None:
        c = line.currency
        self._csv.writerow((line.account_id, line.account_code, c, line.type, *split_net(line.opening, c),
                            format_amount(line.debit, c), format_amount(line.credit, c),
                            *split_net(line.closing, c)))
        self.rows += 1

    def statement(self, line: StatementLine) -> None:
        debit, credit = _sides(line.side, line.amount, line.currency)
        self._csv.writerow((line.account_code, line.currency, line.line, _opt(line.seq), _opt(line.entry_id),
                            _opt(line.posting_id), _opt(line.recorded_at), _opt(line.effective_at),
                            _opt(line.kind), _opt(line.description), _opt(debit), _opt(credit),
                            format_amount(line.balance, line.currency)))
        self.rows += 1

    def close(self) -> None:
        self._handle.close()


class JsonLinesWriter:
    def __init__(self, path: Path) -> None:
        self._handle: IO[str] = path.open("w", encoding="utf-8", newline="\n")
        self.rows = 0

    def journal(self, line: JournalLine) -> None:
        debit, credit = _sides(line.side, line.amount, line.currency)
        rest = _JSON.encode({
            "seq": line.seq, "entry_id": line.entry_id, "idempotency_key": line.idempotency_key, "kind": line.kind,
            "effective_at": line.effective_at, "recorded_at": line.recorded_at, "description": line.description,
            "reverses_entry_id": line.reverses_entry_id, "hold_id": line.hold_id, "posting_id": line.posting_id,
            "account_id": line.account_id, "account_code": line.account_code, "debit": debit, "credit": credit,
            "currency": line.currency, "pending": line.pending, "leaf_hash": line.leaf_hash})
        # metadata is already canonical JSON text: splice it in rather than parse it again.
        self._handle.write('{"metadata":' + line.metadata + "," + rest[1:] + "\n")
        self.rows += 1

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
                     "recorded_at": line.recorded_at, "effective_at": line.effective_at, "kind": line.kind,
                     "description": line.description, "debit": debit, "credit": credit,
                     "balance": format_amount(line.balance, line.currency)})

    def _write(self, doc: dict[str, Any]) -> None:
        self._handle.write(_JSON.encode(doc) + "\n")
        self.rows += 1

    def close(self) -> None:
        self._handle.close()


COLUMNS = {"journal": JOURNAL_COLUMNS, "trial_balance": TRIAL_BALANCE_COLUMNS, "statements": STATEMENT_COLUMNS}
