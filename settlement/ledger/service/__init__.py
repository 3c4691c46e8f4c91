"""The ledger service: the only way anything writes to the ledger.

``Ledger(session)`` works inside the caller's transaction and never commits. Every
write takes an idempotency key with TigerBeetle's semantics:

* the same key with the same request returns the stored result (``replayed`` true):
  the identical entry; for hold operations the hold views report the hold's state
  now (a hold created earlier may have been posted since);
* the same key with a different request raises ``idempotency_conflict``;
* a request refused for a business reason (``insufficient_funds``...) is remembered
  under its key in the same transaction (the error is ``durable``: the unit of work
  commits it), so the same key is refused the same way again; a concurrent request
  with the same key waits for the first one's outcome and replays it;
* a batch is all or nothing and leaves nothing behind when it fails, refusal
  included.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.db.session import SessionFactory, unit_of_work
from settlement.db.types import utcnow
from settlement.ledger.errors import (
    AccountConflict,
    AlreadyReversed,
    EntryNotFound,
    EntryNotReversible,
    HoldNotFound,
    InvalidAccount,
    InvalidEntry,
    LedgerError,
)
from settlement.ledger.models import AccountType, EntryKind, HoldStatus, Side
from settlement.ledger.service import holds as _holds
from settlement.ledger.service import queries as _queries
from settlement.ledger.service.engine import Engine, is_plain, plain_legs, posted_result, remember_refusal
from settlement.ledger.service.prepare import (
    Leg,
    Write,
    check_account_ref,
    check_key,
    check_metadata,
    check_time,
    fingerprint,
    prepare_entry,
)
from settlement.ledger.store import (
    AccountRow,
    EntryRow,
    Posted,
    db_time,
    post_batch_alone,
    post_batch_params,
    post_entry_alone,
    store_for,
)
from settlement.ledger.types import (
    AccountLine,
    AccountRef,
    AccountSpec,
    AccountView,
    Balance,
    EntryResult,
    EntrySpec,
    HoldResult,
    HoldView,
    Page,
    PostingView,
)
from settlement.money import check_currency, check_minor

__all__ = ["Ledger", "post_alone", "post_batches"]


class Ledger:
    """Accounts, entries, holds and balances over one ``Session``."""

    def __init__(self, session: Session, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.session = session
        self.clock = clock
        self.store = store_for(session)
        self.engine = Engine(session, self.store, clock)

    # -- accounts -----------------------------------------------------------------

    def create_account(self, spec: AccountSpec) -> AccountView:
        """Create an account, or return the existing one if ``spec`` matches it exactly."""
        code = spec.code
        if not isinstance(code, str) or not code or len(code) > 200 or code != code.strip():
            raise InvalidAccount("code must be a non-empty string of at most 200 characters without "
                                 "surrounding spaces", field="code")
        check_currency(spec.currency)
        try:
            account_type = AccountType(spec.type)
        except ValueError:
            raise InvalidAccount(f"type must be one of {', '.join(t.value for t in AccountType)}",
                                 field="type") from None
        if spec.debits_must_not_exceed_credits and spec.credits_must_not_exceed_debits:
            raise InvalidAccount("an account takes at most one of the two limit flags", field="flags")
        if spec.credit_limit is not None:
            check_minor(spec.credit_limit, positive=False, field="credit_limit")
            if spec.credit_limit < 0:
                raise InvalidAccount("credit_limit must not be negative", field="credit_limit")
        metadata = check_metadata(spec.metadata)
        wanted = (spec.currency, account_type, bool(spec.debits_must_not_exceed_credits),
                  bool(spec.credits_must_not_exceed_debits), spec.credit_limit, metadata)
        existing = _queries.find_account(self.store, code)
        if existing is None:
            # ON CONFLICT: a concurrent creation of the same code wins; we then compare
            # against what it wrote.
            self.session.execute(text(
                "INSERT INTO ledger_accounts (code, currency, type, debits_must_not_exceed_credits, "
                "credits_must_not_exceed_debits, credit_limit, metadata, created_at) "
                "VALUES (:code, :cur, :type, :dmnec, :cmned, :limit, :meta, :now) "
                "ON CONFLICT (code) DO NOTHING"),
                {"code": code, "cur": spec.currency, "type": account_type.value,
                 "dmnec": wanted[2], "cmned": wanted[3], "limit": spec.credit_limit,
                 "meta": _json(metadata), "now": self.store.bind_time(self.clock())})
            created = _queries.find_account(self.store, code)
            assert created is not None
            if _attributes(created) != wanted:
                raise AccountConflict(f"account {code} exists with different attributes", account=code)
            return created
        if _attributes(existing) != wanted:
            raise AccountConflict(f"account {code} exists with different attributes", account=code)
        return dataclasses.replace(existing, replayed=True)

    def get_account(self, ref: AccountRef) -> AccountView:
        return _queries.get_account(self.store, check_account_ref(ref, "account"))

    def list_accounts(self, *, cursor: str | None = None, limit: int = 100, currency: str | None = None,
                      code_prefix: str | None = None) -> Page[AccountView]:
        return _queries.list_accounts(self.store, cursor=cursor, limit=limit, currency=currency,
                                      code_prefix=code_prefix)

    # -- entries ------------------------------------------------------------------

    def post(self, spec: EntrySpec) -> EntryResult:
        """Post one balanced entry. Refusals are remembered under its key."""
        return self._post(prepare_entry(spec, self.clock()))

    def _post(self, write: Write, *, one_statement: bool = True) -> EntryResult:
        """:meth:`post` of a prepared entry; ``one_statement=False`` when the caller
        already tried the one-statement write and was sent to the general path."""
        if one_statement:
            written = self.engine.post_entry(write)
            if written is not None:
                return written
        replay, locked = self.engine.claim_one(write)
        if replay is not None:
            return replay
        return self._apply_one(write, locked)

    def post_batch(self, specs: Sequence[EntrySpec]) -> list[EntryResult]:
        """Post many entries atomically, in order (the fast path). Entries whose key was
        already used for the same request come back as replays; any refusal fails the
        whole batch with the entry's ``index`` in the error's detail, and nothing is
        written, not even the refusal."""
        writes = prepare_batch(specs, self.clock())
        if not writes:
            return []
        written = self.engine.post_entries(writes)
        if written is not None:
            return written
        return self._post_prepared(writes)

    def post_batch_with_commit(self, specs: Sequence[EntrySpec]) -> bool:
        """Post many entries like :meth:`post_batch`, as the last write of the
        session's transaction, and commit the transaction in the same round trip
        (PostgreSQL). The accounts it locks stay locked only while the database writes
        and commits: no answer has to reach the client, and the client be scheduled,
        before the COMMIT goes out. For the unit of work's own commit step only:
        everything else the transaction writes must be flushed already, and nothing
        may follow but the session's commit, which then has nothing left to send.

        Returns False, with nothing written or committed, when this does not apply (no
        entries, not PostgreSQL, entries other than plain posted ones): post them with
        :meth:`post_batch` and commit as usual. Raises
        :class:`~settlement.ledger.errors.BatchNotCommitted` when the batch needs the
        general path (a key seen before, an entry it would refuse): the transaction
        was rolled back; run it again with :meth:`post_batch`, which decides and
        words the answer."""
        writes = prepare_batch(specs, self.clock())
        if not writes:
            return False
        return self.engine.post_entries_and_commit(writes)

    def _post_prepared(self, writes: Sequence[Write]) -> list[EntryResult]:
        """:meth:`post_batch`'s general path, for validated ``writes``."""
        keys = [w.entry.idempotency_key for w in writes]
        entries, refusals, locked = self.engine.claim_many(writes)
        results: dict[str, EntryResult] = {}
        fresh: list[Write] = []
        for write in writes:
            key = write.entry.idempotency_key
            if key in entries or key in refusals:
                replay = self.engine.resolve_key(key, write.entry.request_hash, entries, refusals)
                assert replay is not None
                results[key] = replay
            else:
                fresh.append(write)
        for result in self.engine.apply(fresh, locked):
            results[result.idempotency_key] = result
        return [results[key] for key in keys]

    def get_entry(self, entry_id: int) -> EntryResult:
        found = self.engine.load([entry_id]) if _entry_exists(self.session, entry_id) else []
        if not found:
            raise EntryNotFound(f"entry {entry_id} does not exist", entry_id=entry_id)
        return found[0]

    def reverse(self, idempotency_key: str, entry_id: int, *, description: str = "",
                metadata: Mapping[str, Any] | None = None) -> EntryResult:
        """Post the mirror image of a posted entry (every debit a credit and back).
        An entry is reversed at most once; entries with pending postings are voided
        (through their hold), not reversed."""
        key = check_key(idempotency_key)
        meta = check_metadata(metadata)
        request_hash = fingerprint(["reverse", entry_id, description, meta])
        replay = self.engine.check_key(key, request_hash)
        if replay is not None:
            return replay
        self._lock_entry(entry_id)
        try:
            original = self.get_entry(entry_id)
            if any(p.pending for p in original.postings) or not original.postings:
                raise EntryNotReversible(f"entry {entry_id} has no posted-only postings to reverse; "
                                         "void its hold instead", entry_id=entry_id)
            already = self.session.execute(text("SELECT id FROM ledger_entries WHERE reverses_entry_id = :id"),
                                           {"id": entry_id}).scalar()
            if already is not None:
                raise AlreadyReversed(f"entry {entry_id} was already reversed by entry {already}",
                                      entry_id=entry_id, reversal_id=int(already))
            legs = [Leg(p.account_id, Side.CREDIT if p.side is Side.DEBIT else Side.DEBIT, p.amount, p.currency)
                    for p in original.postings]
            entry = EntryRow(key, request_hash, EntryKind.REVERSAL.value, self.clock(),
                             description or f"reversal of entry {entry_id}", meta, entry_id, None)
            return self._apply_one(Write(entry, legs))
        except LedgerError as error:
            remember_refusal(self.session, error, key, request_hash, self.clock())
            raise

    # -- holds --------------------------------------------------------------------

    def create_hold(self, idempotency_key: str, *, debit: AccountRef, credit: AccountRef, amount: int,
                    currency: str, expires_at: dt.datetime | None = None, kind: str = EntryKind.HOLD.value,
                    description: str = "", metadata: Mapping[str, Any] | None = None) -> HoldResult:
        """Reserve ``amount``: debit account's pending debits and credit account's
        pending credits grow by it, and limits count it. ``expires_at`` (optional) is
        when the hold stops being postable."""
        key = check_key(idempotency_key)
        check_account_ref(debit, "debit")
        check_account_ref(credit, "credit")
        check_minor(amount)
        check_currency(currency)
        expiry = check_time(expires_at, "expires_at")
        meta = check_metadata(metadata)
        if kind != EntryKind.HOLD.value and kind in {k.value for k in EntryKind}:
            raise InvalidEntry(f"kind {kind!r} is reserved", field="kind")
        request_hash = fingerprint(["hold", debit, credit, amount, currency, expiry, kind, description, meta])
        replay = self.engine.check_key(key, request_hash)
        if replay is not None:
            return self._hold_result(replay)
        created: list[HoldView] = []

        def after(entry_id: int, recorded_at: dt.datetime, postings: Sequence[PostingView]) -> None:
            debit_id = next(p.account_id for p in postings if p.side is Side.DEBIT)
            credit_id = next(p.account_id for p in postings if p.side is Side.CREDIT)
            created.append(_holds.insert_hold(self.store, entry_id=entry_id, debit_account_id=debit_id,
                                              credit_account_id=credit_id, amount=amount, currency=currency,
                                              expires_at=expiry, created_at=recorded_at))

        entry = EntryRow(key, request_hash, kind, self.clock(), description, meta, None, None)
        write = Write(entry, [Leg(debit, Side.DEBIT, amount, currency, pending=True),
                              Leg(credit, Side.CREDIT, amount, currency, pending=True)], [], after)
        result = self._apply_one(write)
        # The hold as inserted: no read back while the accounts stay locked.
        return HoldResult(created[0], result)

    def post_hold(self, idempotency_key: str, hold_id: int, amount: int | None = None, *,
                  keep_remainder: bool = False, description: str = "",
                  metadata: Mapping[str, Any] | None = None) -> HoldResult:
        """Post ``amount`` (default: all) of a pending hold and release the rest, or
        with ``keep_remainder`` keep the rest on hold in a continuation hold."""
        key = check_key(idempotency_key)
        if amount is not None:
            check_minor(amount)
        meta = check_metadata(metadata)
        request_hash = fingerprint(["post_hold", hold_id, amount, keep_remainder, description, meta])
        replay = self.engine.check_key(key, request_hash)
        if replay is not None:
            return self._hold_result(replay)
        hold = _holds.load_hold(self.store, hold_id, lock=True)
        try:
            hold = _holds.check_postable(hold, hold_id, amount if amount is not None else 0, self.clock())
            posted = hold.amount if amount is None else amount
            entry = EntryRow(key, request_hash, EntryKind.HOLD_POST.value, self.clock(), description, meta, None,
                             hold.id)
            continuation: list[HoldView] = []
            resolved: list[HoldView] = []
            result = self._apply_one(_holds.post_write(self.store, hold, entry, amount=posted,
                                                       keep_remainder=keep_remainder, continuation=continuation,
                                                       resolved=resolved))
        except LedgerError as error:
            remember_refusal(self.session, error, key, request_hash, self.clock())
            raise
        return self._written(result, resolved, continuation)

    def void_hold(self, idempotency_key: str, hold_id: int, *, description: str = "",
                  metadata: Mapping[str, Any] | None = None) -> HoldResult:
        """Release a pending hold without posting anything."""
        key = check_key(idempotency_key)
        meta = check_metadata(metadata)
        request_hash = fingerprint(["void_hold", hold_id, description, meta])
        replay = self.engine.check_key(key, request_hash)
        if replay is not None:
            return self._hold_result(replay)
        hold = _holds.load_hold(self.store, hold_id, lock=True)
        try:
            hold = _holds.check_postable(hold, hold_id, None, self.clock())
            entry = EntryRow(key, request_hash, EntryKind.HOLD_VOID.value, self.clock(), description, meta, None,
                             hold.id)
            resolved: list[HoldView] = []
            result = self._apply_one(_holds.release_write(self.store, hold, entry, HoldStatus.VOIDED, resolved))
        except LedgerError as error:
            remember_refusal(self.session, error, key, request_hash, self.clock())
            raise
        return self._written(result, resolved, [])

    def expire_holds(self, *, limit: int = 500) -> list[int]:
        """Expire up to ``limit`` pending holds whose ``expires_at`` has passed, in one
        batch. Returns their ids. Safe to run in several workers at once."""
        now = self.clock()
        due = _holds.expired_pending(self.store, now, limit)
        writes = []
        for hold in due:
            key = _holds.expiry_key(hold.id)
            entry = EntryRow(key, fingerprint(["expire", hold.id]), EntryKind.HOLD_EXPIRE.value, now,
                             f"hold {hold.id} expired", {}, None, hold.id)
            writes.append(_holds.release_write(self.store, hold, entry, HoldStatus.EXPIRED))
        self.engine.apply(writes)
        return [hold.id for hold in due]

    def get_hold(self, hold_id: int) -> HoldView:
        hold = _holds.load_hold(self.store, hold_id)
        if hold is None:
            raise HoldNotFound(f"hold {hold_id} does not exist", hold_id=hold_id)
        return hold

    # -- reads --------------------------------------------------------------------

    def balance(self, account: AccountRef, *, as_of: dt.datetime | None = None) -> Balance:
        return _queries.balance(self.store, check_account_ref(account, "account"), as_of)

    def account_lines(self, account: AccountRef, *, cursor: str | None = None,
                      limit: int = 50) -> Page[AccountLine]:
        return _queries.account_lines(self.store, check_account_ref(account, "account"), cursor=cursor,
                                      limit=limit)

    # -- internals ----------------------------------------------------------------

    def _apply_one(self, write: Write, locked: Sequence[AccountRow] | None = None) -> EntryResult:
        try:
            return self.engine.apply([write], locked)[0]
        except LedgerError as error:
            remember_refusal(self.session, error, write.entry.idempotency_key, write.entry.request_hash,
                             self.clock())
            raise

    def _lock_entry(self, entry_id: int) -> None:
        if self.store.dialect == "postgresql":
            self.session.execute(text("SELECT id FROM ledger_entries WHERE id = :id FOR UPDATE"), {"id": entry_id})

    def _written(self, entry: EntryResult, resolved: list[HoldView], continuation: list[HoldView]) -> HoldResult:
        """The result of a hold post or void just written, from the rows its statements
        returned (the same as :meth:`_hold_result` would read back)."""
        if not resolved:
            return self._hold_result(entry)
        return HoldResult(resolved[0], entry, continuation[0] if continuation else None)

    def _hold_result(self, entry: EntryResult) -> HoldResult:
        if entry.kind in (EntryKind.HOLD_POST.value, EntryKind.HOLD_VOID.value, EntryKind.HOLD_EXPIRE.value):
            assert entry.hold_id is not None
            hold = _holds.load_hold(self.store, entry.hold_id)
            continuation = _holds.load_hold_by_entry(self.store, entry.id)
        else:
            hold = _holds.load_hold_by_entry(self.store, entry.id)
            continuation = None
        assert hold is not None
        return HoldResult(hold, entry, continuation)


def post_alone(factory: SessionFactory, spec: EntrySpec, *,
               clock: Callable[[], dt.datetime] = utcnow) -> EntryResult:
    """Post one entry as a transaction of its own, with :meth:`Ledger.post`'s
    semantics (replays, conflicts, recorded refusals).

    On PostgreSQL a fresh, acceptable entry is one statement in autocommit mode: one
    round trip, where a unit of work around :meth:`Ledger.post` takes two (the
    statement with its BEGIN, then COMMIT). Anything else (a key seen before, an
    entry to refuse) writes nothing there and goes through the general path of
    :meth:`Ledger.post` in a unit of work, which replays or refuses it as always.
    SQLite always takes that path."""
    write = prepare_entry(spec, clock())
    engine = factory.kw["bind"]
    tried = engine.dialect.name == "postgresql" and is_plain(write)
    if tried:
        # The pooled psycopg connection itself: a SQLAlchemy Connection with an
        # AUTOCOMMIT execution option costs about as much client CPU as the call.
        pooled = engine.raw_connection()
        try:
            raw = pooled.driver_connection
            raw.autocommit = True
            posted = post_entry_alone(raw, write.entry, plain_legs(write))
            raw.autocommit = False
        except BaseException:
            pooled.invalidate()  # in an unknown state: not back into the pool
            raise
        finally:
            pooled.close()
        if posted is not None:
            return posted_result(write, posted, lambda value: db_time(value, engine.dialect))
    # A replay or a refusal (the one statement wrote nothing), or SQLite.
    with unit_of_work(factory) as session:
        return Ledger(session, clock=clock)._post(write, one_statement=not tried)


def post_batches(factory: SessionFactory, batches: Iterable[Sequence[EntrySpec]], *,
                 clock: Callable[[], dt.datetime] = utcnow) -> Iterator[list[EntryResult]]:
    """Post ``batches`` one after the other, each atomically in a transaction of its
    own, with :meth:`Ledger.post_batch`'s semantics; yields each batch's results in
    order. A refused batch raises its error and the batches after it are not posted.

    On PostgreSQL a batch of fresh entries is one statement in autocommit mode
    (``ledger_post_batch``, migration 0011), and while the database writes one batch
    this process validates and encodes the next: the client's work and the
    database's overlap instead of taking turns. A batch the statement does not write
    (a key seen before, an entry to refuse) goes through :meth:`Ledger.post_batch`'s
    general path in a unit of work before the next one is sent. A caller that stops
    iterating early may find the batch that was already sent written: sending it
    again replays it. SQLite posts each batch in a unit of work."""
    if factory.kw["bind"].dialect.name != "postgresql":
        for specs in batches:
            with unit_of_work(factory) as session:
                done = Ledger(session, clock=clock).post_batch(specs)
            yield done  # committed
        return
    with _BatchPipeline(factory, clock) as pipeline:
        for specs in batches:
            yield from pipeline.push(specs)
        yield from pipeline.drain()


class _BatchPipeline:
    """:func:`post_batches` on PostgreSQL: one pooled connection in autocommit mode,
    and one thread that waits for the database while this one prepares the next
    batch. At most one batch is in flight."""

    def __init__(self, factory: SessionFactory, clock: Callable[[], dt.datetime]) -> None:
        self.factory = factory
        self.clock = clock
        self.engine = factory.kw["bind"]
        self.pooled = self.engine.raw_connection()
        self.raw = self.pooled.driver_connection
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-batches")
        self.in_flight: tuple[list[Write], Future[list[Posted] | None]] | None = None
        self.broken = False  # a statement failed: the connection's state is unknown

    def __enter__(self) -> _BatchPipeline:
        self.raw.autocommit = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.in_flight is not None:  # left early: the batch sent is decided first
            failed = self.in_flight[1].exception()  # waits for it
            self.broken = self.broken or failed is not None
        self.pool.shutdown(wait=True)
        if self.broken:
            self.pooled.invalidate()  # not back into the pool in an unknown state
        else:
            self.raw.autocommit = False
        self.pooled.close()

    def push(self, specs: Sequence[EntrySpec]) -> Iterator[list[EntryResult]]:
        """Send ``specs`` once the batch in flight is decided; yields that batch's
        results (and ``[]`` for an empty batch)."""
        try:
            writes = prepare_batch(specs, self.clock())
            entries, legs = [w.entry for w in writes], [plain_legs(w) for w in writes]
            params = post_batch_params(entries, legs)
        except BaseException:
            if self.in_flight is not None:  # the batch before is decided first
                self._wait()
            raise
        results = self._wait() if self.in_flight is not None else None
        if writes:
            # Sent as soon as the batch before is decided, before its results are
            # built and handed out.
            self.in_flight = (writes, _send(self.pool, self.raw, params, entries, legs))
        if results is not None:
            yield results()
        if not writes:
            yield []

    def drain(self) -> Iterator[list[EntryResult]]:
        if self.in_flight is not None:
            yield self._wait()()

    def _wait(self) -> Callable[[], list[EntryResult]]:
        """Wait for the batch in flight to be decided (the general path if the
        statement wrote nothing); returns what builds its results."""
        assert self.in_flight is not None
        writes, future = self.in_flight
        self.in_flight = None
        try:
            posted = future.result()
        except BaseException:
            self.broken = True
            raise
        if posted is None:  # nothing written: replays or a refusal
            with unit_of_work(self.factory) as session:
                done = Ledger(session, clock=self.clock)._post_prepared(writes)
            return lambda: done

        def time(value: Any) -> dt.datetime:
            return db_time(value, self.engine.dialect)

        return lambda: [posted_result(w, p, time) for w, p in zip(writes, posted, strict=True)]


def _send(pool: ThreadPoolExecutor, raw: Any, params: dict[str, str], entries: list[EntryRow],
          legs: list[list[tuple[AccountRef, Side, int, str]]]) -> Future[list[Posted] | None]:
    """Run ``post_batch_alone`` on the pool's thread, returning once that thread has
    started: it then holds the GIL until it waits for the database, so the statement
    leaves at once instead of after this thread's next switch interval."""
    started = threading.Event()

    def run() -> list[Posted] | None:
        started.set()
        return post_batch_alone(raw, params, entries, legs)

    future = pool.submit(run)
    started.wait()
    return future


def prepare_batch(specs: Sequence[EntrySpec], now: dt.datetime) -> list[Write]:
    """Validate a batch: every entry, and no key twice."""
    writes = [prepare_entry(spec, now, index) for index, spec in enumerate(specs)]
    keys = {w.entry.idempotency_key for w in writes}
    if len(keys) != len(writes):
        raise InvalidEntry("a batch uses the same idempotency key twice", field="idempotency_key")
    return writes


def _attributes(account: AccountView) -> tuple[Any, ...]:
    return (account.currency, account.type, account.debits_must_not_exceed_credits,
            account.credits_must_not_exceed_debits, account.credit_limit, dict(account.metadata))


def _entry_exists(session: Session, entry_id: int) -> bool:
    return session.execute(text("SELECT 1 FROM ledger_entries WHERE id = :id"), {"id": entry_id}).first() is not None


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
