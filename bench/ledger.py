"""Ledger throughput on PostgreSQL.

    python bench/ledger.py                      # a fresh database on the local server
    SETTLEMENT_DATABASE_URL=postgresql+psycopg://user@host/db python bench/ledger.py --reuse

Workloads (each verified afterwards: debits = credits per currency, every account's
counters equal the sum of its postings, every transfer applied exactly once):

* W1: 20,000 single transfers among 1,000 accounts, random pairs, with 1 client and
  with 8 concurrent clients (separate processes, one connection each);
* W2: 100,000 transfers posted in batches of 1,000 (the batch fast path), by one
  client, twice on 1,000 fresh accounts each: streamed through ``post_batches``
  (each batch one ``ledger_post_batch`` statement in autocommit, the next batch
  validated and encoded while the database writes the one before), and batch by
  batch through ``Ledger.post_batch`` in a unit of work each;
* W3: like W1 with 8 clients, on only 10 accounts (heavy row-lock contention).

Each transfer is its own transaction through ``post_alone`` (W1, W3: one statement
in autocommit on PostgreSQL, falling back to ``Ledger.post`` in a unit of work for
replays and refusals), or an entry of a batch (W2), with its own idempotency key.

Before W2 the bench moves the objects it made while setting up (its plan of
transfers, the imported modules) out of the garbage collector's way with
``gc.freeze()``, as a long-running service does once it has started: otherwise
every full collection walks them again, and W2's client allocates enough to run
one every few batches.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from settlement.db import make_engine, make_session_factory, unit_of_work
from settlement.db.migrate import upgrade
from settlement.ledger import (
    AccountSpec,
    AccountType,
    EntrySpec,
    Ledger,
    credit,
    debit,
    post_alone,
    post_batches,
)

CURRENCY = "RUB"


def _fresh_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"


def _open_accounts(url: str, prefix: str, count: int) -> list[str]:
    factory = make_session_factory(make_engine(url))
    codes = [f"{prefix}:{i}" for i in range(count)]
    with unit_of_work(factory) as session:
        ledger = Ledger(session)
        for code in codes:
            ledger.create_account(AccountSpec(code, CURRENCY, AccountType.ASSET))
    return codes


def _plan(prefix: str, codes: Sequence[str], count: int, seed: int) -> list[tuple[str, str, str, int]]:
    rng = random.Random(seed)
    plan = []
    for n in range(count):
        source, target = rng.sample(codes, 2)
        plan.append((f"{prefix}:{n}", source, target, rng.randint(1, 100_000)))
    return plan


def _client(url: str, transfers: list[tuple[str, str, str, int]], start: object, results: object) -> None:
    engine = make_engine(url, pool_size=1)
    factory = make_session_factory(engine)
    failures = 0
    start.wait()  # type: ignore[attr-defined]
    for key, source, target, amount in transfers:
        try:
            post_alone(factory, EntrySpec(key, [debit(source, amount, CURRENCY), credit(target, amount, CURRENCY)]))
        except Exception:  # noqa: BLE001 - counted and reported; the verification step fails the run
            failures += 1
    results.put(failures)  # type: ignore[attr-defined]
    engine.dispose()


def run_clients(url: str, plan: list[tuple[str, str, str, int]], clients: int) -> tuple[float, int]:
    """Run ``plan`` split across ``clients`` processes; returns (seconds, failures)."""
    context = mp.get_context("fork")
    start = context.Barrier(clients + 1)
    results = context.Queue()
    parts = [plan[i::clients] for i in range(clients)]
    workers = [context.Process(target=_client, args=(url, part, start, results)) for part in parts]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    failures = sum(results.get() for _ in workers)
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    return elapsed, failures


def _specs(plan: list[tuple[str, str, str, int]], size: int) -> Iterator[list[EntrySpec]]:
    for i in range(0, len(plan), size):
        yield [EntrySpec(key, [debit(source, amount, CURRENCY), credit(target, amount, CURRENCY)])
               for key, source, target, amount in plan[i:i + size]]


def run_batches(url: str, plan: list[tuple[str, str, str, int]], size: int, *, streamed: bool) -> tuple[float, int]:
    """``post_batches`` (streamed) or ``Ledger.post_batch`` in a unit of work per batch."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    began = time.perf_counter()
    if streamed:
        posted = sum(len(results) for results in post_batches(factory, _specs(plan, size)))
    else:
        posted = 0
        for specs in _specs(plan, size):
            with unit_of_work(factory) as session:
                posted += len(Ledger(session).post_batch(specs))
    elapsed = time.perf_counter() - began
    engine.dispose()
    return elapsed, len(plan) - posted


def verify(url: str, prefix: str, plan: list[tuple[str, str, str, int]]) -> None:
    """Every transfer of ``plan`` applied exactly once, totals balanced, counters right."""
    engine = make_engine(url)
    expected: dict[str, int] = {}
    for _, source, target, amount in plan:
        expected[source] = expected.get(source, 0) + amount
        expected[target] = expected.get(target, 0) - amount
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM ledger_entries WHERE idempotency_key LIKE :p"),
                              {"p": f"{prefix}:%"}).scalar_one()
        assert stored == len(plan), f"{stored} entries stored for {len(plan)} transfers"
        debits, credits = conn.execute(text(
            "SELECT sum(debits_posted), sum(credits_posted) FROM ledger_accounts WHERE currency = :c"),
            {"c": CURRENCY}).one()
        assert debits == credits, f"debits {debits} != credits {credits}"
        bad = conn.execute(text(
            "SELECT count(*) FROM ledger_accounts a WHERE a.debits_posted <> COALESCE((SELECT sum(amount) "
            "FROM ledger_postings p WHERE p.account_id = a.id AND p.side = 'D'), 0) OR a.credits_posted <> "
            "COALESCE((SELECT sum(amount) FROM ledger_postings p WHERE p.account_id = a.id AND p.side = 'C'), 0)"
        )).scalar_one()
        assert bad == 0, f"{bad} accounts whose counters differ from their postings"
        rows = conn.execute(text("SELECT code, debits_posted - credits_posted FROM ledger_accounts "
                                 "WHERE code LIKE :p"), {"p": f"{prefix}:%"}).all()
        for code, net in rows:
            assert net == expected.get(code, 0), f"{code}: {net} != {expected.get(code, 0)}"
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse", action="store_true", help="use SETTLEMENT_DATABASE_URL as it is")
    parser.add_argument("--w1", type=int, default=20_000)
    parser.add_argument("--w2", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-gc-freeze", action="store_true", help="leave the garbage collector as it is")
    args = parser.parse_args()
    if args.reuse:
        url = os.environ["SETTLEMENT_DATABASE_URL"]
    else:
        admin = os.environ.get("SETTLEMENT_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        url = _fresh_database(admin, "settlement_bench")
    upgrade(url)
    print(f"ledger benchmark on {url.split('@')[-1]}, {os.cpu_count()} CPUs")
    results: list[tuple[str, int, float]] = []

    def report(name: str, count: int, elapsed: float, failures: int) -> None:
        rate = count / elapsed
        results.append((name, count, rate))
        print(f"{name:<40} {count:>7} transfers {elapsed:7.2f} s {rate:9.0f} transfers/s  failures={failures}",
              flush=True)

    codes = _open_accounts(url, "w1", 1_000)
    plan = _plan("w1a", codes, args.w1, 1)
    elapsed, failures = run_clients(url, plan, 1)
    verify(url, "w1a", plan)
    report("W1 1,000 accounts, 1 client", len(plan), elapsed, failures)

    plan = _plan("w1b", codes, args.w1, 2)
    elapsed, failures = run_clients(url, plan, args.clients)
    verify(url, "w1b", plan)
    report(f"W1 1,000 accounts, {args.clients} clients", len(plan), elapsed, failures)

    for prefix, seed, streamed, how in (("w2", 3, True, "post_batches"), ("w2b", 5, False, "a unit of work each")):
        codes2 = _open_accounts(url, prefix, 1_000)
        plan = _plan(prefix, codes2, args.w2, seed)
        if not args.no_gc_freeze:
            gc.freeze()
        elapsed, failures = run_batches(url, plan, 1_000, streamed=streamed)
        verify(url, prefix, plan)
        report(f"W2 batches of 1,000, {how}", len(plan), elapsed, failures)

    codes3 = _open_accounts(url, "w3", 10)
    plan = _plan("w3", codes3, args.w1, 4)
    elapsed, failures = run_clients(url, plan, args.clients)
    verify(url, "w3", plan)
    report(f"W3 10 accounts, {args.clients} clients", len(plan), elapsed, failures)
    print("all workloads verified: balanced, counters equal postings, each transfer applied once")


if __name__ == "__main__":
    main()
