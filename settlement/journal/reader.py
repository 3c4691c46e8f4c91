"""Reading ledger entries with their postings, in the shape the canonical encoding
needs, as a stream (one row per posting, grouped back into entries).

The sealer, the exports and the database verifier all read entries through here,
so an entry is always encoded from the same columns the same way. On PostgreSQL
times are formatted by the database (``to_char``), which is what makes sealing
fast; SQLite's stored text is normalised in Python.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.journal.canonical import encode_fields, format_time

_PG_TIME = "to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

#: Columns after the caller's three leading ones (seq, stored leaf hash, anything).
ENTRY_COLUMNS = ("e.id, e.idempotency_key, e.kind, {eff}, {rec}, e.description, {meta}, e.reverses_entry_id, "
                 "e.hold_id, p.id, p.account_id, a.code, p.side, p.amount, p.currency, p.pending")
#: Joins from an ``e`` (entries) relation to its postings and their accounts;
#: entries without postings (a hold's void or expiry) come through once.
POSTING_JOINS = ("LEFT JOIN ledger_postings p ON p.entry_id = e.id "
                 "LEFT JOIN ledger_accounts a ON a.id = p.account_id")


def time_column(dialect: str, column: str) -> str:
    """SQL reading a timestamp column: canonical text on PostgreSQL, the stored
    value on SQLite (then :func:`sqlite_time`)."""
    return _PG_TIME.format(col=column) if dialect == "postgresql" else column


def entry_columns(dialect: str) -> str:
    # Metadata travels as text and is parsed once per entry (and not at all when
    # empty), not once per posting row by the driver.
    return ENTRY_COLUMNS.format(eff=time_column(dialect, "e.effective_at"),
                                rec=time_column(dialect, "e.recorded_at"),
                                meta="e.metadata::text" if dialect == "postgresql" else "e.metadata")


@dataclass(slots=True)
class EntryRecord:
    """One entry as stored, ready to encode. ``postings`` rows are ``[posting_id,
    account_id, account_code, side, amount, currency, pending]`` in posting-id
    order. ``seq`` and ``stored_leaf`` are set when read from the journal;
    ``missing`` when the journal names an entry the ledger no longer has; ``extra``
    is the query's third column (whatever the caller needs beside the entry)."""

    entry_id: int
    idempotency_key: str
    kind: str
    effective_at: str
    recorded_at: str
    description: str
    metadata: Mapping[str, Any]
    reverses_entry_id: int | None
    hold_id: int | None
    postings: list[list[Any]] = field(default_factory=list)
    seq: int | None = None
    stored_leaf: bytes | None = None
    extra: Any = None
    missing: bool = False

    def canonical(self) -> bytes:
        return encode_fields(self.entry_id, self.idempotency_key, self.kind, self.effective_at, self.recorded_at,
                             self.description, self.metadata, self.reverses_entry_id, self.hold_id, self.postings)


def sqlite_time(value: Any) -> str:
    stamp = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(stamp, dt.datetime)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return format_time(stamp)


def group(rows: Iterable[Sequence[Any]], dialect: str) -> Iterator[EntryRecord]:
    """Rows of ``(seq, stored_leaf, extra, <ENTRY_COLUMNS>)`` sorted by entry then
    posting id -> entries. A row whose entry id is NULL (the journal names an entry
    that is gone) yields a ``missing`` record with only ``seq`` and ``stored_leaf``."""
    postgres = dialect == "postgresql"
    current: EntryRecord | None = None
    current_key: tuple[Any, Any] | None = None
    for row in rows:
        (seq, stored, extra, entry_id, key, kind, eff, rec, description, metadata, reverses, hold,
         posting_id, account_id, code, side, amount, currency, pending) = row
        row_key = (seq, entry_id)
        if row_key != current_key:
            if current is not None:
                yield current
            current_key = row_key
            if entry_id is None:
                current = EntryRecord(0, "", "", "", "", "", {}, None, None, seq=seq,
                                      stored_leaf=None if stored is None else bytes(stored), extra=extra,
                                      missing=True)
                continue
            if metadata == "{}" or metadata is None:
                metadata = {}
            elif isinstance(metadata, str):
                metadata = json.loads(metadata)
            current = EntryRecord(
                entry_id, key, kind, eff if postgres else sqlite_time(eff), rec if postgres else sqlite_time(rec),
                description or "", metadata if metadata is not None else {}, reverses, hold, [], seq,
                None if stored is None else bytes(stored), extra)
        if posting_id is not None and current is not None and not current.missing:
            current.postings.append([posting_id, account_id, code, side, amount, currency, bool(pending)])
    if current is not None:
        yield current


def bind(dialect: str, name: str) -> str:
    """A bound parameter in SQL given to :func:`rows` (psycopg style on PostgreSQL)."""
    return f"%({name})s" if dialect == "postgresql" else f":{name}"


def tune(session: Session) -> None:
    """Settings for the big reads of this transaction (PostgreSQL): sort in memory,
    and plan cursors for reading everything rather than the first rows."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '128MB'"))
        session.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))


def rows(session: Session, sql: str, params: Mapping[str, Any], *, server_side: bool = True,
         chunk: int = 20_000) -> Iterator[Sequence[Any]]:
    """Rows of ``sql`` (parameters written with :func:`bind`) in the session's
    transaction. On PostgreSQL they come straight from psycopg, through a named
    (server-side) cursor when ``server_side`` so memory stays flat: at a million
    rows SQLAlchemy's row objects cost more than the rest of the work."""
    if session.get_bind().dialect.name != "postgresql":
        options = {"stream_results": True, "yield_per": chunk} if server_side else {}
        yield from session.execute(text(sql).execution_options(**options), dict(params))
        return
    connection = session.connection().connection.driver_connection
    assert connection is not None
    cursor = connection.cursor(name="settlement_journal_read") if server_side else connection.cursor()
    try:
        if server_side:
            cursor.itersize = chunk
        cursor.execute(sql, dict(params))
        yield from cursor
    finally:
        cursor.close()


def stream(session: Session, sql: str, params: Mapping[str, Any]) -> Iterator[EntryRecord]:
    """Entries of ``sql`` (selecting the columns :func:`group` takes) as they arrive."""
    yield from group(rows(session, sql, params), session.get_bind().dialect.name)
