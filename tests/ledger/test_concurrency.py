"""Concurrency on PostgreSQL: 8 threads x 2,000 random transfers among 20 accounts,
each transfer sent twice with the same key, by two threads racing each other: one
through ``Ledger.post`` in a unit of work, the other through ``post_alone`` (the
one-statement write in autocommit)."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import text

from settlement.db import unit_of_work
from settlement.errors import SettlementError
from settlement.ledger import (
    AccountSpec,
    AccountType,
    EntryResult,
    EntrySpec,
    Ledger,
    credit,
    debit,
    post_alone,
    post_batches,
)
from tests.conftest import Database
from tests.ledger.factories import open_accounts
from tests.ledger.invariants import ledger_violations

THREADS = 8
PER_THREAD = 2_000


@dataclass(frozen=True)
class Transfer:
    key: str
    source: str
    target: str
    amount: int
    currency: str

    def spec(self) -> EntrySpec:
        return EntrySpec(self.key, [debit(self.source, self.amount, self.currency),
                                    credit(self.target, self.amount, self.currency)])


def _accounts() -> list[AccountSpec]:
    specs = []
    for currency in ("RUB", "CNY"):
        for i in range(10):
            no_overdraft = i % 2 == 0
            specs.append(AccountSpec(f"{currency}:{i}", currency,
                                     AccountType.LIABILITY if no_overdraft else AccountType.ASSET,
                                     debits_must_not_exceed_credits=no_overdraft))
    return specs


def test_concurrent_duplicated_transfers_apply_exactly_once(pg_database: Database) -> None:
    specs = _accounts()
    open_accounts(pg_database.factory, specs)
    by_currency: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        by_currency[spec.currency].append(spec.code)
    rng = random.Random(20261121)
    # Seed the no-overdraft accounts so some transfers from them pass and some fail.
    with unit_of_work(pg_database.factory) as session:
        ledger = Ledger(session)
        for currency, codes in by_currency.items():
            for code in codes[::2]:
                ledger.post(EntrySpec(f"seed:{code}", [debit(codes[1], 50_000, currency),
                                                       credit(code, 50_000, currency)]))
    lists: list[list[Transfer]] = []
    for t in range(THREADS):
        batch = []
        for n in range(PER_THREAD):
            currency = rng.choice(("RUB", "CNY"))
            source, target = rng.sample(by_currency[currency], 2)
            batch.append(Transfer(f"t{t}:{n}", source, target, rng.randint(1, 20_000), currency))
        lists.append(batch)

    outcomes: dict[str, list[object]] = defaultdict(list)
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def send(transfer: Transfer, alone: bool) -> None:
        try:
            result: object
            if alone:
                result = post_alone(pg_database.factory, transfer.spec())
            else:
                with unit_of_work(pg_database.factory) as session:
                    result = Ledger(session).post(transfer.spec())
        except SettlementError as error:
            result = error.code
        except BaseException as error:  # noqa: BLE001 - anything else (a deadlock...) fails the test below
            with lock:
                unexpected.append(error)
            return
        with lock:
            outcomes[transfer.key].append(result)

    def worker(index: int) -> None:
        partner = lists[index ^ 1]  # threads 0/1, 2/3... send each other's transfers too
        start.wait()
        alone = index % 2 == 1
        for mine, theirs in zip(lists[index], partner, strict=True):
            send(mine, alone)
            send(theirs, alone)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert unexpected == [], f"{len(unexpected)} unexpected errors, first: {unexpected[:1]!r}"
    applied: list[Transfer] = []
    refusals: Counter[str] = Counter()
    for transfer in (t for batch in lists for t in batch):
        first, second = outcomes[transfer.key]
        if isinstance(first, EntryResult) or isinstance(second, EntryResult):
            assert first == second, f"{transfer.key}: the two sends disagree: {first!r} / {second!r}"
            applied.append(transfer)
        else:
            assert first == second == "insufficient_funds", (transfer.key, first, second)
            refusals[str(first)] += 1
    assert applied, "the workload should apply transfers"
    assert refusals, "the workload should refuse some transfers"

    expected: dict[str, int] = defaultdict(int)
    for transfer in applied:
        expected[transfer.source] -= transfer.amount
        expected[transfer.target] += transfer.amount
    with pg_database.factory() as session:
        assert ledger_violations(session) == []
        stored = session.execute(text("SELECT count(*) FROM ledger_entries WHERE idempotency_key LIKE 't%:%'")
                                 ).scalar_one()
        assert stored == len(applied)
        ledger = Ledger(session)
        for spec in specs:
            balance = ledger.balance(spec.code)
            seeded = balance.debits_posted - balance.credits_posted
            movement = _seed_movement(spec.code, by_currency)
            assert seeded - movement == -expected[spec.code], spec.code
        totals = session.execute(text(
            "SELECT currency, SUM(debits_posted - credits_posted) FROM ledger_accounts GROUP BY currency")).all()
        assert all(total == 0 for _, total in totals)


def _seed_movement(code: str, by_currency: dict[str, list[str]]) -> int:
    """debits - credits the seeding put on ``code``."""
    for codes in by_currency.values():
        if code in codes:
            funded = codes[::2]
            if code == codes[1]:
                return 50_000 * len(funded)
            if code in funded:
                return -50_000
    return 0


def test_concurrent_duplicated_batches_apply_exactly_once(pg_database: Database) -> None:
    """4 threads post 40 batches of 50 transfers among 20 accounts, each batch sent by
    two threads racing each other, one streaming through ``post_batches`` (the batch
    statement in autocommit), the other through ``Ledger.post_batch`` in a unit of
    work: every batch applied once, both sends answered alike, no deadlock."""
    specs = [AccountSpec(f"b:{currency}:{i}", currency, AccountType.ASSET)
             for currency in ("RUB", "CNY") for i in range(10)]
    open_accounts(pg_database.factory, specs)
    rng = random.Random(20261122)
    batches: list[list[Transfer]] = []
    for b in range(40):
        batch = []
        for n in range(50):
            currency = rng.choice(("RUB", "CNY"))
            source, target = rng.sample([s.code for s in specs if s.currency == currency], 2)
            batch.append(Transfer(f"batch{b}:{n}", source, target, rng.randint(1, 20_000), currency))
        batches.append(batch)
    outcomes: dict[int, list[list[int]]] = defaultdict(list)
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def worker(index: int) -> None:
        # Threads 0 and 1 share batches 0-19, threads 2 and 3 batches 20-39, in
        # opposite orders within each pair.
        mine = list(range(20 * (index // 2), 20 * (index // 2) + 20))
        if index % 2:
            mine.reverse()
        start.wait()
        try:
            if index % 2 == 0:
                stream = post_batches(pg_database.factory, ([t.spec() for t in batches[b]] for b in mine))
                results = list(stream)
            else:
                results = []
                for b in mine:
                    with unit_of_work(pg_database.factory) as session:
                        results.append(Ledger(session).post_batch([t.spec() for t in batches[b]]))
        except BaseException as error:  # noqa: BLE001 - a deadlock or anything else fails the test below
            with lock:
                unexpected.append(error)
            return
        with lock:
            for b, posted in zip(mine, results, strict=True):
                outcomes[b].append([r.id for r in posted])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert unexpected == [], f"{len(unexpected)} unexpected errors, first: {unexpected[:1]!r}"
    for b in range(40):
        first, second = outcomes[b]
        assert first == second, f"batch {b}: the two sends disagree"
    expected: dict[str, int] = defaultdict(int)
    for transfer in (t for batch in batches for t in batch):
        expected[transfer.source] += transfer.amount
        expected[transfer.target] -= transfer.amount
    with pg_database.factory() as session:
        assert ledger_violations(session) == []
        assert session.execute(text("SELECT count(*) FROM ledger_entries WHERE idempotency_key LIKE 'batch%'")
                               ).scalar_one() == 40 * 50
        ledger = Ledger(session)
        for spec in specs:
            balance = ledger.balance(spec.code)
            assert balance.debits_posted - balance.credits_posted == expected[spec.code], spec.code
