"""Outcomes of concurrent requests recorded in one transaction (PostgreSQL): every
sale booked once, a group all or nothing, a failed group's outcomes recorded again
one by one, and the lead handed on when more wait than a group takes."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from adapters.base import RailResult
from settlement.config import Settings
from settlement.db import make_engine, make_session_factory, unit_of_work
from settlement.ledger.errors import IdempotencyConflict
from settlement.payments.models import AttemptState, Payment, PaymentState
from settlement.payments.service import apply, groups
from settlement.payments.service.flows import Context
from tests.conftest import Database
from tests.payments.fixtures import make_merchant
from tests.payments.test_stored_rows import _attempt_id, _entries, _Rails, _sale, _sound

SELLER_SHARE = 123456 - 6172   # 1234.56 RUB less 5 % (61.728, rounded down)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The first group's write waits for this event: whatever arrives meanwhile waits
    for the next group."""
    release, first = threading.Event(), threading.Event()
    write = groups.Grouper._write

    def held_first(self: groups.Grouper, group: list[groups.Member]) -> None:
        if not first.is_set():
            first.set()
            release.wait(30)
        write(self, group)

    monkeypatch.setattr(groups.Grouper, "_write", held_first)
    yield release
    release.set()


def _fresh(ctx: Context, size: int) -> groups.Grouper:
    """A new grouper for the test's database (its counters at zero)."""
    grouper = groups._groupers[ctx.factory] = groups.Grouper(ctx.factory, size)
    return grouper


def _sales(ctx: Context, seller: int, count: int, held: threading.Event | None = None,
           grouper: groups.Grouper | None = None) -> list[Payment | BaseException]:
    """``count`` sales at once; with ``held``, released once all but the first wait."""
    results: list[Payment | BaseException] = [RuntimeError("not run")] * count

    def sale(n: int) -> None:
        try:
            results[n] = _sale(ctx, seller)
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            results[n] = exc

    threads = [threading.Thread(target=sale, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    if held is not None:
        assert grouper is not None
        deadline = time.monotonic() + 30
        while len(grouper._waiting) < count - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(grouper._waiting) == count - 1
        held.set()
    for thread in threads:
        thread.join(60)
    return results


def _captured(db: Database, results: list[Payment | BaseException]) -> None:
    """Every sale answered captured, booked once, and the ledger sound."""
    for result in results:
        assert isinstance(result, Payment), result
        assert result.state == PaymentState.CAPTURED.value
        assert result.seller_captured == SELLER_SHARE
        assert _entries(db, result.id) == 2
    with db.factory() as session:
        states = session.execute(text("SELECT DISTINCT state FROM payments")).scalars().all()
    assert states == [PaymentState.CAPTURED.value]
    _sound(db)


def _payable(db: Database, seller: int) -> int:
    with db.factory() as session:
        return int(session.execute(text("SELECT credits_posted - debits_posted FROM ledger_accounts "
                                         "WHERE code = :c"), {"c": f"merchant:{seller}:payable:RUB"}).scalar_one())


@pytest.mark.parametrize(("size", "groups_written", "largest"), [
    (8, 2, 6),   # the first sale alone, the six that waited for it in one transaction
    (2, 4, 2),   # the first alone, then three pairs, each led by the first of its pair
])
def test_waiting_outcomes_share_transactions(ctx: Context, pg_database: Database, held: threading.Event,
                                             size: int, groups_written: int, largest: int) -> None:
    grouper = _fresh(ctx, size)
    seller = make_merchant(pg_database.factory)
    results = _sales(dataclasses.replace(ctx, group=size), seller, 7, held, grouper)
    _captured(pg_database, results)
    assert (grouper.committed, grouper.largest, grouper.failed) == (groups_written, largest, 0)
    assert _payable(pg_database, seller) == 7 * SELLER_SHARE


def test_a_failing_outcome_rolls_its_group_back_and_each_is_recorded_alone(
        ctx: Context, pg_database: Database, held: threading.Event, monkeypatch: pytest.MonkeyPatch) -> None:
    grouped = dataclasses.replace(ctx, group=8)
    grouper = _fresh(ctx, 8)
    seller = make_merchant(pg_database.factory)
    apply_outcome = apply.apply_outcome
    calls: list[int] = []

    def fails_once(session: Any, attempt_id: int, *args: Any, **kwargs: Any) -> Any:
        calls.append(attempt_id)
        # The fourth outcome recorded: the third of the waiting group, after two others
        # of that group were written in its transaction.
        if len(calls) == 4:
            raise RuntimeError("an outcome that fails once")
        return apply_outcome(session, attempt_id, *args, **kwargs)

    monkeypatch.setattr(apply, "apply_outcome", fails_once)
    results = _sales(grouped, seller, 7, held, grouper)
    # Nothing of the failed group was kept: each of its six was recorded again, alone,
    # and booked once.
    _captured(pg_database, results)
    assert (grouper.committed, grouper.failed) == (1, 1)
    assert len(calls) == 1 + 3 + 6
    assert _payable(pg_database, seller) == 7 * SELLER_SHARE


def test_a_batch_sent_to_the_general_path_fails_the_group(ctx: Context, pg_database: Database,
                                                          held: threading.Event) -> None:
    from settlement.ledger import EntrySpec, Ledger, credit, debit
    from settlement.payments import accounts
    from settlement.payments.booking import ledger_key

    grouper = _fresh(ctx, 8)
    seller = make_merchant(pg_database.factory)
    answered: list[str] = []
    taken: list[str] = []
    lock = threading.Lock()

    def split_key_taken_once(reference: str, _result: RailResult) -> None:
        # The split key of the last sale to be answered is already taken: the batch of
        # its group, sent with the COMMIT, is declined.
        with lock:
            answered.append(reference)
            if len(answered) < 7:
                return
            taken.append(reference)
        attempt_id = _attempt_id(pg_database, reference)
        with unit_of_work(pg_database.factory) as session:
            receivable, commission = accounts.receivable("mir", "RUB"), accounts.commission("RUB")
            Ledger(session).post(EntrySpec(ledger_key(attempt_id, "split"), [debit(receivable, 1, "RUB"),
                                                                             credit(commission, 1, "RUB")]))

    meddling = dataclasses.replace(ctx, group=8, rails=_Rails(ctx.rails, split_key_taken_once))
    results = _sales(meddling, seller, 7, held, grouper)  # type: ignore[arg-type]
    refused = [r for r in results if not isinstance(r, Payment)]
    assert len(taken) == 1
    assert len(refused) == 1
    assert isinstance(refused[0], IdempotencyConflict)
    booked = [r for r in results if isinstance(r, Payment)]
    assert all(p.state == PaymentState.CAPTURED.value and _entries(pg_database, p.id) == 2 for p in booked)
    assert grouper.failed == 1
    with pg_database.factory() as session:
        states = session.execute(text("SELECT p.state, a.state FROM payments p JOIN payment_attempts a "
                                      "ON a.payment_id = p.id WHERE a.reference = :r"), {"r": taken[0]}).one()
    # The refused sale recorded nothing: the janitor will ask the rail again.
    assert tuple(states) == (PaymentState.AUTHORIZING.value, AttemptState.PENDING.value)
    assert _payable(pg_database, seller) == 6 * SELLER_SHARE
    _sound(pg_database)


def test_groups_only_on_postgresql_and_above_one(ctx: Context, tmp_path: Any) -> None:
    assert dataclasses.replace(ctx, group=8).grouped()
    assert not dataclasses.replace(ctx, group=1).grouped()
    sqlite = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'groups.db'}"))
    assert not dataclasses.replace(ctx, factory=sqlite, group=8).grouped()
    settings = Settings(outcome_group_size=5)
    assert Context.from_settings(ctx.factory, ctx.rails, settings).group == 5
    assert Settings().outcome_group_size == 16
    with pytest.raises(ValueError, match="outcome_group_size"):
        Settings(outcome_group_size=0)


def test_a_lone_sale_is_the_same_grouped_or_not(ctx: Context, pg_database: Database) -> None:
    seller = make_merchant(pg_database.factory)
    alone: Callable[[Context], Payment] = lambda c: _sale(c, seller)  # noqa: E731 - one line
    first, second = alone(dataclasses.replace(ctx, group=1)), alone(dataclasses.replace(ctx, group=8))
    columns = ("state", "amount_captured", "commission_captured", "seller_captured", "in_flight_attempt_id")
    assert [getattr(first, c) for c in columns] == [getattr(second, c) for c in columns]
    assert _entries(pg_database, first.id) == _entries(pg_database, second.id) == 2
    _sound(pg_database)
