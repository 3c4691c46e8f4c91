"""The ledger's SQL. Everything the write path needs is a handful of set-based
statements whose count does not depend on the number of entries:

1. claim the idempotency keys and read what is stored under them (one call);
2. lock every touched account row, in account-id order (``SELECT ... ORDER BY id FOR
   UPDATE``), so two writers that share accounts queue instead of deadlocking;
3. insert all entries and postings and update each touched account once, in one
   statement.

On PostgreSQL steps 1 and 2 travel together with the transaction's BEGIN (psycopg's
pipeline mode), so a single transfer is three round trips including COMMIT, and a
batch of a thousand is the same three. Each step is one statement whose rows arrive
as JSON documents: the SQL text is constant whatever the batch size, so psycopg
prepares it once per connection, and every lookup is an index probe whatever the
planner estimates for the generic plan.

One entry of posted postings (``Ledger.post``, ``post_alone``) skips all three: the
``ledger_post_entry`` function (migration 0010) does them in one call, or writes
nothing and sends the caller down the general path. A batch of such entries
(``Ledger.post_batch``, ``post_batches``) does the same through
``ledger_post_batch`` (migration 0011).

SQLite (the embedded default, a single writer) runs plain per-row statements; its
transactions begin IMMEDIATE, which serialises writers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Dialect, text
from sqlalchemy.orm import Session

from settlement.db.session import raw_rows
from settlement.db.types import UTCDateTime
from settlement.ledger.errors import BatchNotCommitted
from settlement.ledger.models import AccountType, Side
from settlement.ledger.types import AccountRef


@dataclass(slots=True)
class AccountRow:
    """An account as locked for a write: attributes plus mutable counters."""

    id: int
    code: str
    currency: str
    type: AccountType
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    credit_limit: int | None
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    def violation(self) -> str | None:
        """Which limit the counters break, if any (the rule of the CHECK constraints)."""
        allowance = self.credit_limit or 0
        if self.debits_must_not_exceed_credits and (
                self.debits_pending + self.debits_posted > self.credits_posted + allowance):
            return "debits_must_not_exceed_credits"
        if self.credits_must_not_exceed_debits and (
                self.credits_pending + self.credits_posted > self.debits_posted + allowance):
            return "credits_must_not_exceed_debits"
        return None


@dataclass(slots=True)
class EntryRow:
    idempotency_key: str
    request_hash: str
    kind: str
    effective_at: dt.datetime
    description: str
    metadata: dict[str, Any]
    reverses_entry_id: int | None
    hold_id: int | None


@dataclass(slots=True)
class PostingRow:
    entry_key: str
    account_id: int
    side: Side
    amount: int
    currency: str
    pending: bool
    debits_posted_after: int
    credits_posted_after: int


@dataclass(slots=True)
class RefusalRow:
    request_hash: str
    code: str
    message: str
    detail: dict[str, Any]


@dataclass(slots=True)
class Posted:
    """What :meth:`PostgresStore.post_entry` wrote: the entry's id and recorded_at,
    and per posting, in order, (posting id, account id, debits_posted_after,
    credits_posted_after)."""

    entry_id: int
    recorded_at: Any
    postings: list[tuple[int, int, int, int]]


_ACCOUNT_COLUMNS = ("id, code, currency, type, debits_must_not_exceed_credits, "
                    "credits_must_not_exceed_debits, credit_limit, debits_pending, debits_posted, "
                    "credits_pending, credits_posted")

_ENTRY_COLUMNS = ("id, idempotency_key, kind, effective_at, recorded_at, description, metadata, "
                  "reverses_entry_id, hold_id")
_POSTING_COLUMNS = ("id, entry_id, account_id, side, amount, currency, pending, "
                    "debits_posted_after, credits_posted_after")

_TIME = UTCDateTime()


def db_time(value: Any, dialect: Dialect) -> dt.datetime:
    """A timestamp as read from the database, as an aware UTC datetime."""
    stamp = _TIME.process_result_value(value, dialect)
    assert stamp is not None
    return stamp


def account_row(row: Sequence[Any]) -> AccountRow:
    return AccountRow(int(row[0]), row[1], row[2], AccountType(row[3]), bool(row[4]), bool(row[5]),
                      None if row[6] is None else int(row[6]), int(row[7]), int(row[8]), int(row[9]),
                      int(row[10]))


class LedgerStore:
    """SQL for one session. Use :func:`store_for` to get the right dialect."""

    dialect = "generic"

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect_impl = session.get_bind().dialect

    # -- reads shared by both dialects --------------------------------------------

    def time(self, value: Any) -> dt.datetime:
        return db_time(value, self.dialect_impl)

    def bind_time(self, value: dt.datetime) -> Any:
        return _TIME.process_bind_param(value, self.dialect_impl)

    def load_json(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if isinstance(value, str):
            loaded = json.loads(value)
            assert isinstance(loaded, dict)
            return loaded
        assert isinstance(value, dict)
        return value

    def entries_by_id(self, ids: Sequence[int]) -> list[Sequence[Any]]:
        return list(self.session.execute(
            text(f"SELECT {_ENTRY_COLUMNS} FROM ledger_entries WHERE id IN :ids").bindparams(
                _expanding("ids")), {"ids": list(ids)}))

    def postings_of(self, entry_ids: Sequence[int]) -> list[Sequence[Any]]:
        return list(self.session.execute(
            text(f"SELECT {_POSTING_COLUMNS} FROM ledger_postings WHERE entry_id IN :ids ORDER BY id")
            .bindparams(_expanding("ids")), {"ids": list(entry_ids)}))

    # -- dialect-specific ---------------------------------------------------------

    def claim_keys(self, keys: Sequence[str]) -> tuple[dict[str, tuple[int, str]], dict[str, RefusalRow]]:
        """Reserve ``keys`` for this transaction and return what is stored under them:
        entries (key -> (id, request hash)) and refusals. SQLite transactions are
        serial (BEGIN IMMEDIATE), so reading is enough there."""
        return self.find_keys(keys)

    def claim_and_lock(self, keys: Sequence[str], ids: Sequence[int], codes: Sequence[str]) -> tuple[
            dict[str, tuple[int, str]], dict[str, RefusalRow], list[AccountRow]]:
        """:meth:`claim_keys` then :meth:`lock_accounts`, keys first (the order every
        writer takes its locks in)."""
        entries, refusals = self.claim_keys(keys)
        return entries, refusals, self.lock_accounts(ids, codes)

    def post_entry(self, entry: EntryRow, legs: Sequence[tuple[AccountRef, Side, int, str]]) -> Posted | None:
        """Write one entry of posted ``legs`` in one step if the dialect can; None when
        the general path must do it (always, here)."""
        return None

    def post_batch(self, entries: Sequence[EntryRow],
                   legs: Sequence[Sequence[tuple[AccountRef, Side, int, str]]]) -> list[Posted] | None:
        """Write entries of posted ``legs`` in one step if the dialect can; None when
        the general path must do it (always, here)."""
        return None

    def post_batch_and_commit(self, entries: Sequence[EntryRow],
                              legs: Sequence[Sequence[tuple[AccountRef, Side, int, str]]]) -> bool:
        """Write the entries like :meth:`post_batch` and commit the session's
        transaction in the same round trip; False when the dialect cannot (nothing
        written, nothing committed)."""
        return False

    def find_keys(self, keys: Sequence[str]) -> tuple[dict[str, tuple[int, str]], dict[str, RefusalRow]]:
        rows = self.session.execute(text(
            "SELECT 'e', idempotency_key, id, request_hash, NULL, NULL, NULL FROM ledger_entries "
            "WHERE idempotency_key IN :keys UNION ALL "
            "SELECT 'r', idempotency_key, NULL, request_hash, code, message, detail FROM ledger_refusals "
            "WHERE idempotency_key IN :keys").bindparams(_expanding("keys")), {"keys": list(keys)})
        return self._split_keys(rows)

    def _split_keys(self, rows: Iterable[Sequence[Any]]) -> tuple[dict[str, tuple[int, str]], dict[str, RefusalRow]]:
        entries: dict[str, tuple[int, str]] = {}
        refusals: dict[str, RefusalRow] = {}
        for row in rows:
            kind, key, entry_id, request_hash, code, message, detail = tuple(row)
            if kind == "e":
                entries[key] = (int(entry_id), request_hash)
            else:
                refusals[key] = RefusalRow(request_hash, code, message, self.load_json(detail))
        return entries, refusals

    def lock_accounts(self, ids: Sequence[int], codes: Sequence[str]) -> list[AccountRow]:
        rows = self.session.execute(text(
            f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id IN :ids OR code IN :codes ORDER BY id"
        ).bindparams(_expanding("ids"), _expanding("codes")), {"ids": list(ids) or [-1],
                                                               "codes": list(codes) or [""]})
        return [account_row(r) for r in rows]

    def write(self, entries: Sequence[EntryRow], postings: Sequence[PostingRow], accounts: Sequence[AccountRow],
              recorded_at: dt.datetime) -> tuple[dict[str, tuple[int, Any]], list[int]]:
        """Insert entries and their postings and store the accounts' new counters.
        Returns key -> (entry id, recorded_at) and the posting ids in order."""
        inserted: dict[str, tuple[int, Any]] = {}
        rec = self.bind_time(recorded_at)
        entry_sql = text(
            "INSERT INTO ledger_entries (idempotency_key, request_hash, kind, effective_at, recorded_at, "
            "description, metadata, reverses_entry_id, hold_id) VALUES (:k, :h, :kind, :eff, :rec, :d, :m, "
            ":r, :hold) RETURNING id, recorded_at")
        for row in entries:
            result = self.session.execute(entry_sql, {
                "k": row.idempotency_key, "h": row.request_hash, "kind": row.kind,
                "eff": self.bind_time(row.effective_at), "rec": rec, "d": row.description,
                "m": json.dumps(row.metadata), "r": row.reverses_entry_id, "hold": row.hold_id}).one()
            inserted[row.idempotency_key] = (int(result[0]), result[1])
        posting_sql = text(
            "INSERT INTO ledger_postings (entry_id, account_id, side, amount, currency, pending, recorded_at, "
            "debits_posted_after, credits_posted_after) VALUES (:e, :a, :s, :amt, :c, :p, :t, :dpa, :cpa) "
            "RETURNING id")
        posting_ids = [int(self.session.execute(posting_sql, {
            "e": inserted[row.entry_key][0], "a": row.account_id, "s": row.side.value, "amt": row.amount,
            "c": row.currency, "p": row.pending, "t": inserted[row.entry_key][1],
            "dpa": row.debits_posted_after, "cpa": row.credits_posted_after}).scalar_one()) for row in postings]
        if accounts:
            self.session.execute(text(
                "UPDATE ledger_accounts SET debits_pending = :dpe, debits_posted = :dpo, "
                "credits_pending = :cpe, credits_posted = :cpo WHERE id = :id"),
                [{"id": a.id, "dpe": a.debits_pending, "dpo": a.debits_posted, "cpe": a.credits_pending,
                  "cpo": a.credits_posted} for a in accounts])
        return inserted, posting_ids

    _REFUSAL = ("INSERT INTO ledger_refusals (idempotency_key, request_hash, code, message, detail, created_at) "
                "SELECT :k, :h, :code, :message, :detail, :now WHERE NOT EXISTS "
                "(SELECT 1 FROM ledger_entries WHERE idempotency_key = :k) ON CONFLICT (idempotency_key) DO NOTHING")

    def insert_refusal(self, key: str, request_hash: str, *, code: str, message: str, detail: dict[str, Any],
                       now: dt.datetime) -> None:
        """Remember a refusal under ``key`` (once)."""
        self.session.execute(text(self._REFUSAL), {
            "k": key, "h": request_hash, "code": code, "message": message,
            "detail": json.dumps(detail, default=str), "now": self.bind_time(now)})


# One statement writes a whole batch: entries, postings (joined to the new entry ids
# by key) and account counters. recorded_at is the database clock read after the
# account locks are held, so per account it increases with posting order, which
# the as-of balance reads rely on.
_PG_WRITE = """
WITH e AS (
    INSERT INTO ledger_entries (idempotency_key, request_hash, kind, effective_at, recorded_at, description,
                                metadata, reverses_entry_id, hold_id)
    SELECT k, h, kind, eff, clock_timestamp(), d, m, r, hold
      FROM json_to_recordset(%(entries)s::json)
           AS u(k text, h text, kind text, eff timestamptz, d text, m jsonb, r bigint, hold bigint)
    RETURNING id, idempotency_key, recorded_at
), p AS (
    INSERT INTO ledger_postings (entry_id, account_id, side, amount, currency, pending, recorded_at,
                                 debits_posted_after, credits_posted_after)
    SELECT e.id, u.a, u.s, u.amt, u.c, u.p, e.recorded_at, u.dpa, u.cpa
      FROM ROWS FROM (json_to_recordset(%(postings)s::json)
                      AS (k text, a bigint, s text, amt bigint, c text, p boolean, dpa bigint, cpa bigint))
           WITH ORDINALITY AS u(k, a, s, amt, c, p, dpa, cpa, n)
      JOIN e ON e.idempotency_key = u.k
     ORDER BY u.n
    RETURNING id, entry_id, account_id
), a AS (
    UPDATE ledger_accounts AS acc
       SET debits_pending = v.dpe, debits_posted = v.dpo, credits_pending = v.cpe, credits_posted = v.cpo
      FROM json_to_recordset(%(accounts)s::json) AS v(id bigint, dpe bigint, dpo bigint, cpe bigint, cpo bigint)
     WHERE acc.id = v.id
       AND acc.id = ANY(ARRAY(SELECT json_array_elements_text(%(account_ids)s::json)::bigint))
    RETURNING acc.id
)
SELECT 'e', idempotency_key, id, recorded_at, NULL::bigint FROM e
UNION ALL
SELECT 'p', NULL, id, NULL, account_id FROM p
"""

# The accounts a write touches, locked in id order. Codes resolve through the code
# index one by one (LIMIT 1 keeps each a nested index probe) and ids through the
# primary key: written as "id IN ... OR code IN ...", the generic plan scanned the
# whole table.
_PG_LOCK = (f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts WHERE id = ANY(ARRAY("
            "SELECT unnest(%(ids)s::bigint[]) UNION ALL "
            "SELECT a.id FROM unnest(%(codes)s::text[]) AS c(code) CROSS JOIN LATERAL "
            "(SELECT id FROM ledger_accounts WHERE code = c.code LIMIT 1) AS a)) ORDER BY id FOR UPDATE")
_PG_CLAIM = "SELECT * FROM ledger_claim_keys(%(keys)s::text[])"
# A batch of entries of posted postings, whole (migration 0011): no rows back means
# "take the general path".
_PG_POST_BATCH = "SELECT * FROM ledger_post_batch(%(entries)s::json, %(postings)s::json)"
# The same batch as the last write before the COMMIT (migration 0012): SQLSTATE SLB01
# instead of no rows.
_PG_POST_BATCH_STRICT = "SELECT ledger_post_batch_strict(%(entries)s::json, %(postings)s::json)"
_NOT_POSTED = "SLB01"
# One entry of posted postings, whole (migration 0010): no rows back means "take the
# general path".
_PG_POST_ENTRY = ("SELECT * FROM ledger_post_entry(%(k)s, %(h)s, %(kind)s, %(eff)s, %(d)s, %(m)s::jsonb, "
                  "%(ids)s::bigint[], %(codes)s::text[], %(sides)s::text[], %(amounts)s::bigint[], "
                  "%(currencies)s::text[])")


class PostgresStore(LedgerStore):
    """PostgreSQL: advisory locks on keys, row locks on accounts, and one statement
    for all the writes of a batch."""

    dialect = "postgresql"

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one of the write path's statements on the session's own psycopg
        connection, inside the session's transaction. The three statements of every
        write skip SQLAlchemy's statement machinery (about a third of a transfer's
        client CPU); ``prepare=True`` makes PostgreSQL plan each once per connection."""
        return raw_rows(self.session, sql, params)

    def claim_keys(self, keys: Sequence[str]) -> tuple[dict[str, tuple[int, str]], dict[str, RefusalRow]]:
        return self._split_keys(self._rows(_PG_CLAIM, {"keys": list(keys)}))

    def claim_and_lock(self, keys: Sequence[str], ids: Sequence[int], codes: Sequence[str]) -> tuple[
            dict[str, tuple[int, str]], dict[str, RefusalRow], list[AccountRow]]:
        """Both statements in one round trip (with BEGIN if the transaction has not
        started). The account locks are taken even when the key turns out to be a
        replay: they are released with the transaction and cost nothing meanwhile."""
        raw = self.session.connection().connection.driver_connection
        assert raw is not None, "the session's connection is not open"
        with raw.cursor() as claim, raw.cursor() as lock:
            with raw.pipeline():
                claim.execute(_PG_CLAIM, {"keys": list(keys)}, prepare=True)
                lock.execute(_PG_LOCK, {"ids": list(ids), "codes": list(codes)}, prepare=True)
            entries, refusals = self._split_keys(claim.fetchall())
            accounts = [account_row(r) for r in lock.fetchall()]
        return entries, refusals, accounts

    def post_entry(self, entry: EntryRow, legs: Sequence[tuple[AccountRef, Side, int, str]]) -> Posted | None:
        """Write one entry of posted ``legs`` (account, side, amount, currency) in one
        statement, or nothing and None when it needs the general path: its key was
        seen before, or the entry would be refused."""
        return _posted(self._rows(_PG_POST_ENTRY, post_entry_params(entry, legs)), len(legs))

    def post_batch(self, entries: Sequence[EntryRow],
                   legs: Sequence[Sequence[tuple[AccountRef, Side, int, str]]]) -> list[Posted] | None:
        """Write entries of posted ``legs`` (per entry: account, side, amount,
        currency) in one statement, or nothing and None when the general path must
        decide: a key was seen before, or some entry would be refused."""
        return posted_batch(self._rows(_PG_POST_BATCH, post_batch_params(entries, legs)), entries, legs)

    def post_batch_and_commit(self, entries: Sequence[EntryRow],
                              legs: Sequence[Sequence[tuple[AccountRef, Side, int, str]]]) -> bool:
        """``ledger_post_batch_strict`` and the COMMIT in one round trip (pipeline
        mode). The statement raises SQLSTATE SLB01 instead of writing nothing: the
        transaction is then aborted, the COMMIT behind it commits nothing, and
        :class:`BatchNotCommitted` says to run the transaction again."""
        raw = self.session.connection().connection.driver_connection
        assert raw is not None, "the session's connection is not open"
        params = post_batch_params(entries, legs)
        try:
            with raw.cursor() as cursor, raw.pipeline():
                cursor.execute(_PG_POST_BATCH_STRICT, params, prepare=True)
                raw.commit()
        except psycopg.Error as exc:
            if exc.sqlstate == _NOT_POSTED:
                raise BatchNotCommitted(str(exc)) from None
            raise
        return True

    def find_keys(self, keys: Sequence[str]) -> tuple[dict[str, tuple[int, str]], dict[str, RefusalRow]]:
        rows = self.session.execute(text(
            "SELECT 'e', idempotency_key, id, request_hash, NULL, NULL, NULL::jsonb FROM ledger_entries "
            "WHERE idempotency_key = ANY(CAST(:keys AS text[])) UNION ALL "
            "SELECT 'r', idempotency_key, NULL, request_hash, code, message, detail FROM ledger_refusals "
            "WHERE idempotency_key = ANY(CAST(:keys AS text[]))"), {"keys": list(keys)})
        return self._split_keys(rows)

    def lock_accounts(self, ids: Sequence[int], codes: Sequence[str]) -> list[AccountRow]:
        rows = self._rows(_PG_LOCK, {"ids": list(ids), "codes": list(codes)})
        return [account_row(r) for r in rows]

    def write(self, entries: Sequence[EntryRow], postings: Sequence[PostingRow], accounts: Sequence[AccountRow],
              recorded_at: dt.datetime) -> tuple[dict[str, tuple[int, Any]], list[int]]:
        del recorded_at  # the database clock is used (see _PG_WRITE)
        # Rows travel as three JSON documents: json.dumps is C code, where psycopg
        # builds array literals element by element in Python.
        rows = self._rows(_PG_WRITE, {
            "entries": json.dumps([
                {"k": r.idempotency_key, "h": r.request_hash, "kind": r.kind, "eff": r.effective_at.isoformat(),
                 "d": r.description, "m": r.metadata, "r": r.reverses_entry_id, "hold": r.hold_id}
                for r in entries]),
            "postings": json.dumps([
                {"k": r.entry_key, "a": r.account_id, "s": r.side.value, "amt": r.amount, "c": r.currency,
                 "p": r.pending, "dpa": r.debits_posted_after, "cpa": r.credits_posted_after}
                for r in postings]),
            "accounts": json.dumps([
                {"id": a.id, "dpe": a.debits_pending, "dpo": a.debits_posted, "cpe": a.credits_pending,
                 "cpo": a.credits_posted} for a in accounts]),
            # The ids again, as an index condition: joined to the JSON alone, the
            # generic plan hashed the whole accounts table.
            "account_ids": json.dumps([a.id for a in accounts]),
        })
        inserted = {str(r[1]): (int(r[2]), r[3]) for r in rows if r[0] == "e"}
        posted = sorted((int(r[2]), int(r[4])) for r in rows if r[0] == "p")
        if len(inserted) != len(entries) or len(posted) != len(postings):
            # Keys were claimed, so this cannot happen short of a bug: refuse to go on.
            raise RuntimeError("ledger write lost rows: entries or postings were not all inserted")
        # Identity values increase in insertion order; insertion follows the input
        # order (ORDER BY u.n). Check the accounts line up rather than trust it.
        if [account for _, account in posted] != [r.account_id for r in postings]:
            raise RuntimeError("posting ids came back out of order")
        return inserted, [posting_id for posting_id, _ in posted]

    _REFUSAL = ("INSERT INTO ledger_refusals (idempotency_key, request_hash, code, message, detail, created_at) "
                "SELECT CAST(:k AS text), CAST(:h AS text), CAST(:code AS text), CAST(:message AS text), "
                "CAST(:detail AS jsonb), CAST(:now AS timestamptz) WHERE NOT EXISTS "
                "(SELECT 1 FROM ledger_entries WHERE idempotency_key = CAST(:k AS text)) "
                "ON CONFLICT (idempotency_key) DO NOTHING")


def post_entry_params(entry: EntryRow, legs: Sequence[tuple[AccountRef, Side, int, str]]) -> dict[str, Any]:
    """The call's parameters. The arrays travel as array literals built here: psycopg
    adapts a list element by element in Python, which cost as much client CPU as the
    rest of the call."""
    ids: list[str] = []
    codes: list[str] = []
    for account, _, _, _ in legs:
        if isinstance(account, int):
            ids.append(str(account))
            codes.append("NULL")
        else:
            ids.append("NULL")
            codes.append(_quoted(account))
    return {
        "k": entry.idempotency_key, "h": entry.request_hash, "kind": entry.kind, "eff": entry.effective_at,
        "d": entry.description, "m": json.dumps(entry.metadata),
        "ids": "{" + ",".join(ids) + "}", "codes": "{" + ",".join(codes) + "}",
        "sides": "{" + ",".join(side.value for _, side, _, _ in legs) + "}",
        "amounts": "{" + ",".join(str(amount) for _, _, amount, _ in legs) + "}",
        "currencies": "{" + ",".join(_quoted(currency) for _, _, _, currency in legs) + "}"}


def post_batch_params(entries: Sequence[EntryRow],
                      legs: Sequence[Sequence[tuple[AccountRef, Side, int, str]]]) -> dict[str, str]:
    """``ledger_post_batch``'s two JSON documents: the entries, and the postings of
    all of them in order, each naming its entry by key."""
    postings: list[dict[str, Any]] = []
    for entry, entry_legs in zip(entries, legs, strict=True):
        key = entry.idempotency_key
        for account, side, amount, currency in entry_legs:
            ref = "a" if isinstance(account, int) else "code"
            postings.append({"k": key, ref: account, "s": side.value, "amt": amount, "c": currency})
    return {
        "entries": json.dumps([{"k": e.idempotency_key, "h": e.request_hash, "kind": e.kind,
                                "eff": e.effective_at.isoformat(), "d": e.description, "m": e.metadata}
                               for e in entries]),
        "postings": json.dumps(postings)}


def posted_batch(rows: list[tuple[Any, ...]], entries: Sequence[EntryRow],
                 legs: Sequence[Sequence[tuple[AccountRef, Side, int, str]]]) -> list[Posted] | None:
    """What ``ledger_post_batch`` wrote, per entry in order; None if it wrote nothing."""
    if not rows:
        return None
    heads = {r[1]: (int(r[2]), r[3]) for r in rows if r[0] == "e"}
    postings = sorted((int(r[2]), int(r[4]), int(r[5]), int(r[6])) for r in rows if r[0] == "p")
    if len(heads) != len(entries) or len(postings) != sum(len(entry_legs) for entry_legs in legs):
        raise RuntimeError("ledger write lost rows: entries or postings were not all inserted")
    # Posting ids increase in insertion order, which follows the input order; check
    # the accounts given by id line up rather than trust it.
    out: list[Posted] = []
    at = 0
    for entry, entry_legs in zip(entries, legs, strict=True):
        mine = postings[at:at + len(entry_legs)]
        at += len(entry_legs)
        for (account, _, _, _), (_, account_id, _, _) in zip(entry_legs, mine, strict=True):
            if isinstance(account, int) and account != account_id:
                raise RuntimeError("posting ids came back out of order")
        entry_id, recorded_at = heads[entry.idempotency_key]
        out.append(Posted(entry_id, recorded_at, mine))
    return out


def _quoted(text: str) -> str:
    """``text`` as a quoted element of a PostgreSQL array literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def post_entry_alone(connection: psycopg.Connection[Any], entry: EntryRow,
                     legs: Sequence[tuple[AccountRef, Side, int, str]]) -> Posted | None:
    """:meth:`PostgresStore.post_entry` on a psycopg ``connection`` in autocommit mode:
    the statement is its own transaction, one round trip in all."""
    assert connection.autocommit, "post_entry_alone needs a connection in autocommit mode"
    with connection.cursor() as cursor:
        cursor.execute(_PG_POST_ENTRY, post_entry_params(entry, legs), prepare=True)
        return _posted(cursor.fetchall(), len(legs))


def post_batch_alone(connection: psycopg.Connection[Any], params: dict[str, str], entries: Sequence[EntryRow],
                     legs: Sequence[Sequence[tuple[AccountRef, Side, int, str]]]) -> list[Posted] | None:
    """:meth:`PostgresStore.post_batch` on a psycopg ``connection`` in autocommit
    mode, with ``params`` from :func:`post_batch_params`: the statement is the
    batch's whole transaction."""
    assert connection.autocommit, "post_batch_alone needs a connection in autocommit mode"
    with connection.cursor() as cursor:
        cursor.execute(_PG_POST_BATCH, params, prepare=True)
        return posted_batch(cursor.fetchall(), entries, legs)


def _posted(rows: list[tuple[Any, ...]], legs: int) -> Posted | None:
    if not rows:
        return None
    head, *postings = rows
    if len(postings) != legs:
        raise RuntimeError("ledger write lost rows: postings were not all inserted")
    return Posted(int(head[0]), head[2], [(int(p[0]), int(p[1]), int(p[3]), int(p[4])) for p in postings])


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def store_for(session: Session) -> LedgerStore:
    if session.get_bind().dialect.name == "postgresql":
        return PostgresStore(session)
    return LedgerStore(session)
