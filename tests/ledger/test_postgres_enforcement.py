"""PostgreSQL itself refuses what the service would never write: raw SQL that
unbalances an entry, edits or deletes postings, or breaks an account limit."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import errors

from settlement.db import unit_of_work
from settlement.ledger import EntrySpec, Ledger, credit, debit
from tests.conftest import Database
from tests.ledger.factories import asset, open_accounts, wallet


def _raw(database: Database) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(database.url.replace("postgresql+psycopg://", "postgresql://"))


@pytest.fixture
def seeded(pg_database: Database) -> tuple[Database, int, int, int]:
    bank, w = open_accounts(pg_database.factory, [asset("bank"), wallet("w")])
    with unit_of_work(pg_database.factory) as session:
        entry = Ledger(session).post(EntrySpec("k", [debit("bank", 100, "RUB"), credit("w", 100, "RUB")]))
    return pg_database, bank.id, w.id, entry.id


def _insert_entry(cur: psycopg.Cursor[tuple[object, ...]], key: str) -> int:
    cur.execute("INSERT INTO ledger_entries (idempotency_key, request_hash, kind, effective_at, recorded_at, "
                "description, metadata) VALUES (%s, 'x', 'transfer', now(), now(), '', '{}') RETURNING id", (key,))
    row = cur.fetchone()
    assert row is not None
    return int(row[0])  # type: ignore[call-overload]


def _insert_posting(cur: psycopg.Cursor[tuple[object, ...]], entry_id: int, account_id: int, side: str,
                    amount: int, currency: str = "RUB") -> None:
    cur.execute("INSERT INTO ledger_postings (entry_id, account_id, side, amount, currency, pending, recorded_at, "
                "debits_posted_after, credits_posted_after) VALUES (%s, %s, %s, %s, %s, false, now(), 0, 0)",
                (entry_id, account_id, side, amount, currency))


def _raw_transfer(cur: psycopg.Cursor[tuple[object, ...]], key: str, debit_account: int, credit_account: int,
                  debited: int, credited: int) -> int:
    """An entry written by raw SQL: ``debited`` on one account, ``credited`` on the
    other (unbalanced when they differ); its id."""
    entry_id = _insert_entry(cur, key)
    _insert_posting(cur, entry_id, debit_account, "D", debited)
    _insert_posting(cur, entry_id, credit_account, "C", credited)
    return entry_id


def _refused_at_commit(conn: psycopg.Connection[tuple[object, ...]], entry_id: object) -> None:
    """Committing ``conn`` fails because entry ``entry_id`` does not balance."""
    with pytest.raises(errors.CheckViolation, match=f"entry {entry_id} does not balance"):
        conn.commit()


def test_unbalanced_entry_is_refused_at_commit(seeded: tuple[Database, int, int, int]) -> None:
    database, bank, w, _ = seeded
    with _raw(database) as conn, conn.cursor() as cur:
        entry_id = _raw_transfer(cur, "raw-unbalanced", bank, w, 100, 99)
        _refused_at_commit(conn, entry_id)
    with _raw(database) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_entries WHERE idempotency_key = 'raw-unbalanced'"
                            ).fetchone() == (0,)


def test_every_entry_of_a_transaction_is_checked(seeded: tuple[Database, int, int, int]) -> None:
    """The check runs once per transaction at commit: it must still find the one bad
    entry among several, whichever entry's trigger runs it."""
    database, bank, w, _ = seeded
    with _raw(database) as conn, conn.cursor() as cur:
        ids = []
        for key, credit_amount in (("tx-a", 10), ("tx-b", 9), ("tx-c", 10)):
            entry_id = _raw_transfer(cur, key, bank, w, 10, credit_amount)
            ids.append(entry_id)
        _refused_at_commit(conn, ids[1])
    with _raw(database) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_entries WHERE idempotency_key LIKE 'tx-%'"
                            ).fetchone() == (0,)


def test_entry_written_after_an_early_check_is_checked(seeded: tuple[Database, int, int, int]) -> None:
    """SET CONSTRAINTS ... IMMEDIATE runs the check mid-transaction; an entry written
    after it is not covered by that check and is checked at commit."""
    database, bank, w, _ = seeded
    with _raw(database) as conn, conn.cursor() as cur:
        _raw_transfer(cur, "early-a", bank, w, 10, 10)
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")
        second = _raw_transfer(cur, "early-b", bank, w, 10, 7)
        _refused_at_commit(conn, second)


def test_balanced_raw_entry_is_accepted(seeded: tuple[Database, int, int, int]) -> None:
    database, bank, w, _ = seeded
    with _raw(database) as conn, conn.cursor() as cur:
        _raw_transfer(cur, "raw-balanced", bank, w, 40, 40)
        conn.commit()


def test_posting_added_to_a_committed_entry_is_refused(seeded: tuple[Database, int, int, int]) -> None:
    database, bank, _w, entry_id = seeded
    with _raw(database) as conn, conn.cursor() as cur, pytest.raises(errors.IntegrityConstraintViolation,
                                                                      match="outside the transaction"):
        _insert_posting(cur, entry_id, bank, "D", 5)


def test_posting_in_another_currency_is_refused(seeded: tuple[Database, int, int, int]) -> None:
    database, bank, _w, _ = seeded
    with _raw(database) as conn, conn.cursor() as cur:
        entry_id = _insert_entry(cur, "raw-currency")
        with pytest.raises(errors.CheckViolation, match="to account bank in RUB"):
            _insert_posting(cur, entry_id, bank, "D", 5, "CNY")


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_postings SET amount = amount + 1",
    "DELETE FROM ledger_postings",
    "UPDATE ledger_entries SET description = 'edited'",
    "DELETE FROM ledger_entries",
    "TRUNCATE ledger_postings CASCADE",
    "DELETE FROM ledger_accounts",
    "UPDATE ledger_accounts SET currency = 'CNY'",
])
def test_append_only_and_identity_are_enforced(seeded: tuple[Database, int, int, int], statement: str) -> None:
    database, *_ = seeded
    with _raw(database) as conn, pytest.raises(errors.IntegrityConstraintViolation):
        conn.execute(statement)
    with _raw(database) as conn:
        assert conn.execute("SELECT count(*), sum(amount) FROM ledger_postings").fetchone() == (2, 200)


def test_account_limit_is_a_database_constraint(seeded: tuple[Database, int, int, int]) -> None:
    database, _bank, w, _ = seeded
    with _raw(database) as conn, pytest.raises(errors.CheckViolation, match="debits_within_limit"):
        conn.execute("UPDATE ledger_accounts SET debits_posted = credits_posted + 1 WHERE id = %s", (w,))


def test_resolved_hold_cannot_be_resolved_again(seeded: tuple[Database, int, int, int]) -> None:
    database, *_ = seeded
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        hold = ledger.create_hold("h", debit="w", credit="bank", amount=10, currency="RUB")
        ledger.void_hold("v", hold.hold.id)
    with _raw(database) as conn, pytest.raises(errors.IntegrityConstraintViolation, match="already voided"):
        conn.execute("UPDATE ledger_holds SET status = 'posted' WHERE id = %s", (hold.hold.id,))


def test_posting_to_a_missing_entry_or_account_is_refused(seeded: tuple[Database, int, int, int]) -> None:
    database, bank, _w, _ = seeded
    with _raw(database) as conn, conn.cursor() as cur, pytest.raises(errors.ForeignKeyViolation,
                                                                      match="entry 999999"):
        _insert_posting(cur, 999_999, bank, "D", 5)
    with _raw(database) as conn, conn.cursor() as cur:
        entry_id = _insert_entry(cur, "raw-ghost-account")
        with pytest.raises(errors.ForeignKeyViolation, match="account 424242"):
            _insert_posting(cur, entry_id, 424_242, "D", 5)


def test_identity_guard_lets_counter_updates_through(seeded: tuple[Database, int, int, int]) -> None:
    database, bank, _w, _ = seeded
    with _raw(database) as conn:
        conn.execute("UPDATE ledger_accounts SET metadata = '{\"note\": 1}' WHERE id = %s", (bank,))
        with pytest.raises(errors.IntegrityConstraintViolation, match="identity"):
            conn.execute("UPDATE ledger_accounts SET code = 'renamed' WHERE id = %s", (bank,))


def test_the_balance_check_is_queued_again_after_a_rolled_back_savepoint(
        seeded: tuple[Database, int, int, int]) -> None:
    """The check is queued by the first statement of a transaction that inserts
    entries; if that statement's savepoint is rolled back, the next one queues it
    again."""
    database, bank, w, _ = seeded
    with _raw(database) as conn, conn.cursor() as cur:
        cur.execute("SAVEPOINT s")
        _insert_entry(cur, "sp-gone")
        cur.execute("ROLLBACK TO SAVEPOINT s")
        entry_id = _raw_transfer(cur, "sp-bad", bank, w, 10, 8)
        _refused_at_commit(conn, entry_id)


def test_a_batch_written_by_the_batch_function_is_checked_too(seeded: tuple[Database, int, int, int]) -> None:
    """A posting added by raw SQL to an entry that ledger_post_batch wrote in the same
    transaction unbalances it: refused at commit."""
    database, bank, w, _ = seeded
    with _raw(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT out_id FROM ledger_post_batch(%s::json, %s::json) WHERE out_kind = 'e'",
                    _batch_call(["fn"], [("fn", bank, "D"), ("fn", w, "C")]))
        row = cur.fetchone()
        assert row is not None
        _insert_posting(cur, int(row[0]), w, "C", 1)  # type: ignore[call-overload]
        _refused_at_commit(conn, row[0])
    with _raw(database) as conn:
        assert conn.execute("SELECT count(*) FROM ledger_entries WHERE idempotency_key = 'fn'").fetchone() == (0,)


def test_the_queue_of_balance_checks_cannot_be_planted_for_another_transaction(
        seeded: tuple[Database, int, int, int]) -> None:
    """A row queued ahead for a future transaction would stop that transaction from
    queueing its own check: only a transaction's own id can be queued, and nothing
    stays queued after a commit."""
    database, *_ = seeded
    with _raw(database) as conn:
        with pytest.raises(errors.CheckViolation, match="own_transaction"):
            conn.execute("INSERT INTO ledger_balance_checks VALUES (pg_current_xact_id()::text::bigint + 5)")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM ledger_balance_checks").fetchone() == (0,)


def _batch_call(keys: list[str], postings: list[tuple[str, int, str]]) -> tuple[str, str]:
    """ledger_post_batch's two JSON documents: entries by key, postings as (key,
    account id, side) of 5 RUB each."""
    entries = [{"k": k, "h": "x", "kind": "transfer", "eff": "2026-01-01T00:00:00+00:00", "d": "", "m": {}}
               for k in keys]
    legs = [{"k": k, "a": account, "s": side, "amt": 5, "c": "RUB"} for k, account, side in postings]
    return json.dumps(entries), json.dumps(legs)


@pytest.mark.parametrize(("keys", "stray"), [
    # A posting naming no entry of the batch: its amount would be in the counters
    # while the posting itself was left out of the insert.
    (["lone"], True),
    # An entry of the batch without postings.
    (["lone", "empty"], False),
])
def test_the_batch_function_refuses_postings_and_entries_that_do_not_pair_up(
        seeded: tuple[Database, int, int, int], keys: list[str], stray: bool) -> None:
    database, bank, w, _ = seeded
    postings = [("lone", bank, "D"), ("lone", w, "C")] + ([("stray", w, "C")] if stray else [])
    with _raw(database) as conn:
        before = conn.execute("SELECT sum(debits_posted + credits_posted) FROM ledger_accounts").fetchone()
        with pytest.raises(errors.InvalidParameterValue, match="ledger_post_batch"):
            conn.execute("SELECT * FROM ledger_post_batch(%s::json, %s::json)", _batch_call(keys, postings))
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM ledger_entries WHERE idempotency_key IN ('lone', 'empty')"
                            ).fetchone() == (0,)
        assert conn.execute("SELECT sum(debits_posted + credits_posted) FROM ledger_accounts").fetchone() == before
