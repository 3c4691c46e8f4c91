"""The ledger's SQL. Everything the write path needs is a handful of set-based
statements whose count does not depend on the number of entries:

1. look up idempotency keys (entries and refusals) in one query;
2. lock every touched account row, in account-id order (``SELECT ... ORDER BY id FOR
   UPDATE``), so two writers that share accounts queue instead of deadlocking;
3. insert all entries, all postings, and update each touched account once.

On PostgreSQL each bulk step is a single statement over ``unnest()`` of arrays: the
SQL text is constant whatever the batch size, so psycopg prepares it once per
connection. SQLite (the embedded default, a single writer) runs plain per-row
statements; its transactions begin IMMEDIATE, which serialises writers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.db.types import UTCDateTime
from settlement.ledger.models import AccountType, Side


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


_ACCOUNT_COLUMNS = ("id, code, currency, type, debits_must_not_exceed_credits, "
                    "credits_must_not_exceed_debits, credit_limit, debits_pending, debits_posted, "
                    "credits_pending, credits_posted")

_ENTRY_COLUMNS = ("id, idempotency_key, kind, effective_at, recorded_at, description, metadata, "
                  "reverses_entry_id, hold_id")
_POSTING_COLUMNS = ("id, entry_id, account_id, side, amount, currency, pending, "
                    "debits_posted_after, credits_posted_after")

_TIME = UTCDateTime()


def account_row(row: Sequence[Any]) -> AccountRow:
    return AccountRow(int(row[0]), row[1], row[2], AccountType(row[3]), bool(row[4]), bool(row[5]),
                      None if row[6] is None else int(row[6]), int(row[7]), int(row[8]), int(row[9]),
                      int(row[10]))


class LedgerStore:
    """SQL for one session. Use :func:`store_for` to get the right dialect."""

    dialect = "generic"

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- reads shared by both dialects --------------------------------------------

    def time(self, value: Any) -> dt.datetime:
        stamp = _TIME.process_result_value(value, self.session.get_bind().dialect)
        assert stamp is not None
        return stamp

    def bind_time(self, value: dt.datetime) -> Any:
        return _TIME.process_bind_param(value, self.session.get_bind().dialect)

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

    def find_keys(self, keys: Sequence[str]) -> tuple[dict[str, tuple[int, str]], dict[str, RefusalRow]]:
        """Stored entries (key -> (id, request hash)) and refusals for ``keys``."""
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

    def insert_entries(self, rows: Sequence[EntryRow], recorded_at: dt.datetime) -> dict[str, tuple[int, Any]]:
        """Insert entries, skipping keys that already exist (a concurrent writer got
        there first). Returns key -> (id, recorded_at) for the rows inserted."""
        out: dict[str, tuple[int, Any]] = {}
        statement = text(
            "INSERT INTO ledger_entries (idempotency_key, request_hash, kind, effective_at, recorded_at, "
            "description, metadata, reverses_entry_id, hold_id) VALUES (:k, :h, :kind, :eff, :rec, :d, :m, "
            ":r, :hold) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, recorded_at")
        rec = self.bind_time(recorded_at)
        for row in rows:
            result = self.session.execute(statement, {
                "k": row.idempotency_key, "h": row.request_hash, "kind": row.kind,
                "eff": self.bind_time(row.effective_at), "rec": rec, "d": row.description,
                "m": json.dumps(row.metadata), "r": row.reverses_entry_id, "hold": row.hold_id}).first()
            if result is not None:
                out[row.idempotency_key] = (int(result[0]), result[1])
        return out

    def insert_postings(self, rows: Sequence[PostingRow], entry_ids: dict[str, int],
                        recorded_at: dict[str, Any]) -> list[int]:
        statement = text(
            "INSERT INTO ledger_postings (entry_id, account_id, side, amount, currency, pending, recorded_at, "
            "debits_posted_after, credits_posted_after) VALUES (:e, :a, :s, :amt, :c, :p, :t, :dpa, :cpa) "
            "RETURNING id")
        ids: list[int] = []
        for row in rows:
            ids.append(int(self.session.execute(statement, {
                "e": entry_ids[row.entry_key], "a": row.account_id, "s": row.side.value, "amt": row.amount,
                "c": row.currency, "p": row.pending, "t": recorded_at[row.entry_key],
                "dpa": row.debits_posted_after, "cpa": row.credits_posted_after}).scalar_one()))
        return ids

    _REFUSAL = ("INSERT INTO ledger_refusals (idempotency_key, request_hash, code, message, detail, created_at) "
                "SELECT :k, :h, :code, :message, :detail, :now WHERE NOT EXISTS "
                "(SELECT 1 FROM ledger_entries WHERE idempotency_key = :k) ON CONFLICT (idempotency_key) DO NOTHING")

    def insert_refusal(self, key: str, request_hash: str, *, code: str, message: str, detail: dict[str, Any],
                       now: dt.datetime) -> None:
        """Remember a refusal under ``key`` unless the key has an entry (a concurrent
        retry succeeded) or a refusal already."""
        self.session.execute(text(self._REFUSAL), {
            "k": key, "h": request_hash, "code": code, "message": message,
            "detail": json.dumps(detail, default=str), "now": self.bind_time(now)})

    def update_counters(self, accounts: Sequence[AccountRow]) -> None:
        self.session.execute(text(
            "UPDATE ledger_accounts SET debits_pending = :dpe, debits_posted = :dpo, credits_pending = :cpe, "
            "credits_posted = :cpo WHERE id = :id"),
            [{"id": a.id, "dpe": a.debits_pending, "dpo": a.debits_posted, "cpe": a.credits_pending,
              "cpo": a.credits_posted} for a in accounts])


class PostgresStore(LedgerStore):
    """PostgreSQL: row locks, and one ``unnest()`` statement per bulk step."""

    dialect = "postgresql"

    def find_keys(self, keys: Sequence[str]) -> tuple[dict[str, tuple[int, str]], dict[str, RefusalRow]]:
        rows = self.session.execute(text(
            "SELECT 'e', idempotency_key, id, request_hash, NULL, NULL, NULL::jsonb FROM ledger_entries "
            "WHERE idempotency_key = ANY(CAST(:keys AS text[])) UNION ALL "
            "SELECT 'r', idempotency_key, NULL, request_hash, code, message, detail FROM ledger_refusals "
            "WHERE idempotency_key = ANY(CAST(:keys AS text[]))"), {"keys": list(keys)})
        return self._split_keys(rows)

    def lock_accounts(self, ids: Sequence[int], codes: Sequence[str]) -> list[AccountRow]:
        rows = self.session.execute(text(
            f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts "
            "WHERE id = ANY(CAST(:ids AS bigint[])) OR code = ANY(CAST(:codes AS text[])) "
            "ORDER BY id FOR UPDATE"), {"ids": list(ids), "codes": list(codes)})
        return [account_row(r) for r in rows]

    def insert_entries(self, rows: Sequence[EntryRow], recorded_at: dt.datetime) -> dict[str, tuple[int, Any]]:
        # recorded_at comes from the database clock, read after the account locks are
        # held, so per account it increases with posting order (as-of reads rely on it).
        del recorded_at
        result = self.session.execute(text(
            "INSERT INTO ledger_entries (idempotency_key, request_hash, kind, effective_at, recorded_at, "
            "description, metadata, reverses_entry_id, hold_id) "
            "SELECT k, h, kind, eff, clock_timestamp(), d, CAST(m AS jsonb), r, hold FROM unnest("
            "CAST(:k AS text[]), CAST(:h AS text[]), CAST(:kind AS text[]), CAST(:eff AS timestamptz[]), "
            "CAST(:d AS text[]), CAST(:m AS text[]), CAST(:r AS bigint[]), CAST(:hold AS bigint[])) "
            "AS u(k, h, kind, eff, d, m, r, hold) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key, id, recorded_at"), {
                "k": [r.idempotency_key for r in rows], "h": [r.request_hash for r in rows],
                "kind": [r.kind for r in rows], "eff": [r.effective_at for r in rows],
                "d": [r.description for r in rows],
                "m": [json.dumps(r.metadata) if r.metadata else "{}" for r in rows],
                "r": [r.reverses_entry_id for r in rows], "hold": [r.hold_id for r in rows]})
        return {str(row[0]): (int(row[1]), row[2]) for row in result}

    def insert_postings(self, rows: Sequence[PostingRow], entry_ids: dict[str, int],
                        recorded_at: dict[str, Any]) -> list[int]:
        entry_column = [entry_ids[r.entry_key] for r in rows]
        account_column = [r.account_id for r in rows]
        result = self.session.execute(text(
            "INSERT INTO ledger_postings (entry_id, account_id, side, amount, currency, pending, recorded_at, "
            "debits_posted_after, credits_posted_after) "
            "SELECT * FROM unnest(CAST(:e AS bigint[]), CAST(:a AS bigint[]), CAST(:s AS text[]), "
            "CAST(:amt AS bigint[]), CAST(:c AS text[]), CAST(:p AS boolean[]), CAST(:t AS timestamptz[]), "
            "CAST(:dpa AS bigint[]), CAST(:cpa AS bigint[])) RETURNING id, entry_id, account_id"), {
                "e": entry_column, "a": account_column, "s": [r.side.value for r in rows],
                "amt": [r.amount for r in rows], "c": [r.currency for r in rows],
                "p": [r.pending for r in rows], "t": [recorded_at[r.entry_key] for r in rows],
                "dpa": [r.debits_posted_after for r in rows], "cpa": [r.credits_posted_after for r in rows]})
        returned = result.all()
        # RETURNING follows insertion order, which follows unnest's order; check it
        # rather than trust it, since posting ids go into results.
        if [(r[1], r[2]) for r in returned] != list(zip(entry_column, account_column, strict=True)):
            raise RuntimeError("posting ids came back out of order")
        return [int(r[0]) for r in returned]

    _REFUSAL = ("INSERT INTO ledger_refusals (idempotency_key, request_hash, code, message, detail, created_at) "
                "SELECT CAST(:k AS text), CAST(:h AS text), CAST(:code AS text), CAST(:message AS text), "
                "CAST(:detail AS jsonb), CAST(:now AS timestamptz) WHERE NOT EXISTS "
                "(SELECT 1 FROM ledger_entries WHERE idempotency_key = CAST(:k AS text)) "
                "ON CONFLICT (idempotency_key) DO NOTHING")

    def update_counters(self, accounts: Sequence[AccountRow]) -> None:
        self.session.execute(text(
            "UPDATE ledger_accounts AS a SET debits_pending = u.dpe, debits_posted = u.dpo, "
            "credits_pending = u.cpe, credits_posted = u.cpo FROM unnest(CAST(:id AS bigint[]), "
            "CAST(:dpe AS bigint[]), CAST(:dpo AS bigint[]), CAST(:cpe AS bigint[]), CAST(:cpo AS bigint[])) "
            "AS u(id, dpe, dpo, cpe, cpo) WHERE a.id = u.id"), {
                "id": [a.id for a in accounts], "dpe": [a.debits_pending for a in accounts],
                "dpo": [a.debits_posted for a in accounts], "cpe": [a.credits_pending for a in accounts],
                "cpo": [a.credits_posted for a in accounts]})


def _expanding(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name, expanding=True)


def store_for(session: Session) -> LedgerStore:
    if session.get_bind().dialect.name == "postgresql":
        return PostgresStore(session)
    return LedgerStore(session)
