"""Reads: accounts, balances now and as of a past time, an account's postings.

A balance as of time T is read from the last posting of the account recorded at
or before T, which carries the account's posted counters right after it: one
index lookup on ``(account_id, recorded_at, id)``, whatever the account's history.
Pending counters as of T come from the holds open at T.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from settlement.ledger.errors import AccountNotFound, InvalidEntry
from settlement.ledger.models import AccountType, Side
from settlement.ledger.store import LedgerStore
from settlement.ledger.types import AccountLine, AccountRef, AccountView, Balance, Page

_ACCOUNT_COLUMNS = ("id, code, currency, type, debits_must_not_exceed_credits, credits_must_not_exceed_debits, "
                    "credit_limit, metadata, debits_pending, debits_posted, credits_pending, credits_posted, "
                    "created_at")
MAX_PAGE = 1000


def account_view(store: LedgerStore, r: Sequence[Any], *, replayed: bool = False) -> AccountView:
    return AccountView(int(r[0]), r[1], r[2], AccountType(r[3]), bool(r[4]), bool(r[5]),
                       None if r[6] is None else int(r[6]), store.load_json(r[7]), int(r[8]), int(r[9]),
                       int(r[10]), int(r[11]), store.time(r[12]), replayed)


def find_account(store: LedgerStore, ref: AccountRef) -> AccountView | None:
    column = "id" if isinstance(ref, int) and not isinstance(ref, bool) else "code"
    row = store.session.execute(text(f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts WHERE {column} = :ref"),
                                {"ref": ref}).first()
    return None if row is None else account_view(store, row)


def get_account(store: LedgerStore, ref: AccountRef) -> AccountView:
    account = find_account(store, ref)
    if account is None:
        raise AccountNotFound(f"account {ref!r} does not exist", account=str(ref))
    return account


def list_accounts(store: LedgerStore, *, cursor: str | None = None, limit: int = 100,
                  currency: str | None = None, code_prefix: str | None = None) -> Page[AccountView]:
    limit = _limit(limit)
    after = int(_decode(cursor)[0]) if cursor else 0
    clauses = ["id > :after"]
    params: dict[str, Any] = {"after": after, "limit": limit + 1}
    if currency:
        clauses.append("currency = :currency")
        params["currency"] = currency
    if code_prefix:
        clauses.append("code LIKE :prefix ESCAPE '\\'")
        params["prefix"] = code_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = store.session.execute(text(
        f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_accounts WHERE {' AND '.join(clauses)} ORDER BY id LIMIT :limit"),
        params).all()
    items = [account_view(store, r) for r in rows[:limit]]
    next_cursor = _encode(str(items[-1].id)) if len(rows) > limit else None
    return Page(items, next_cursor)


def balance(store: LedgerStore, ref: AccountRef, as_of: dt.datetime | None = None) -> Balance:
    account = get_account(store, ref)
    if as_of is None:
        return Balance(account.id, account.code, account.currency, account.type, None, account.debits_posted,
                       account.credits_posted, account.debits_pending, account.credits_pending)
    if as_of.tzinfo is None:
        raise InvalidEntry("as_of must be a timezone-aware datetime", field="as_of")
    at = store.bind_time(as_of)
    last = store.session.execute(text(
        "SELECT debits_posted_after, credits_posted_after FROM ledger_postings "
        "WHERE account_id = :a AND recorded_at <= :t ORDER BY recorded_at DESC, id DESC LIMIT 1"),
        {"a": account.id, "t": at}).first()
    debits_posted, credits_posted = (int(last[0]), int(last[1])) if last else (0, 0)
    pending = store.session.execute(text(
        "SELECT COALESCE(SUM(CASE WHEN debit_account_id = :a THEN amount ELSE 0 END), 0), "
        "COALESCE(SUM(CASE WHEN credit_account_id = :a THEN amount ELSE 0 END), 0) FROM ledger_holds "
        "WHERE (debit_account_id = :a OR credit_account_id = :a) AND created_at <= :t "
        "AND (resolved_at IS NULL OR resolved_at > :t)"), {"a": account.id, "t": at}).one()
    return Balance(account.id, account.code, account.currency, account.type, as_of.astimezone(dt.UTC),
                   debits_posted, credits_posted, int(pending[0]), int(pending[1]))


def account_lines(store: LedgerStore, ref: AccountRef, *, cursor: str | None = None,
                  limit: int = 50) -> Page[AccountLine]:
    """The account's postings, newest first, ``limit`` at a time."""
    account = get_account(store, ref)
    limit = _limit(limit)
    params: dict[str, Any] = {"a": account.id, "limit": limit + 1}
    where = "p.account_id = :a"
    if cursor:
        stamp, posting_id = _decode(cursor)
        params["t"] = store.bind_time(dt.datetime.fromisoformat(stamp))
        params["pid"] = int(posting_id)
        where += " AND (p.recorded_at < :t OR (p.recorded_at = :t AND p.id < :pid))"
    rows = store.session.execute(text(
        "SELECT p.id, p.entry_id, e.kind, p.side, p.amount, p.currency, p.pending, e.effective_at, "
        "p.recorded_at, e.description, p.debits_posted_after, p.credits_posted_after "
        f"FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id WHERE {where} "
        "ORDER BY p.recorded_at DESC, p.id DESC LIMIT :limit"), params).all()
    items = [AccountLine(int(r[0]), int(r[1]), r[2], Side(r[3]), int(r[4]), r[5], bool(r[6]),
                         store.time(r[7]), store.time(r[8]), r[9] or "", int(r[10]), int(r[11]))
             for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = _encode(last.recorded_at.isoformat(), str(last.posting_id))
    return Page(items, next_cursor)


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidEntry(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    return limit


def _encode(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
            raise ValueError
        return parts
    except (ValueError, TypeError):
        raise InvalidEntry("cursor is not one this service issued", field="cursor") from None
