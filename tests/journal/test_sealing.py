"""Sealing: gapless sequence numbers, each entry once, in a fixed order, hash chain
and stored subtree hashes right, on both databases; commit-order safety and the
database's own enforcement on PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from settlement.db import unit_of_work
from settlement.journal import Journal, reader, sealing
from settlement.journal.canonical import leaf_hash
from settlement.journal.sealing import ReadAhead
from settlement.journal.store import ZERO_HASH, LastLeaf
from settlement.ledger import Ledger
from tests.conftest import PG_HOST, PG_PORT, PG_USER, Database
from tests.journal import rfc9162
from tests.journal.factories import open_book, post_many, post_variety, seal_all, transfer


def journal_rows(database: Database) -> list[tuple[int, int, bytes, bytes]]:
    with database.factory() as session:
        return [(int(r[0]), int(r[1]), bytes(r[2]), bytes(r[3])) for r in session.execute(text(
            "SELECT seq, entry_id, leaf_hash, chain_hash FROM journal_leaves ORDER BY seq"))]


def recomputed_leaves(database: Database) -> dict[int, bytes]:
    """entry id -> leaf hash, re-encoded from the ledger now."""
    with database.factory() as session:
        dialect = session.get_bind().dialect.name
        sql = (f"SELECT NULL, NULL, NULL, {reader.entry_columns(dialect)} FROM ledger_entries e "
               f"{reader.POSTING_JOINS} ORDER BY e.id, p.id")
        return {r.entry_id: leaf_hash(r.canonical()) for r in reader.group(session.execute(text(sql)), dialect)}


def check_journal(database: Database, *, complete: bool = True) -> list[tuple[int, int, bytes, bytes]]:
    """Every entry sealed exactly once (``complete``: all of them), seq 1..n, leaves
    and chain right, and the stored subtree hashes giving the RFC root."""
    rows = journal_rows(database)
    leaves = recomputed_leaves(database)
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    sealed = sorted(r[1] for r in rows)
    assert len(set(sealed)) == len(sealed)
    if complete:
        assert sealed == sorted(leaves)
    chain = ZERO_HASH
    for _, entry_id, leaf, stored_chain in rows:
        assert leaf == leaves[entry_id]
        chain = hashlib.sha256(chain + leaf).digest()
        assert stored_chain == chain
    with database.factory() as session:
        journal = Journal(session)
        for size in sorted({1, 2, 15, 16, 17, len(rows)} & set(range(1, len(rows) + 1))):
            assert journal.subtrees([(0, size)])(0, size) == rfc9162.mth([r[2] for r in rows[:size]])
    return rows


def test_sealing_every_kind_of_entry(database: Database) -> None:
    open_book(database.factory)
    ids = post_variety(database.factory)
    post_many(database.factory, 40, "many", batch=7)
    assert seal_all(database.factory, batch=9) == len(ids) + 40
    rows = check_journal(database)
    with database.factory() as session:
        voids = session.execute(text("SELECT id FROM ledger_entries WHERE kind = 'hold_void'")).scalars().all()
        assert voids
        assert all(not session.execute(text("SELECT 1 FROM ledger_postings WHERE entry_id = :e"),
                                                 {"e": v}).first() for v in voids)
    assert set(voids) <= {r[1] for r in rows}
    # Nothing new: nothing sealed. New entries continue the sequence.
    assert seal_all(database.factory) == len(rows)
    post_many(database.factory, 5, "later")
    assert seal_all(database.factory) == len(rows) + 5
    assert len(check_journal(database)) == len(rows) + 5


def test_an_entry_committed_late_is_sealed_in_its_place_not_skipped(pg_database: Database) -> None:
    database = pg_database
    open_book(database.factory)
    post_many(database.factory, 3, "before")
    early = database.factory()
    try:
        first = Ledger(early).post(transfer("early", "bank:CNY", "wallet:0:CNY", 700, "CNY")).id
        post_many(database.factory, 2, "late")  # larger ids, other accounts, committed first
        with unit_of_work(database.factory) as session:
            assert Journal(session).seal().sealed == 3  # the open transaction holds the rest back
        early.commit()
    finally:
        early.close()
    assert seal_all(database.factory) == 6
    rows = check_journal(database)
    order = [entry_id for _, entry_id, _, _ in rows]
    assert order.index(first) == 3  # after the three before it, ahead of the two committed earlier
    assert order[4:] == sorted(order[4:])
    assert min(order[4:]) > first


def test_a_transaction_open_in_another_database_does_not_hold_sealing_back(pg_database: Database) -> None:
    open_book(pg_database.factory)
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres") as elsewhere:
        elsewhere.execute("SELECT pg_current_xact_id()")  # an open transaction with an id
        post_many(pg_database.factory, 4, "here")
        assert seal_all(pg_database.factory) == 4


def test_transactions_elsewhere_that_start_or_end_while_the_horizon_is_taken(
        pg_database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between reading which transactions run elsewhere and taking the horizon, one
    elsewhere ends and another begins: the first is gone from the snapshot, the
    second counts as ours but is newer than every committed entry, so the round
    seals everything at once (no empty round to retry)."""
    open_book(pg_database.factory)
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres") as ending, \
            psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres") as starting:
        ending.execute("SELECT pg_current_xact_id()")  # older than the entries below
        post_many(pg_database.factory, 5, "between")
        known = sealing._other_databases

        def in_between(session: Any) -> list[int]:
            found = known(session)
            ending.commit()
            starting.execute("SELECT pg_current_xact_id()")
            return found

        monkeypatch.setattr(sealing, "_other_databases", in_between)
        with unit_of_work(pg_database.factory) as session:
            result = Journal(session).seal()
        assert (result.sealed, result.more) == (5, False)
    check_journal(pg_database)


def test_a_batch_sent_in_many_pieces_is_one_right_journal(database: Database,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Leaves go to the database in pieces while the batch is hashed: 23 entries in
    pieces of 5 (and a last one of 3) make the same journal as sealing them whole."""
    monkeypatch.setattr(sealing, "_SEND_EVERY", 5)
    open_book(database.factory)
    post_many(database.factory, 23, "pieces")
    with unit_of_work(database.factory) as session:
        assert Journal(session).seal(limit=100).sealed == 23
    rows = check_journal(database)
    assert [seq for seq, _, _, _ in rows] == list(range(1, 24))


def test_posting_never_waits_for_the_sealer_and_a_second_sealer_returns(pg_database: Database) -> None:
    open_book(pg_database.factory)
    post_many(pg_database.factory, 3, "first")
    sealer = pg_database.factory()
    try:
        assert Journal(sealer).seal().sealed == 3  # holds the sealer's lock until it commits
        with unit_of_work(pg_database.factory) as session:
            assert Journal(session).seal().busy
        done = threading.Event()

        def post() -> None:
            post_many(pg_database.factory, 2, "meanwhile")
            done.set()

        worker = threading.Thread(target=post)
        worker.start()
        worker.join(timeout=20)
        assert done.is_set(), "posting waited for the sealer"
        sealer.commit()
    finally:
        sealer.close()
    assert seal_all(pg_database.factory) == 5


@pytest.mark.parametrize("statement", [
    "UPDATE journal_leaves SET leaf_hash = chain_hash WHERE seq = 1",
    "DELETE FROM journal_leaves WHERE seq = 2",
    "TRUNCATE journal_leaves",
    "DELETE FROM journal_nodes",
    "INSERT INTO journal_leaves SELECT seq + 10, entry_id + 100, leaf_hash, chain_hash, sealed_at "
    "FROM journal_leaves WHERE seq = 3",
    "INSERT INTO journal_leaves SELECT 4, entry_id, leaf_hash, chain_hash, sealed_at FROM journal_leaves "
    "WHERE seq = 3",
])
def test_postgres_refuses_changes_gaps_and_broken_chains(pg_database: Database, statement: str) -> None:
    open_book(pg_database.factory)
    post_many(pg_database.factory, 20, "x")
    seal_all(pg_database.factory, batch=3)
    with pytest.raises(DBAPIError), unit_of_work(pg_database.factory) as session:
        session.execute(text(statement))
    check_journal(pg_database)


def test_postgres_refuses_a_leaf_that_does_not_extend_the_chain(pg_database: Database) -> None:
    open_book(pg_database.factory)
    post_many(pg_database.factory, 3, "x")
    seal_all(pg_database.factory, batch=2)
    post_many(pg_database.factory, 1, "y")
    with pg_database.factory() as session:
        new_id = session.execute(text("SELECT max(id) FROM ledger_entries")).scalar_one()
        last_chain = bytes(session.execute(text("SELECT chain_hash FROM journal_leaves WHERE seq = 3")).scalar_one())
    leaf = b"\x07" * 32
    for chain in (b"\x00" * 32, hashlib.sha256(leaf + last_chain).digest()):
        with pytest.raises(DBAPIError, match="does not extend the hash chain"), \
                unit_of_work(pg_database.factory) as session:
            session.execute(text("INSERT INTO journal_leaves VALUES (4, :e, :l, :c, now())"),
                            {"e": new_id, "l": leaf, "c": chain})
    with unit_of_work(pg_database.factory) as session:  # the right link is accepted
        session.execute(text("INSERT INTO journal_leaves VALUES (4, :e, :l, :c, now())"),
                        {"e": new_id, "l": leaf, "c": hashlib.sha256(last_chain + leaf).digest()})
    assert len(journal_rows(pg_database)) == 4


def test_batches_read_ahead_are_used_and_the_journal_is_right(pg_database: Database,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """seal_pending reads the next batch while it seals one; the batches read ahead
    are the ones sealed, and the journal is exactly what sealing one by one gives."""
    open_book(pg_database.factory)
    post_many(pg_database.factory, 45, "ahead", batch=9)
    used: list[int] = []
    take = ReadAhead.take

    def counting(self: ReadAhead, last: LastLeaf | None, limit: int) -> list[Sequence[Any]] | None:
        rows = take(self, last, limit)
        if rows is not None:
            used.append(len(rows))
        return rows

    monkeypatch.setattr(ReadAhead, "take", counting)
    assert seal_all(pg_database.factory, batch=10) == 45
    assert len(used) >= 4  # every batch after the first came from the read-ahead
    check_journal(pg_database)


def test_a_batch_read_ahead_is_dropped_when_another_sealer_went_first(pg_database: Database) -> None:
    open_book(pg_database.factory)
    post_many(pg_database.factory, 12, "stale", batch=4)
    read_ahead = ReadAhead(pg_database.factory)
    try:
        with unit_of_work(pg_database.factory) as session:
            assert Journal(session).seal(limit=4, read_ahead=read_ahead).sealed == 4
        assert read_ahead.pending is not None  # reading entries 5 to 8
        with unit_of_work(pg_database.factory) as session:  # another sealer takes 5 to 8
            assert Journal(session).seal(limit=4).sealed == 4
        with unit_of_work(pg_database.factory) as session:
            last = Journal(session).store.last_leaf()
            assert read_ahead.take(last, 4) is None
            assert read_ahead.pending is None
    finally:
        read_ahead.close()
    assert seal_all(pg_database.factory, batch=4) == 12
    check_journal(pg_database)
