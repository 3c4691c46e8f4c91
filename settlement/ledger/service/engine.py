"""The write engine: apply a list of entries atomically.

Steps, all inside the caller's transaction:

1. lock every account the entries touch, in account-id order;
2. replay the entries, in order, on in-memory copies of the counters, refusing the
   first entry that breaks an account limit (``insufficient_funds``) or names an
   unknown account or a posting in another currency; each posting records the
   account's posted counters right after it;
3. insert all entries, then all postings, then update each touched account once.

Idempotency keys are claimed before any of this (:meth:`Engine.check_key`, or the
batch path), so no concurrent transaction can write the same key meanwhile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from settlement.errors import SettlementError, error_class
from settlement.ledger.errors import (
    AccountNotFound,
    CurrencyMismatch,
    IdempotencyConflict,
    InsufficientFunds,
    LedgerError,
)
from settlement.ledger.models import Side
from settlement.ledger.service.prepare import Write
from settlement.ledger.store import AccountRow, LedgerStore, Posted, PostingRow, RefusalRow, store_for
from settlement.ledger.types import AccountRef, EntryResult, PostingView
from settlement.money import MAX_MINOR, AmountOutOfRange


class Engine:
    def __init__(self, session: Session, store: LedgerStore, clock: Callable[[], dt.datetime]) -> None:
        self.session = session
        self.store = store
        self.clock = clock

    # -- applying -----------------------------------------------------------------

    def apply(self, writes: Sequence[Write], locked: Sequence[AccountRow] | None = None) -> list[EntryResult]:
        """Apply ``writes`` in order, atomically. Their keys must have been claimed
        (:meth:`check_key` or the batch path) by this transaction. ``locked``: the
        rows :meth:`claim_many` already locked for them."""
        if not writes:
            return []
        accounts = self._lock(writes) if locked is None else _by_id_and_code(locked)
        postings, touched = self._simulate(writes, accounts)
        inserted, posting_ids = self.store.write([w.entry for w in writes], postings, touched, self.clock())
        entry_ids = {key: entry_id for key, (entry_id, _) in inserted.items()}
        stamps = {key: stamp for key, (_, stamp) in inserted.items()}
        return self._results(writes, postings, posting_ids, entry_ids, stamps)

    def post_entry(self, write: Write) -> EntryResult | None:
        """One entry of posted legs in one statement on PostgreSQL (the store's
        ``post_entry``); None when nothing was written and the general path must
        decide: a key seen before, or a refusal."""
        if not is_plain(write):
            return None
        posted = self.store.post_entry(write.entry, plain_legs(write))
        return None if posted is None else posted_result(write, posted, self.store.time)

    def post_entries(self, writes: Sequence[Write]) -> list[EntryResult] | None:
        """Entries of posted legs, fresh and acceptable, in one statement on PostgreSQL
        (the store's ``post_batch``); None when nothing was written and the general
        path must decide (a key seen before, a refusal), or the entries are not all
        plain."""
        if not all(is_plain(w) and w.entry.reverses_entry_id is None and w.entry.hold_id is None for w in writes):
            return None
        posted = self.store.post_batch([w.entry for w in writes], [plain_legs(w) for w in writes])
        if posted is None:
            return None
        return [posted_result(w, p, self.store.time) for w, p in zip(writes, posted, strict=True)]

    def post_entries_and_commit(self, writes: Sequence[Write]) -> bool:
        """:meth:`post_entries` and the commit of the session's transaction in one
        round trip (the store's ``post_batch_and_commit``); False when that does not
        apply (nothing written or committed): not all entries plain, or a dialect
        that cannot. Raises :class:`BatchNotCommitted` when the general path must
        decide: the transaction was rolled back."""
        if not all(is_plain(w) and w.entry.reverses_entry_id is None and w.entry.hold_id is None for w in writes):
            return False
        return self.store.post_batch_and_commit([w.entry for w in writes], [plain_legs(w) for w in writes])

    def _lock(self, writes: Sequence[Write]) -> dict[int | str, AccountRow]:
        ids, codes = _references(writes)
        return _by_id_and_code(self.store.lock_accounts(ids, codes))

    @staticmethod
    def _simulate(writes: Sequence[Write],
                  accounts: dict[int | str, AccountRow]) -> tuple[list[PostingRow], list[AccountRow]]:
        postings: list[PostingRow] = []
        touched: dict[int, AccountRow] = {}
        for index, write in enumerate(writes):
            changed: dict[int, AccountRow] = {}
            for release in write.releases:
                account = accounts[release.account_id]
                _add(account, release.side, -release.amount, pending=True)
                changed[account.id] = account
            for position, leg in enumerate(write.legs):
                found = accounts.get(leg.account)
                if found is None:
                    raise AccountNotFound(f"account {leg.account!r} does not exist", account=str(leg.account),
                                          index=index, posting=position)
                account = found
                if account.currency != leg.currency:
                    raise CurrencyMismatch(
                        f"posting in {leg.currency} to account {account.code} which is in {account.currency}",
                        account=account.code, account_currency=account.currency, currency=leg.currency,
                        index=index, posting=position)
                _add(account, leg.side, leg.amount, leg.pending)
                changed[account.id] = account
                postings.append(PostingRow(write.entry.idempotency_key, account.id, leg.side, leg.amount,
                                           leg.currency, leg.pending, account.debits_posted,
                                           account.credits_posted))
            for account in changed.values():
                if max(account.debits_pending, account.debits_posted, account.credits_pending,
                       account.credits_posted) > MAX_MINOR:
                    raise AmountOutOfRange(f"entry would take a counter of account {account.code} beyond "
                                           "2^63-1 minor units", field="amount", account=account.code,
                                           index=index)
                rule = account.violation()
                if rule is not None:
                    raise InsufficientFunds(
                        f"entry would take account {account.code} beyond its limit ({rule})",
                        account=account.code, rule=rule, index=index)
            touched.update(changed)
        return postings, list(touched.values())

    def _results(self, writes: Sequence[Write], postings: Sequence[PostingRow], posting_ids: Sequence[int],
                 entry_ids: dict[str, int], stamps: dict[str, Any]) -> list[EntryResult]:
        views: dict[str, list[PostingView]] = {}
        for row, posting_id in zip(postings, posting_ids, strict=True):
            views.setdefault(row.entry_key, []).append(PostingView(
                posting_id, row.account_id, row.side, row.amount, row.currency, row.pending,
                row.debits_posted_after, row.credits_posted_after))
        results: list[EntryResult] = []
        for write in writes:
            entry = write.entry
            entry_id = entry_ids[entry.idempotency_key]
            recorded_at = self.store.time(stamps[entry.idempotency_key])
            legs = tuple(views.get(entry.idempotency_key, ()))
            if write.after_insert is not None:
                write.after_insert(entry_id, recorded_at, legs)
            results.append(EntryResult(
                entry_id, entry.idempotency_key, entry.kind, entry.effective_at, recorded_at, entry.description,
                entry.metadata, legs, entry.reverses_entry_id, entry.hold_id))
        return results

    # -- reading back -------------------------------------------------------------

    def load(self, entry_ids: Sequence[int], *, replayed: bool = False) -> list[EntryResult]:
        """Entries by id, in the order asked, as stored."""
        if not entry_ids:
            return []
        rows = {int(r[0]): r for r in self.store.entries_by_id(entry_ids)}
        legs: dict[int, list[PostingView]] = {}
        for p in self.store.postings_of(list(rows)):
            legs.setdefault(int(p[1]), []).append(PostingView(
                int(p[0]), int(p[2]), Side(p[3]), int(p[4]), p[5], bool(p[6]), int(p[7]), int(p[8])))
        out = []
        for entry_id in entry_ids:
            r = rows[entry_id]
            out.append(EntryResult(
                entry_id, r[1], r[2], self.store.time(r[3]), self.store.time(r[4]), r[5] or "",
                self.store.load_json(r[6]), tuple(legs.get(entry_id, ())),
                None if r[7] is None else int(r[7]), None if r[8] is None else int(r[8]), replayed))
        return out

    # -- idempotency --------------------------------------------------------------

    def claim_one(self, write: Write) -> tuple[EntryResult | None, list[AccountRow]]:
        """:meth:`check_key` for ``write`` and the locks on its accounts, in one round
        trip on PostgreSQL: (the replay or None, the locked rows)."""
        key, request_hash = write.entry.idempotency_key, write.entry.request_hash
        entries, refusals, rows = self.claim_many([write])
        return self.resolve_key(key, request_hash, entries, refusals), rows

    def claim_many(self, writes: Sequence[Write]) -> tuple[
            dict[str, tuple[int, str]], dict[str, RefusalRow], list[AccountRow]]:
        """Claim the keys of ``writes`` and lock every account they touch (keys first,
        then accounts in id order, in one round trip on PostgreSQL): what is stored
        under the keys, and the locked rows."""
        ids, codes = _references(writes)
        return self.store.claim_and_lock([w.entry.idempotency_key for w in writes], ids, codes)

    def check_key(self, key: str, request_hash: str) -> EntryResult | None:
        """The stored result for ``key`` if this exact request was seen; raises the
        stored refusal again if it was refused; raises IdempotencyConflict if the key
        was used for a different request; None if the key is new.

        On PostgreSQL the key is first locked for the rest of the transaction, so a
        concurrent request with the same key waits here until this one's outcome,
        success or recorded refusal, is committed, and then replays it."""
        entries, refusals = self.store.claim_keys([key])
        return self.resolve_key(key, request_hash, entries, refusals)

    def resolve_key(self, key: str, request_hash: str, entries: dict[str, tuple[int, str]],
                    refusals: dict[str, RefusalRow]) -> EntryResult | None:
        if key in entries:
            entry_id, stored_hash = entries[key]
            if stored_hash != request_hash:
                raise IdempotencyConflict(f"idempotency key {key!r} was used for a different request",
                                          idempotency_key=key)
            return self.load([entry_id], replayed=True)[0]
        refusal = refusals.get(key)
        if refusal is not None:
            if refusal.request_hash != request_hash:
                raise IdempotencyConflict(f"idempotency key {key!r} was used for a different request",
                                          idempotency_key=key)
            raise replay_refusal(refusal)
        return None


def is_plain(write: Write) -> bool:
    """Whether ``write`` is an entry of posted postings only (no hold involved)."""
    return not write.releases and write.after_insert is None and not any(leg.pending for leg in write.legs)


def plain_legs(write: Write) -> list[tuple[AccountRef, Side, int, str]]:
    return [(leg.account, leg.side, leg.amount, leg.currency) for leg in write.legs]


def posted_result(write: Write, posted: Posted, time: Callable[[Any], dt.datetime]) -> EntryResult:
    """The result of a plain ``write`` the database wrote in one step."""
    entry = write.entry
    legs = tuple(PostingView(posting_id, account_id, leg.side, leg.amount, leg.currency, False, dpa, cpa)
                 for (posting_id, account_id, dpa, cpa), leg in zip(posted.postings, write.legs, strict=True))
    return EntryResult(posted.entry_id, entry.idempotency_key, entry.kind, entry.effective_at,
                       time(posted.recorded_at), entry.description, entry.metadata, legs,
                       entry.reverses_entry_id, entry.hold_id)


#: Business refusals remembered under their key (TigerBeetle's "transient" results);
#: malformed requests and conflicts are not.
RECORDED_REFUSALS = frozenset({
    "insufficient_funds", "account_not_found", "currency_mismatch", "hold_not_found", "hold_expired",
    "hold_already_resolved", "exceeds_hold_amount", "entry_not_found", "already_reversed",
    "entry_not_reversible",
})


def replay_refusal(refusal: RefusalRow) -> SettlementError:
    error = error_class(refusal.code)(refusal.message, **refusal.detail)
    error.replayed = True
    return error


def remember_refusal(session: Session, error: LedgerError, key: str, request_hash: str,
                     now: dt.datetime) -> None:
    """Record ``error`` under ``key`` in this transaction if it is a business refusal,
    and mark it durable so the unit of work commits it."""
    if error.code not in RECORDED_REFUSALS or error.replayed:
        return
    store_for(session).insert_refusal(key, request_hash, code=error.code, message=error.message,
                                      detail=error.detail, now=now)
    error.durable = True


def _references(writes: Sequence[Write]) -> tuple[list[int], list[str]]:
    """The account ids and codes ``writes`` touch, each sorted."""
    ids: set[int] = set()
    codes: set[str] = set()
    for write in writes:
        for leg in write.legs:
            (ids if isinstance(leg.account, int) else codes).add(leg.account)  # type: ignore[arg-type]
        for release in write.releases:
            ids.add(release.account_id)
    return sorted(ids), sorted(codes)


def _by_id_and_code(rows: Sequence[AccountRow]) -> dict[int | str, AccountRow]:
    found: dict[int | str, AccountRow] = {}
    for row in rows:
        found[row.id] = row
        found[row.code] = row
    return found


def _add(account: AccountRow, side: Side, amount: int, pending: bool) -> None:
    if pending:
        if side is Side.DEBIT:
            account.debits_pending += amount
        else:
            account.credits_pending += amount
    elif side is Side.DEBIT:
        account.debits_posted += amount
    else:
        account.credits_posted += amount


def _copy(row: AccountRow) -> AccountRow:
    return AccountRow(row.id, row.code, row.currency, row.type, row.debits_must_not_exceed_credits,
                      row.credits_must_not_exceed_debits, row.credit_limit, row.debits_pending,
                      row.debits_posted, row.credits_pending, row.credits_posted)
