"""CSV journals and statements written by PostgreSQL itself (``COPY ... TO STDOUT
WITH (FORMAT csv)``), streamed to the file: the fast path of the most common export.

The rows are exactly what :class:`~settlement.exports.writers.CsvWriter` writes
(same columns, amounts as decimal strings with the currency's places, the same
running balances), so the verifier reads both alike. Two representation details
differ and mean nothing: an empty text field is ``""`` rather than empty, and
``metadata`` is the JSON text PostgreSQL prints (``{"a": 1}``), which encodes to the
same canonical bytes. Amounts are formatted from the currencies' exponents
passed in (``round(amount / 10^places, places)``: exact, no float);
running balances are window sums over (sequence number, posting id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg

from settlement.exports.rows import JOURNAL_COLUMNS, STATEMENT_COLUMNS
from settlement.money import exponent

_TIME = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def _money(amount: str, currency: str) -> str:
    """``amount`` (minor units) as decimal text, with ``currency``'s factor and places."""
    return f"round({amount}::numeric / {currency}.factor, {currency}.places)::text"


def _money_case(amount: str, currencies: Iterable[str]) -> str:
    """``amount`` of ``p.currency`` as decimal text, one branch per currency (codes are
    checked ISO codes): per posting an expression, where a join to a table of the
    currencies cost a hash build per entry."""
    branches = " ".join(f"WHEN '{c}' THEN round({amount}::numeric / {10 ** exponent(c)}, {exponent(c)})::text"
                        for c in sorted(set(currencies)))
    return f"CASE p.currency {branches} END" if branches else "NULL::text"


# Entry columns are computed once per entry (OFFSET 0 keeps the subquery from being
# flattened, which would format the times once per posting). The entries come in
# sequence order from the subquery, so the final order only sorts each entry's
# postings (an incremental sort) instead of a million rows spilled to disk.
_JOURNAL = f"""
SELECT x.seq, x.id, x.idempotency_key, x.kind, x.effective_at, x.recorded_at, x.description, x.metadata,
       x.reverses_entry_id, x.hold_id, p.id, p.account_id, a.code,
       CASE WHEN p.side = 'D' THEN {{debit}} END, CASE WHEN p.side = 'C' THEN {{credit}} END,
       p.currency, CASE WHEN p.pending THEN 'true' WHEN NOT p.pending THEN 'false' END, x.leaf
  FROM (SELECT l.seq, e.id, e.idempotency_key, e.kind, {_TIME.format("e.effective_at")} AS effective_at,
               {_TIME.format("e.recorded_at")} AS recorded_at, e.description, e.metadata::text AS metadata,
               e.reverses_entry_id, e.hold_id, encode(l.leaf_hash, 'hex') AS leaf
          FROM journal_leaves l JOIN ledger_entries e ON e.id = l.entry_id
         WHERE l.seq >= %(a)s AND l.seq <= %(b)s ORDER BY l.seq OFFSET 0) AS x
  LEFT JOIN ledger_postings p ON p.entry_id = x.id
  LEFT JOIN ledger_accounts a ON a.id = p.account_id
 ORDER BY x.seq, p.id
"""

# Per account of the trial balance (passed in with its code, currency, opening net
# balance and sign: 1 debit-normal, -1 credit-normal): an opening line, its posted
# postings recorded in the period, a closing line. One sort serves both the window
# (the running balance) and the output order: the currencies' places ride along
# with the accounts (as arrays like the rest: a join there would hide from the
# planner how many accounts there are), so nothing joined after the window undoes
# its order.
_STATEMENTS = f"""
WITH accounts(account_id, code, currency, opening, sign, factor, places) AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(codes)s::text[], %(currencies)s::text[], %(openings)s::bigint[],
                         %(signs)s::int[], %(factors)s::bigint[], %(places)s::int[])
), lines AS (
    SELECT x.*, 0 AS part, 0::bigint AS seq, 0::bigint AS posting_id, NULL::bigint AS entry_id,
           NULL::timestamptz AS recorded_at, NULL::text AS description, NULL::text AS side, 0::bigint AS amount
      FROM accounts x
    UNION ALL
    SELECT x.*, 1, l.seq, p.id, l.entry_id, e.recorded_at, e.description, p.side, p.amount
      FROM journal_leaves l JOIN ledger_postings p ON p.entry_id = l.entry_id
      JOIN ledger_entries e ON e.id = l.entry_id JOIN accounts x ON x.account_id = p.account_id
     WHERE l.seq >= %(a)s AND l.seq <= %(b)s AND NOT p.pending {{period}}
    UNION ALL
    SELECT x.*, 2, 0, 0, NULL, NULL, NULL, NULL, 0 FROM accounts x
), running AS (
    SELECT u.*, u.sign * (u.opening + sum(CASE u.side WHEN 'D' THEN u.amount WHEN 'C' THEN -u.amount ELSE 0 END)
               OVER (PARTITION BY u.account_id ORDER BY u.part, u.seq, u.posting_id ROWS UNBOUNDED PRECEDING))
               AS balance
      FROM lines u
)
SELECT r.code, r.currency, CASE r.part WHEN 0 THEN 'opening' WHEN 1 THEN 'posting' ELSE 'closing' END,
       CASE WHEN r.part = 1 THEN r.seq END, r.entry_id, CASE WHEN r.part = 1 THEN r.posting_id END,
       {_TIME.format("r.recorded_at")}, r.description,
       CASE WHEN r.side = 'D' THEN {_money("r.amount", "r")} END,
       CASE WHEN r.side = 'C' THEN {_money("r.amount", "r")} END, {_money("r.balance", "r")}
  FROM running r
 ORDER BY r.account_id, r.part, r.seq, r.posting_id
"""

# The journal's plan is index probes per entry: JIT compiling cost more than it saved,
# and parallel workers only took CPU from the statements written at the same time.
_JOURNAL_SETTINGS = ("SET LOCAL jit = off", "SET LOCAL max_parallel_workers_per_gather = 0")

Progress = Callable[[int], None]
#: Rows COPY sends (one message each) written and hashed at once.
_BLOCK_ROWS = 2_000


def _copy(connection: psycopg.Connection[Any], query: str, params: dict[str, Any], *, path: Path,
          header: tuple[str, ...], progress: Progress | None, settings: tuple[str, ...] = ()) -> tuple[str, int, int]:
    """COPY the query's rows as CSV into ``path`` after ``header``; returns the file's
    SHA-256, its size and how many lines the COPY wrote."""
    digest = hashlib.sha256()
    lines = 0
    for setting in settings:
        connection.execute(setting)
    with path.open("wb") as out, connection.cursor() as cursor, \
            cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", params) as copy:
        first = (",".join(header) + "\n").encode()
        out.write(first)
        digest.update(first)
        size = len(first)
        # COPY sends one message per row (each its own buffer): write, hash and count
        # them in blocks.
        block: list[Any] = []

        def flush() -> None:
            nonlocal size, lines
            data = b"".join(block)
            block.clear()
            out.write(data)
            digest.update(data)
            size, lines = size + len(data), lines + data.count(b"\n")
            if progress is not None:
                progress(lines)

        for chunk in copy:
            block.append(chunk)
            if len(block) == _BLOCK_ROWS:
                flush()
        if block:
            flush()
    return digest.hexdigest(), size, lines


def write_journal(connection: psycopg.Connection[Any], path: Path, *, first: int, last: int, currencies: Iterable[str],
                  progress: Progress | None = None) -> tuple[str, int]:
    """The journal rows of sequence numbers first..last; returns SHA-256 and size."""
    amount = _money_case("p.amount", currencies)
    query = _JOURNAL.format(debit=amount, credit=amount)
    digest, size, _ = _copy(connection, query, {"a": first, "b": last}, path=path, header=JOURNAL_COLUMNS,
                            progress=progress, settings=_JOURNAL_SETTINGS)
    return digest, size


def write_statements(connection: psycopg.Connection[Any], path: Path, *, first: int, last: int, period: tuple[Any, Any],
                     accounts: list[tuple[int, str, str, int, int]], progress: Progress | None = None
                     ) -> tuple[str, int]:
    """Statements of ``accounts`` (id, code, currency, opening net, sign) for posted
    postings recorded in ``period`` (from, to; either may be None) within first..last."""
    start, end = period
    clauses = ""
    params: dict[str, Any] = {"a": first, "b": last, "ids": [a[0] for a in accounts],
                              "codes": [a[1] for a in accounts], "currencies": [a[2] for a in accounts],
                              "openings": [a[3] for a in accounts], "signs": [a[4] for a in accounts]}
    params["places"] = [exponent(a[2]) for a in accounts]
    params["factors"] = [10 ** places for places in params["places"]]
    if start is not None:
        clauses += " AND e.recorded_at >= %(f)s"
        params["f"] = start
    if end is not None:
        clauses += " AND e.recorded_at < %(t)s"
        params["t"] = end
    query = _STATEMENTS.format(period=clauses)
    digest, size, _ = _copy(connection, query, params, path=path, header=STATEMENT_COLUMNS, progress=progress)
    return digest, size
