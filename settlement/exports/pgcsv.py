"""CSV journals and statements written by PostgreSQL itself (``COPY ... TO STDOUT
WITH (FORMAT csv)``), streamed to the file: the fast path of the most common export.

The rows are exactly what :class:`~settlement.exports.writers.CsvWriter` writes
(same columns, amounts as decimal strings with the currency's places, the same
running balances), so the verifier reads both alike. Two representation details
differ and mean nothing: an empty text field is ``""`` rather than empty, and
``metadata`` is the JSON text PostgreSQL prints (``{"a": 1}``), which encodes to the
same canonical bytes. Amounts are formatted from a table of the currencies'
exponents passed in (``round(amount / 10^places, places)``: exact, no float);
running balances are window sums over (sequence number, posting id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from settlement.exports.rows import JOURNAL_COLUMNS, STATEMENT_COLUMNS
from settlement.money import exponent

_TIME = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def _money(amount: str) -> str:
    return f"round({amount}::numeric / cx.factor, cx.places)::text"


_JOURNAL = f"""
WITH {{cx}}
SELECT l.seq, e.id, e.idempotency_key, e.kind, {_TIME.format("e.effective_at")}, {_TIME.format("e.recorded_at")},
       e.description, e.metadata::text, e.reverses_entry_id, e.hold_id, p.id, p.account_id, a.code,
       CASE WHEN p.side = 'D' THEN {_money("p.amount")} END, CASE WHEN p.side = 'C' THEN {_money("p.amount")} END,
       p.currency, CASE WHEN p.pending THEN 'true' WHEN NOT p.pending THEN 'false' END, encode(l.leaf_hash, 'hex')
  FROM journal_leaves l JOIN ledger_entries e ON e.id = l.entry_id
  LEFT JOIN ledger_postings p ON p.entry_id = e.id
  LEFT JOIN ledger_accounts a ON a.id = p.account_id
  LEFT JOIN cx ON cx.currency = p.currency
 WHERE l.seq >= %(a)s AND l.seq <= %(b)s
 ORDER BY l.seq, p.id
"""

# One opening line, the posting lines, one closing line per account of the trial
# balance (given with its opening net balance and its sign: 1 debit-normal, -1 not).
_STATEMENTS = f"""
WITH {{cx}}, accounts(account_id, opening, sign) AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(openings)s::bigint[], %(signs)s::int[])
), moves AS (
    SELECT p.account_id, l.seq, l.entry_id, p.id AS posting_id, p.side, p.amount, e.recorded_at, e.description,
           sum(CASE WHEN p.side = 'D' THEN p.amount ELSE -p.amount END)
               OVER (PARTITION BY p.account_id ORDER BY l.seq, p.id) AS moved
      FROM journal_leaves l JOIN ledger_postings p ON p.entry_id = l.entry_id
      JOIN ledger_entries e ON e.id = l.entry_id
     WHERE l.seq >= %(a)s AND l.seq <= %(b)s AND NOT p.pending {{period}}
), totals AS (
    SELECT account_id, sum(CASE WHEN side = 'D' THEN amount ELSE -amount END) AS moved
      FROM moves GROUP BY account_id
), lines AS (
    SELECT x.account_id, 0 AS part, 0::bigint AS seq_key, 0::bigint AS posting_key, 'opening' AS line,
           NULL::bigint AS seq, NULL::bigint AS entry_id, NULL::bigint AS posting_id, NULL::text AS recorded_at,
           NULL::text AS description, NULL::bigint AS debit, NULL::bigint AS credit, x.sign * x.opening AS balance
      FROM accounts x
    UNION ALL
    SELECT m.account_id, 1, m.seq, m.posting_id, 'posting', m.seq, m.entry_id, m.posting_id,
           {_TIME.format("m.recorded_at")}, m.description,
           CASE WHEN m.side = 'D' THEN m.amount END, CASE WHEN m.side = 'C' THEN m.amount END,
           x.sign * (x.opening + m.moved)
      FROM moves m JOIN accounts x ON x.account_id = m.account_id
    UNION ALL
    SELECT x.account_id, 2, 0, 0, 'closing', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           x.sign * (x.opening + COALESCE(t.moved, 0))
      FROM accounts x LEFT JOIN totals t ON t.account_id = x.account_id
)
SELECT a.code, a.currency, s.line, s.seq, s.entry_id, s.posting_id, s.recorded_at, s.description,
       CASE WHEN s.debit IS NOT NULL THEN {_money("s.debit")} END,
       CASE WHEN s.credit IS NOT NULL THEN {_money("s.credit")} END,
       {_money("s.balance")}
  FROM lines s JOIN ledger_accounts a ON a.id = s.account_id JOIN cx ON cx.currency = a.currency
 ORDER BY s.account_id, s.part, s.seq_key, s.posting_key
"""

Progress = Callable[[int], None]


def _cx(currencies: Iterable[str]) -> str:
    """The currencies' exponents as a VALUES table (codes are checked ISO codes)."""
    rows = [f"('{c}', {10 ** exponent(c)}, {exponent(c)})" for c in sorted(set(currencies))] or ["('XXX', 1, 0)"]
    return "cx(currency, factor, places) AS (VALUES " + ", ".join(rows) + ")"


def _copy(session: Session, query: str, params: dict[str, Any], *, path: Path, header: tuple[str, ...],
          progress: Progress | None) -> tuple[str, int, int]:
    """COPY the query's rows as CSV into ``path`` after ``header``; returns the file's
    SHA-256, its size and how many lines the COPY wrote."""
    connection = session.connection().connection.driver_connection
    assert connection is not None
    digest = hashlib.sha256()
    lines = 0
    with path.open("wb") as out, connection.cursor() as cursor, \
            cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", params) as copy:
        first = (",".join(header) + "\n").encode()
        out.write(first)
        digest.update(first)
        size = len(first)
        for chunk in copy:
            data = bytes(chunk)
            out.write(data)
            digest.update(data)
            size += len(data)
            lines += data.count(b"\n")
            if progress is not None:
                progress(lines)
    return digest.hexdigest(), size, lines


def write_journal(session: Session, path: Path, *, first: int, last: int, currencies: Iterable[str],
                  progress: Progress | None = None) -> tuple[str, int]:
    """The journal rows of sequence numbers first..last; returns SHA-256 and size."""
    digest, size, _ = _copy(session, _JOURNAL.format(cx=_cx(currencies)), {"a": first, "b": last}, path=path,
                            header=JOURNAL_COLUMNS, progress=progress)
    return digest, size


def write_statements(session: Session, path: Path, *, first: int, last: int, period: tuple[Any, Any],
                     accounts: list[tuple[int, int, int]], currencies: Iterable[str],
                     progress: Progress | None = None) -> tuple[str, int]:
    """Statements of ``accounts`` (id, opening net, sign) for postings recorded in
    ``period`` (from, to; either may be None) within first..last."""
    start, end = period
    clauses = ""
    params: dict[str, Any] = {"a": first, "b": last, "ids": [a[0] for a in accounts],
                              "openings": [a[1] for a in accounts], "signs": [a[2] for a in accounts]}
    if start is not None:
        clauses += " AND e.recorded_at >= %(f)s"
        params["f"] = start
    if end is not None:
        clauses += " AND e.recorded_at < %(t)s"
        params["t"] = end
    query = _STATEMENTS.format(cx=_cx(currencies), period=clauses)
    digest, size, _ = _copy(session, query, params, path=path, header=STATEMENT_COLUMNS, progress=progress)
    return digest, size
