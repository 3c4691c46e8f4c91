"""``Ledger.post_batch_with_commit``: a transaction's last batch and its COMMIT in one
round trip on PostgreSQL. Whatever the batch needs the general path for, nothing of
the transaction is written and BatchNotCommitted says to run it again; a failure at
the COMMIT itself leaves nothing either."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from settlement.ledger import EntrySpec, Ledger, credit, debit
from settlement.ledger.errors import BatchNotCommitted, InsufficientFunds
from tests.conftest import Database
from tests.ledger.factories import asset, open_accounts, wallet
from tests.ledger.invariants import counts, ledger_violations


def _merchants(database: Database) -> int:
    with database.factory() as session:
        return int(session.execute(text("SELECT count(*) FROM merchants")).scalar_one())


def _other_write(session: object) -> None:
    """A write of the same transaction made before the batch (a row of another table)."""
    session.execute(text(  # type: ignore[attr-defined]
        "INSERT INTO merchants (name, settlement_currency, commission_rate, metadata, created_at, updated_at) "
        "VALUES ('in the same transaction', 'RUB', 0, '{}', now(), now())"))


def _sale(prefix: str, amount: int = 500) -> list[EntrySpec]:
    return [EntrySpec(f"{prefix}:capture", [debit("bank", amount, "RUB"), credit("w", amount, "RUB")]),
            EntrySpec(f"{prefix}:split", [debit("w", amount // 10, "RUB"), credit("fees", amount // 10, "RUB")])]


def test_the_batch_and_the_transaction_are_committed_together(pg_database: Database) -> None:
    open_accounts(pg_database.factory, [asset("bank"), wallet("w"), wallet("fees")])
    session = pg_database.factory()
    try:
        _other_write(session)
        assert Ledger(session).post_batch_with_commit(_sale("s1"))
        # Committed already: another connection sees everything, before the session's
        # own commit (which has nothing left to send).
        assert _merchants(pg_database) == 1
        with pg_database.factory() as other:
            assert counts(other)[:2] == (2, 4)
            assert Ledger(other).balance("w").balance == 450
        session.commit()
    finally:
        session.close()
    with pg_database.factory() as check:
        assert ledger_violations(check) == []
        assert [r.replayed for r in Ledger(check).post_batch(_sale("s1"))] == [True, True]


@pytest.mark.parametrize("case", ["key seen before", "refused"])
def test_a_batch_for_the_general_path_rolls_the_transaction_back(pg_database: Database, case: str) -> None:
    open_accounts(pg_database.factory, [asset("bank"), wallet("w"), wallet("fees")])
    with pg_database.factory() as first:
        Ledger(first).post_batch(_sale("s1")[:1])
        first.commit()
    with pg_database.factory() as before:
        written = counts(before)
    batch = _sale("s1") if case == "key seen before" else [
        EntrySpec("s2:overdraw", [debit("w", 10_000, "RUB"), credit("bank", 10_000, "RUB")])]
    session = pg_database.factory()
    try:
        _other_write(session)
        with pytest.raises(BatchNotCommitted):
            Ledger(session).post_batch_with_commit(batch)
        session.rollback()
        assert _merchants(pg_database) == 0
        with pg_database.factory() as check:
            assert counts(check) == written
        # Run again on the general path: it decides, and words a refusal.
        _other_write(session)
        if case == "refused":
            with pytest.raises(InsufficientFunds):
                Ledger(session).post_batch(batch)
            session.rollback()
        else:
            assert [r.replayed for r in Ledger(session).post_batch(batch)] == [True, False]
            session.commit()
    finally:
        session.close()
    with pg_database.factory() as check:
        assert ledger_violations(check) == []
        assert _merchants(pg_database) == (1 if case == "key seen before" else 0)


def test_a_transaction_refused_at_its_commit_leaves_nothing(pg_database: Database) -> None:
    open_accounts(pg_database.factory, [asset("bank"), wallet("w"), wallet("fees")])
    session = pg_database.factory()
    try:
        _other_write(session)
        # An entry made unbalanced by a raw posting: the deferred check refuses the COMMIT.
        Ledger(session).post_batch(_sale("raw")[:1])
        session.execute(text(
            "INSERT INTO ledger_postings (entry_id, account_id, side, amount, currency, pending, recorded_at, "
            "debits_posted_after, credits_posted_after) SELECT e.id, a.id, 'D', 1, 'RUB', false, now(), 0, 0 "
            "FROM ledger_entries e, ledger_accounts a WHERE e.idempotency_key = 'raw:capture' AND a.code = 'bank'"))
        with pytest.raises(psycopg.Error, match="balance"):
            Ledger(session).post_batch_with_commit(_sale("s1"))
        session.rollback()
    finally:
        session.close()
    assert _merchants(pg_database) == 0
    with pg_database.factory() as check:
        assert counts(check) == (0, 0, 0, 0)


def test_other_databases_post_and_commit_as_usual(sqlite_database: Database) -> None:
    open_accounts(sqlite_database.factory, [asset("bank"), wallet("w"), wallet("fees")])
    with sqlite_database.factory() as session:
        assert not Ledger(session).post_batch_with_commit(_sale("s1"))
        assert counts(session)[:2] == (0, 0)
        assert not Ledger(session).post_batch_with_commit([])
