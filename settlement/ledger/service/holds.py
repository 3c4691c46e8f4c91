"""Holds: two-phase transfers, as TigerBeetle's pending transfers.

* ``create``: moves ``amount`` into the pending counters (debit account's
  ``debits_pending``, credit account's ``credits_pending``). Limits count pending
  debits, so a hold reserves funds.
* ``post``: releases the pending amount and posts ``amount`` (all of it by default,
  or part). With ``keep_remainder`` a partial post leaves the rest on hold in a new
  hold (``parent_hold_id`` names the old one), so several partial captures can
  follow one authorization.
* ``void``: releases the pending amount.
* ``expire``: the sweeper's void, for holds past ``expires_at``.

A hold resolves at most once (``hold_already_resolved``), and cannot be posted
once ``expires_at`` has passed (``hold_expired``), even before the sweeper runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from settlement.ledger.errors import ExceedsHoldAmount, HoldAlreadyResolved, HoldExpired, HoldNotFound
from settlement.ledger.models import EntryKind, HoldStatus, Side
from settlement.ledger.service.prepare import Leg, Release, Write
from settlement.ledger.store import EntryRow, LedgerStore
from settlement.ledger.types import HoldView, PostingView

_HOLD_COLUMNS = ("id, entry_id, debit_account_id, credit_account_id, amount, currency, status, posted_amount, "
                 "expires_at, created_at, resolved_entry_id, resolved_at, parent_hold_id")


def hold_view(store: LedgerStore, r: Sequence[Any]) -> HoldView:
    return HoldView(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), r[5], HoldStatus(r[6]), int(r[7]),
                    None if r[8] is None else store.time(r[8]), store.time(r[9]),
                    None if r[10] is None else int(r[10]), None if r[11] is None else store.time(r[11]),
                    None if r[12] is None else int(r[12]))


def load_hold(store: LedgerStore, hold_id: int, *, lock: bool = False) -> HoldView | None:
    suffix = " FOR UPDATE" if lock and store.dialect == "postgresql" else ""
    row = store.session.execute(text(f"SELECT {_HOLD_COLUMNS} FROM ledger_holds WHERE id = :id{suffix}"),
                                {"id": hold_id}).first()
    return None if row is None else hold_view(store, row)


def load_hold_by_entry(store: LedgerStore, entry_id: int) -> HoldView | None:
    row = store.session.execute(text(f"SELECT {_HOLD_COLUMNS} FROM ledger_holds WHERE entry_id = :id"),
                                {"id": entry_id}).first()
    return None if row is None else hold_view(store, row)


def insert_hold(store: LedgerStore, *, entry_id: int, debit_account_id: int, credit_account_id: int,
                amount: int, currency: str, expires_at: dt.datetime | None, created_at: dt.datetime,
                parent_hold_id: int | None = None) -> HoldView:
    """Insert a pending hold and return it as stored (RETURNING: no read back while
    the accounts are locked)."""
    row = store.session.execute(text(
        "INSERT INTO ledger_holds (entry_id, debit_account_id, credit_account_id, amount, currency, status, "
        "posted_amount, expires_at, created_at, parent_hold_id) VALUES (:e, :d, :c, :a, :cur, 'pending', 0, "
        f":x, :t, :p) RETURNING {_HOLD_COLUMNS}"),
        {"e": entry_id, "d": debit_account_id, "c": credit_account_id, "a": amount, "cur": currency,
         "x": None if expires_at is None else store.bind_time(expires_at), "t": store.bind_time(created_at),
         "p": parent_hold_id}).one()
    return hold_view(store, row)


def resolve_hold(store: LedgerStore, hold_id: int, *, status: HoldStatus, posted_amount: int, entry_id: int,
                 at: dt.datetime) -> HoldView | None:
    """Resolve a pending hold; returns it as stored now (None if it was not pending)."""
    row = store.session.execute(text(
        "UPDATE ledger_holds SET status = :s, posted_amount = :p, resolved_entry_id = :e, resolved_at = :t "
        f"WHERE id = :id AND status = 'pending' RETURNING {_HOLD_COLUMNS}"),
        {"s": status.value, "p": posted_amount, "e": entry_id, "t": store.bind_time(at), "id": hold_id}).first()
    return None if row is None else hold_view(store, row)


def check_postable(hold: HoldView | None, hold_id: int, amount: int | None, now: dt.datetime) -> HoldView:
    """Refusals shared by post (and, without amount, by void)."""
    if hold is None:
        raise HoldNotFound(f"hold {hold_id} does not exist", hold_id=hold_id)
    if hold.status is not HoldStatus.PENDING:
        raise HoldAlreadyResolved(f"hold {hold_id} is already {hold.status.value}", hold_id=hold_id,
                                  status=hold.status.value)
    if amount is not None:
        if hold.expires_at is not None and hold.expires_at <= now:
            raise HoldExpired(f"hold {hold_id} expired at {hold.expires_at.isoformat()}", hold_id=hold_id,
                              expires_at=hold.expires_at.isoformat())
        if amount > hold.amount:
            raise ExceedsHoldAmount(f"amount {amount} exceeds hold {hold_id} of {hold.amount}",
                                    hold_id=hold_id, hold_amount=hold.amount, amount=amount)
    return hold


def releases(hold: HoldView) -> list[Release]:
    return [Release(hold.debit_account_id, Side.DEBIT, hold.amount),
            Release(hold.credit_account_id, Side.CREDIT, hold.amount)]


def post_write(store: LedgerStore, hold: HoldView, entry: EntryRow, *, amount: int, keep_remainder: bool,
               continuation: list[HoldView], resolved: list[HoldView] | None = None) -> Write:
    """The entry that posts ``amount`` of ``hold`` (and re-holds the rest if asked).
    Once written, ``resolved`` holds the posted hold and ``continuation`` the new one."""
    legs = [Leg(hold.debit_account_id, Side.DEBIT, amount, hold.currency),
            Leg(hold.credit_account_id, Side.CREDIT, amount, hold.currency)]
    remainder = hold.amount - amount if keep_remainder else 0
    if remainder:
        legs += [Leg(hold.debit_account_id, Side.DEBIT, remainder, hold.currency, pending=True),
                 Leg(hold.credit_account_id, Side.CREDIT, remainder, hold.currency, pending=True)]

    def after(entry_id: int, recorded_at: dt.datetime, _postings: Sequence[PostingView]) -> None:
        done = resolve_hold(store, hold.id, status=HoldStatus.POSTED, posted_amount=amount, entry_id=entry_id,
                            at=recorded_at)
        if done is not None and resolved is not None:
            resolved.append(done)
        if remainder:
            continuation.append(insert_hold(
                store, entry_id=entry_id, debit_account_id=hold.debit_account_id,
                credit_account_id=hold.credit_account_id, amount=remainder, currency=hold.currency,
                expires_at=hold.expires_at, created_at=recorded_at, parent_hold_id=hold.id))

    return Write(entry, legs, releases(hold), after)


def release_write(store: LedgerStore, hold: HoldView, entry: EntryRow, status: HoldStatus,
                  resolved: list[HoldView] | None = None) -> Write:
    """The entry that voids or expires ``hold``: no postings, only releases. Once
    written, ``resolved`` holds the released hold."""

    def after(entry_id: int, recorded_at: dt.datetime, _postings: Sequence[PostingView]) -> None:
        done = resolve_hold(store, hold.id, status=status, posted_amount=0, entry_id=entry_id, at=recorded_at)
        if done is not None and resolved is not None:
            resolved.append(done)

    return Write(entry, [], releases(hold), after)


def expiry_key(hold_id: int) -> str:
    return f"ledger:hold-expire:{hold_id}"


def expired_pending(store: LedgerStore, now: dt.datetime, limit: int) -> list[HoldView]:
    """Pending holds past their expiry, locked (skipping holds another sweeper or
    writer holds right now)."""
    lock = " FOR UPDATE SKIP LOCKED" if store.dialect == "postgresql" else ""
    rows = store.session.execute(text(
        f"SELECT {_HOLD_COLUMNS} FROM ledger_holds WHERE status = 'pending' AND expires_at <= :now "
        f"ORDER BY id LIMIT :limit{lock}"), {"now": store.bind_time(now), "limit": limit})
    return [hold_view(store, r) for r in rows]


HOLD_KINDS = frozenset({EntryKind.HOLD.value, EntryKind.HOLD_POST.value, EntryKind.HOLD_VOID.value,
                        EntryKind.HOLD_EXPIRE.value})
