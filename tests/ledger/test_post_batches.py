"""Batches in one statement on PostgreSQL (``ledger_post_batch``) and streams of
batches (``post_batches``): the same results, replays and refusals as
``Ledger.post_batch`` on its general path, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from settlement.db import unit_of_work
from settlement.db.types import utcnow
from settlement.ledger import EntryResult, EntrySpec, Ledger, credit, debit, post_batches
from settlement.ledger.errors import AccountNotFound, CurrencyMismatch, InsufficientFunds, InvalidEntry
from settlement.ledger.service import prepare_batch
from settlement.ledger.service.engine import plain_legs
from settlement.ledger.store import store_for
from settlement.money import AmountOutOfRange
from tests.conftest import Database
from tests.ledger.factories import asset, open_accounts, wallet
from tests.ledger.invariants import counts, ledger_violations


def _stored(database: Database, entry_id: int) -> EntryResult:
    with database.factory() as session:
        return Ledger(session).get_entry(entry_id)


def _transfers(prefix: str, count: int, source: str = "bank", target: str = "w") -> list[EntrySpec]:
    return [EntrySpec(f"{prefix}:{n}", [debit(source, n + 1, "RUB"), credit(target, n + 1, "RUB")])
            for n in range(count)]


def test_a_batch_is_stored_as_returned_with_counters_after_each_posting(database: Database) -> None:
    bank, w, cny, wc = open_accounts(database.factory, [asset("bank"), wallet("w"), asset("cny", "CNY"),
                                                        wallet("wc", "CNY")])
    specs = [
        EntrySpec("b:1", [debit("bank", 100, "RUB"), credit("w", 100, "RUB")], description="first",
                  metadata={"order": "A1"}),
        EntrySpec("b:2", [debit(bank.id, 30, "RUB"), debit("bank", 20, "RUB"), credit(w.id, 50, "RUB"),
                          debit("cny", 7, "CNY"), credit(wc.id, 7, "CNY")]),
        EntrySpec("b:3", [debit("w", 120, "RUB"), credit("bank", 120, "RUB")]),
    ]
    with unit_of_work(database.factory) as session:
        results = Ledger(session).post_batch(specs)
    assert [r.idempotency_key for r in results] == ["b:1", "b:2", "b:3"]
    assert all(not r.replayed for r in results)
    for result in results:
        assert result == _stored(database, result.id)
    assert [(p.account_id, p.debits_posted_after, p.credits_posted_after) for p in results[1].postings] == [
        (bank.id, 130, 0), (bank.id, 150, 0), (w.id, 0, 150), (cny.id, 7, 0), (wc.id, 0, 7)]
    assert [(p.debits_posted_after, p.credits_posted_after) for p in results[2].postings] == [(120, 150), (150, 120)]
    assert results[0].description == "first"
    assert results[0].metadata == {"order": "A1"}
    with database.factory() as session:
        ledger = Ledger(session)
        assert ledger.balance("w").balance == 30
        assert ledger.balance("wc").balance == 7
        assert ledger_violations(session) == []

    # The same batch again: every entry a replay, identical, nothing more written.
    with unit_of_work(database.factory) as session:
        again = Ledger(session).post_batch(specs)
    assert all(r.replayed for r in again)
    assert [r.id for r in again] == [r.id for r in results]
    with database.factory() as session:
        assert counts(session)[:2] == (3, 9)


def test_a_batch_mixing_replays_and_fresh_entries(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    first = _transfers("m", 3)
    with unit_of_work(database.factory) as session:
        posted = Ledger(session).post_batch(first)
    with unit_of_work(database.factory) as session:
        mixed = Ledger(session).post_batch([first[1], *_transfers("n", 2)])
    assert mixed[0].replayed
    assert mixed[0].id == posted[1].id
    assert [r.replayed for r in mixed[1:]] == [False, False]
    with database.factory() as session:
        assert counts(session)[:2] == (5, 10)
        assert ledger_violations(session) == []


@pytest.mark.parametrize(("bad", "error", "detail"), [
    (EntrySpec("x", [debit("w", 10_000, "RUB"), credit("bank", 10_000, "RUB")]), InsufficientFunds,
     {"account": "w", "rule": "debits_must_not_exceed_credits", "index": 2}),
    (EntrySpec("x", [debit("bank", 5, "RUB"), credit("nobody", 5, "RUB")]), AccountNotFound,
     {"account": "nobody", "index": 2, "posting": 1}),
    (EntrySpec("x", [debit("bank", 5, "RUB"), credit(10_000_000, 5, "RUB")]), AccountNotFound,
     {"account": "10000000", "index": 2, "posting": 1}),
    (EntrySpec("x", [debit("bank", 5, "CNY"), credit("cny", 5, "CNY")]), CurrencyMismatch,
     {"account": "bank", "account_currency": "RUB", "currency": "CNY", "index": 2, "posting": 0}),
])
def test_a_refused_entry_fails_its_batch_and_nothing_is_written(
        database: Database, bad: EntrySpec, error: type[Exception], detail: dict[str, object]) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w"), asset("cny", "CNY")])
    with pytest.raises(error) as refused, unit_of_work(database.factory) as session:
        Ledger(session).post_batch([*_transfers("r", 2), bad, *_transfers("s", 2)])
    assert refused.value.detail == detail  # type: ignore[attr-defined]
    with database.factory() as session:
        # Nothing at all, not even the refusal: a batch is all or nothing.
        assert counts(session) == (0, 0, 0, 0)
        assert session.execute(text(
            "SELECT sum(debits_posted + credits_posted + debits_pending + credits_pending) FROM ledger_accounts"
        )).scalar_one() == 0


def test_a_counter_beyond_the_bigint_range_fails_the_batch(database: Database) -> None:
    open_accounts(database.factory, [asset("a"), asset("b")])
    top = 2**63 - 1
    with unit_of_work(database.factory) as session:
        Ledger(session).post_batch([EntrySpec("big", [debit("a", top - 10, "RUB"), credit("b", top - 10, "RUB")])])
    with pytest.raises(AmountOutOfRange) as refused, unit_of_work(database.factory) as session:
        Ledger(session).post_batch([EntrySpec(f"more:{n}", [debit("a", 5, "RUB"), credit("b", 5, "RUB")])
                                    for n in range(3)])
    assert refused.value.detail["account"] == "a"
    assert refused.value.detail["index"] == 2
    with database.factory() as session:
        assert counts(session)[:2] == (1, 2)
        assert ledger_violations(session) == []


def test_limits_apply_after_each_entry_not_each_posting(database: Database) -> None:
    """An entry may take a wallet below zero and back within itself; the limit holds
    after the entry (the one-statement write declines such a batch, the general path
    accepts it)."""
    open_accounts(database.factory, [asset("bank"), wallet("w"), wallet("v")])
    spec = EntrySpec("through", [debit("w", 50, "RUB"), credit("v", 50, "RUB"),
                                 debit("bank", 50, "RUB"), credit("w", 50, "RUB")])
    with unit_of_work(database.factory) as session:
        [result] = Ledger(session).post_batch([spec])
    assert [(p.debits_posted_after, p.credits_posted_after) for p in result.postings] == [
        (50, 0), (0, 50), (50, 0), (50, 50)]
    assert result == _stored(database, result.id)
    with database.factory() as session:
        assert Ledger(session).balance("v").balance == 50
        assert ledger_violations(session) == []


def test_a_stream_of_batches_is_posted_in_order(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    batches = [_transfers(f"st{b}", 50) for b in range(6)]
    out = list(post_batches(database.factory, batches))
    assert [[r.idempotency_key for r in results] for results in out] == [
        [s.idempotency_key for s in batch] for batch in batches]
    ids = [r.id for results in out for r in results]
    assert ids == sorted(ids)
    for results in out:
        for result in results[::17]:
            assert result == _stored(database, result.id)
    # The last posting to the wallet saw every earlier one.
    assert out[-1][-1].postings[1].credits_posted_after == 6 * sum(range(1, 51))
    with database.factory() as session:
        assert counts(session)[:2] == (300, 600)
        assert ledger_violations(session) == []
    # Sent again, with one fresh batch between: replays, and the fresh one posted.
    again = list(post_batches(database.factory, [batches[0], _transfers("fresh", 3), batches[5], []]))
    assert all(r.replayed for r in again[0] + again[2])
    assert [r.id for r in again[2]] == [r.id for r in out[5]]
    assert not any(r.replayed for r in again[1])
    assert again[3] == []
    with database.factory() as session:
        assert counts(session)[:2] == (303, 606)


def test_a_refused_batch_stops_the_stream_and_keeps_the_batches_before(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    overdraw = EntrySpec("over", [debit("w", 10**9, "RUB"), credit("bank", 10**9, "RUB")])
    batches = [_transfers("a", 10), _transfers("b", 10), [*_transfers("c", 3), overdraw], _transfers("d", 10)]
    seen: list[list[EntryResult]] = []
    stream = post_batches(database.factory, batches)
    seen.append(next(stream))
    seen.append(next(stream))
    with pytest.raises(InsufficientFunds) as refused:
        next(stream)
    assert refused.value.detail["index"] == 3
    assert len(seen) == 2
    with database.factory() as session:
        keys = {row[0].split(":")[0] for row in session.execute(text("SELECT idempotency_key FROM ledger_entries"))}
        assert keys == {"a", "b"}
        assert counts(session) == (20, 40, 0, 0)
        assert ledger_violations(session) == []
    # The pool's connection is usable afterwards.
    with unit_of_work(database.factory) as session:
        assert Ledger(session).balance("w").credits_posted == 2 * sum(range(1, 11))


def test_an_invalid_batch_stops_the_stream_after_the_one_before_is_written(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    twice = _transfers("dup", 2)
    batches = [_transfers("ok", 5), [twice[0], twice[0]], _transfers("never", 5)]
    stream = post_batches(database.factory, batches)
    with pytest.raises(InvalidEntry, match="same idempotency key twice"):
        list(stream)
    with database.factory() as session:
        assert counts(session)[:2] == (5, 10)


def test_a_stream_left_early_writes_what_it_sent(database: Database) -> None:
    """A caller that stops iterating: the batch already handed to the database is
    written (its keys make sending it again safe), nothing after it, and the
    connection goes back usable."""
    open_accounts(database.factory, [asset("bank"), wallet("w")])

    def batches() -> Iterator[list[EntrySpec]]:
        for b in range(5):
            yield _transfers(f"e{b}", 4)

    stream = post_batches(database.factory, batches())
    first = next(stream)
    assert len(first) == 4
    stream.close()
    with database.factory() as session:
        written = counts(session)[0]
    assert written in (4, 8)  # the second batch may have been sent already
    again = list(post_batches(database.factory, [_transfers("e1", 4)]))
    assert len(again[0]) == 4
    with database.factory() as session:
        assert counts(session)[:2] == (8, 16)
        assert ledger_violations(session) == []


def test_the_batch_statement_writes_fresh_batches_and_declines_the_rest(pg_database: Database) -> None:
    """On PostgreSQL a fresh, acceptable batch is written by ``ledger_post_batch``
    alone; a batch with a key seen before, an unknown account or a broken limit
    makes it write nothing (and the general path decides, as the tests above show)."""
    open_accounts(pg_database.factory, [asset("bank"), wallet("w")])

    def one_statement(specs: list[EntrySpec]) -> bool:
        writes = prepare_batch(specs, utcnow())
        with unit_of_work(pg_database.factory) as session:
            posted = store_for(session).post_batch([w.entry for w in writes], [plain_legs(w) for w in writes])
            return posted is not None

    assert one_statement(_transfers("fresh", 3))
    assert not one_statement([*_transfers("fresh", 1), *_transfers("new", 1)])
    assert not one_statement([EntrySpec("ghost", [debit("bank", 1, "RUB"), credit("ghost", 1, "RUB")])])
    assert not one_statement([EntrySpec("over", [debit("w", 10**6, "RUB"), credit("bank", 10**6, "RUB")])])
    with pg_database.factory() as session:
        assert counts(session) == (3, 6, 0, 0)
        assert session.execute(text("SELECT count(*) FROM ledger_balance_checks")).scalar_one() == 0
        assert ledger_violations(session) == []
