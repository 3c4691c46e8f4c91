"""Loading a parsed file into ``recon_file_items`` / ``recon_statement_lines`` and
``recon_file_errors``: one chunk per call, written with COPY on PostgreSQL and with
one prepared INSERT per table (``executemany``) on SQLite, the file's checkpoint
(``loaded_items``: how many items of the parser's stream are loaded) moved in the
same transaction. Parsers are deterministic, so a load cut short re-reads the file,
skips that many items and loads no line twice (the unique (file, line) constraint
would refuse it anyway). Both paths make the same rows: the same key checks (a key
too long, or holding a NUL, is an error item, never cut or altered) and the same
widths for the other texts.

COPY values are written in its text format, escaped here: a backslash, tab, newline
or carriage return inside a value would otherwise split or corrupt the row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from adapters.base import MalformedFile, RecordError, SettlementRecord
from adapters.statements import StatementBalance, StatementItem, StatementLine, StatementLineError
from settlement.db.types import utcnow
from settlement.reconciliation.models import FileStatus
from settlement.reconciliation.service.sql import sql

Item = SettlementRecord | RecordError | StatementItem

ITEM_COLUMNS = ("file_id", "line_number", "record_type", "reference", "rail_reference", "rrn", "arn", "gross", "fee",
                "net", "currency", "transaction_date", "settlement_date", "settlement_amount", "settlement_currency",
                "fx_rate")
LINE_COLUMNS = ("file_id", "line_number", "sub_index", "account", "statement_id", "amount", "currency",
                "entry_status", "booking_date", "value_date", "bank_reference", "end_to_end_id",
                "counterparty_name", "counterparty_account", "remittance")
ERROR_COLUMNS = ("file_id", "line_number", "sub_index", "field", "reason", "raw")

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"
#: Widths of the key columns: a longer value makes the line an error item rather than
#: being cut (a cut reference could match the wrong expectation).
_KEYS = (("reference", 100), ("rail_reference", 100), ("rrn", 64), ("arn", 64))
#: Widths the other texts are cut to (their columns' widths).
ACCOUNT, STATEMENT_ID, BANK_REFERENCE, END_TO_END, COUNTERPARTY, COUNTERPARTY_ACCOUNT, REMITTANCE = (
    64, 200, 200, 200, 300, 64, 500)
FIELD, REASON, RAW = 100, 500, 300
#: The ``field`` of the error item that says why a file as a whole is unusable.
FILE_FIELD = "file"


def _text(value: str, width: int | None = None) -> str:
    if width is not None:
        value = value[:width]
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


#: A string value escaped for COPY's text format, for other bulk writers.
copy_escape = _text


def _printable(value: str) -> str:
    """An error item's text without NUL characters, which PostgreSQL text cannot hold
    (a garbage line's bytes decode to them): each is written ``\\x00``."""
    return value.replace("\x00", "\\x00") if "\x00" in value else value


def _optional(value: int | str | Decimal | None) -> str:
    return _NULL if value is None else str(value)


def _day(value: dt.date | None, cache: dict[dt.date, str]) -> str:
    if value is None:
        return _NULL
    found = cache.get(value)
    if found is None:
        found = cache[value] = value.isoformat()
    return found


def _key_problem(record: SettlementRecord) -> tuple[str, str] | None:
    for name, width in _KEYS:
        value = getattr(record, name)
        if len(value) > width:
            return name, f"longer than {width} characters"
        if "\x00" in value:
            return name, "contains a NUL character"
    if len(record.currency) != 3 or (record.settlement_currency is not None and len(record.settlement_currency) != 3):
        return "currency", "not a three-letter currency code"
    return None


class _Rows:
    """COPY text rows of one chunk, by table (PostgreSQL)."""

    def __init__(self, file_id: int) -> None:
        self.file_id = file_id
        self.prefix = f"{file_id}\t"
        self.items: list[Any] = []
        self.lines: list[Any] = []
        self.errors: list[Any] = []
        self.days: dict[dt.date, str] = {}

    def record(self, r: SettlementRecord) -> None:
        problem = _key_problem(r)
        if problem is not None:
            self.error(r.line_number, 0, problem[0], problem[1], "")
            return
        days = self.days
        self.items.append(
            f"{self.prefix}{r.line_number}\t{r.record_type.value}\t{_text(r.reference)}\t{_text(r.rail_reference)}\t"
            f"{_text(r.rrn)}\t{_text(r.arn)}\t{r.gross}\t{r.fee}\t{r.net}\t{r.currency}\t"
            f"{_day(r.transaction_date, days)}\t{_day(r.settlement_date, days)}\t{_optional(r.settlement_amount)}\t"
            f"{_optional(r.settlement_currency)}\t{_optional(r.fx_rate)}\n")

    def line(self, s: StatementLine) -> None:
        days = self.days
        self.lines.append(
            f"{self.prefix}{s.line_number}\t{s.sub_index}\t{_text(s.account, ACCOUNT)}\t"
            f"{_text(s.statement_id, STATEMENT_ID)}\t{s.signed_amount}\t{s.currency}\t{s.status.value}\t"
            f"{_day(s.booking_date, days)}\t{_day(s.value_date, days)}\t{_text(s.bank_reference, BANK_REFERENCE)}\t"
            f"{_text(s.end_to_end_id, END_TO_END)}\t{_text(s.counterparty_name, COUNTERPARTY)}\t"
            f"{_text(s.counterparty_account, COUNTERPARTY_ACCOUNT)}\t{_text(s.remittance, REMITTANCE)}\n")

    def error(self, line_number: int, sub_index: int, field: str, reason: str, raw: str) -> None:
        field, reason, raw = _printable(field)[:FIELD], _printable(reason)[:REASON], _printable(raw)[:RAW]
        self.errors.append(f"{self.prefix}{line_number}\t{sub_index}\t{_text(field)}\t{_text(reason)}\t"
                           f"{_text(raw)}\n")

    def add(self, item: Item) -> None:
        if isinstance(item, SettlementRecord):
            self.record(item)
        elif isinstance(item, StatementLine):
            self.line(item)
        elif isinstance(item, RecordError):
            self.error(item.line_number, 0, item.field, item.reason, item.raw)
        elif isinstance(item, StatementLineError):
            self.error(item.line_number, item.sub_index, item.field, item.reason, item.raw)
        else:
            assert isinstance(item, StatementBalance)  # balances are the bank's totals, not movements


class _Values(_Rows):
    """The same rows as parameter tuples, in the same column order (SQLite)."""

    def record(self, r: SettlementRecord) -> None:
        problem = _key_problem(r)
        if problem is not None:
            self.error(r.line_number, 0, problem[0], problem[1], "")
            return
        self.items.append((
            self.file_id, r.line_number, r.record_type.value, r.reference, r.rail_reference, r.rrn, r.arn, r.gross,
            r.fee, r.net, r.currency, r.transaction_date.isoformat(), r.settlement_date.isoformat(),
            r.settlement_amount, r.settlement_currency, None if r.fx_rate is None else str(r.fx_rate)))

    def line(self, s: StatementLine) -> None:
        self.lines.append((
            self.file_id, s.line_number, s.sub_index, s.account[:ACCOUNT], s.statement_id[:STATEMENT_ID],
            s.signed_amount, s.currency, s.status.value, _iso(s.booking_date), _iso(s.value_date),
            s.bank_reference[:BANK_REFERENCE], s.end_to_end_id[:END_TO_END], s.counterparty_name[:COUNTERPARTY],
            s.counterparty_account[:COUNTERPARTY_ACCOUNT], s.remittance[:REMITTANCE]))

    def error(self, line_number: int, sub_index: int, field: str, reason: str, raw: str) -> None:
        self.errors.append((self.file_id, line_number, sub_index, _printable(field)[:FIELD],
                            _printable(reason)[:REASON], _printable(raw)[:RAW]))


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def text_row(values: Iterable[object]) -> str:
    """One COPY text row: None as NULL, strings escaped, dates ISO, numbers as is."""
    parts = []
    for value in values:
        if value is None:
            parts.append(_NULL)
        elif isinstance(value, str):
            parts.append(_text(value))
        elif isinstance(value, dt.datetime | dt.date):
            parts.append(value.isoformat())
        else:
            parts.append(str(value))
    return "\t".join(parts) + "\n"


def copy_text(session: Session, table: str, columns: Sequence[str], rows: Iterable[str]) -> None:
    """COPY ``rows`` (text format lines) into ``table``, in the session's transaction."""
    _copy(session, table, columns, rows)


def _copy(session: Session, table: str, columns: Sequence[str], rows: Iterable[str]) -> None:
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        batch: list[str] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 8192:
                copy.write("".join(batch))
                batch.clear()
        if batch:
            copy.write("".join(batch))


def _insert(session: Session, table: str, columns: Sequence[str], rows: list[Any]) -> None:
    """One prepared INSERT for every row (SQLite's bulk path)."""
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    session.connection().exec_driver_sql(statement, rows)


def write_chunk(session: Session, file_id: int, items: Sequence[Item]) -> tuple[int, int]:
    """Load ``items`` (the parser's next items after the checkpoint) and move the
    checkpoint past them. Returns (records or statement lines, error items) written."""
    q = sql(session)
    rows = _Rows(file_id) if q.postgres else _Values(file_id)
    for item in items:
        rows.add(item)
    write = _copy if q.postgres else _insert
    if rows.items:
        write(session, "recon_file_items", ITEM_COLUMNS, rows.items)
    if rows.lines:
        write(session, "recon_statement_lines", LINE_COLUMNS, rows.lines)
    if rows.errors:
        write(session, "recon_file_errors", ERROR_COLUMNS, rows.errors)
    good = len(rows.items) + len(rows.lines)
    q.x(
        "UPDATE recon_files SET loaded_items = loaded_items + :n, record_count = record_count + :good, "
        "error_count = error_count + :bad, status = :status WHERE id = :id",
        n=len(items), good=good, bad=len(rows.errors), status=FileStatus.LOADING.value, id=file_id)
    return good, len(rows.errors)


def finish(session: Session, file_id: int) -> None:
    sql(session).x("UPDATE recon_files SET status = :status, loaded_at = :now WHERE id = :id",
                   status=FileStatus.LOADED.value, now=utcnow(), id=file_id)


def mark_unusable(session: Session, file_id: int, error: MalformedFile) -> None:
    """Record why the file as a whole cannot be read: on the file (``error_code``,
    ``error_message``) and as an error item of field ``file`` at the line where reading
    stopped (0 when the parser names none), counted in ``error_count`` like the others.
    Lines already loaded stay (for inspection); no run reconciles an unusable file."""
    where = f" (line {error.line_number}" + (f", {error.field_name})" if error.field_name else ")") \
        if error.line_number else ""
    message = _printable(f"{error.message}{where}")
    q = sql(session)
    q.x(f"INSERT INTO recon_file_errors ({', '.join(ERROR_COLUMNS)}) "
        "VALUES (:file_id, :line, 0, :field, :reason, '')",
        file_id=file_id, line=error.line_number, field=FILE_FIELD, reason=message[:REASON])
    q.x("UPDATE recon_files SET status = :status, error_code = :code, error_message = :message, loaded_at = :now, "
        "error_count = error_count + 1 WHERE id = :id",
        status=FileStatus.UNUSABLE.value, code=error.code, message=message, now=utcnow(), id=file_id)
