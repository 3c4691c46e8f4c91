"""Acceptance: someone with database access drops the append-only trigger and alters a
posting; ``settlement verify --database`` names the entry. Removed entries, entries
inserted after sealing and rewritten leaf hashes are named too."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from settlement.cli import build_app
from settlement.db import unit_of_work
from settlement.exports.dbverify import verify_database
from tests.conftest import Database
from tests.journal.factories import ORIGIN, Keys, checkpoint, post_many


def run_verify(database: Database, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("SETTLEMENT_JOURNAL_ORIGIN", ORIGIN)
    result = CliRunner().invoke(build_app(), ["--database-url", database.url, "verify", "--database",
                                              "--public-key", str(keys.public)])
    return result.exit_code, result.output


def as_attacker(database: Database, *statements: str) -> None:
    with unit_of_work(database.factory) as session:
        for statement in statements:
            session.execute(text(statement))


def test_an_altered_posting_is_named(book: Database, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint(book.factory, keys)
    code, out = run_verify(book, keys, monkeypatch)
    assert code == 0, out
    assert "OK:" in out
    with book.factory() as session:
        posting_id, entry_id = session.execute(text(
            "SELECT p.id, p.entry_id FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id "
            "WHERE e.idempotency_key = 'many:12' ORDER BY p.id LIMIT 1")).one()
    as_attacker(book, "ALTER TABLE ledger_postings DISABLE TRIGGER ledger_postings_append_only",
                f"UPDATE ledger_postings SET amount = amount + 1 WHERE id = {posting_id}",
                "ALTER TABLE ledger_postings ENABLE TRIGGER ledger_postings_append_only")
    code, out = run_verify(book, keys, monkeypatch)
    assert code == 1
    assert f"FAIL entry {entry_id} (journal leaf" in out, out
    assert "was changed after sealing" in out
    assert "no longer rebuild the signed root" in out


def test_removed_inserted_and_rewritten_entries_are_named(book: Database, keys: Keys) -> None:
    post_many(book.factory, 3, "tail")
    size = checkpoint(book.factory, keys).tree_size
    with book.factory() as session:
        victim = session.execute(text("SELECT id FROM ledger_entries WHERE idempotency_key = 'many:3'")).scalar_one()
        rewritten = session.execute(text(
            "SELECT id FROM ledger_entries WHERE idempotency_key = 'many:5'")).scalar_one()
    as_attacker(book,
                "ALTER TABLE ledger_postings DISABLE TRIGGER USER", "ALTER TABLE ledger_entries DISABLE TRIGGER USER",
                "ALTER TABLE journal_leaves DISABLE TRIGGER USER",
                f"DELETE FROM ledger_postings WHERE entry_id = {victim}",
                f"DELETE FROM ledger_entries WHERE id = {victim}",
                # An entry slipped in with an old transaction id, as if it had always been there.
                "INSERT INTO ledger_entries (idempotency_key, request_hash, kind, effective_at, recorded_at, "
                "description, metadata, tx_id) VALUES ('forged', 'x', 'transfer', now(), now(), '', '{}', 1)",
                # A description rewritten together with its leaf hash: only the signed root can tell.
                f"UPDATE ledger_entries SET description = 'rewritten' WHERE id = {rewritten}",
                "ALTER TABLE ledger_postings ENABLE TRIGGER USER", "ALTER TABLE ledger_entries ENABLE TRIGGER USER")
    with book.factory() as session:
        from settlement.journal import reader
        from settlement.journal.canonical import leaf_hash

        sql = (f"SELECT NULL, NULL, NULL, {reader.entry_columns('postgresql')} FROM ledger_entries e "
               f"{reader.POSTING_JOINS} WHERE e.id = {rewritten} ORDER BY p.id")
        new_leaf = leaf_hash(next(reader.group(session.execute(text(sql)), "postgresql")).canonical())
    as_attacker(book, "UPDATE journal_leaves SET leaf_hash = decode('" + new_leaf.hex() + "', 'hex') "
                      f"WHERE entry_id = {rewritten}",
                "ALTER TABLE journal_leaves ENABLE TRIGGER USER")
    report = verify_database(book.factory, keys.verifier)
    assert not report.ok
    kinds = {(f.kind, f.entry_id) for f in report.findings}
    assert ("inserted", _forged(book)) in kinds
    assert any(f.kind == "removed" and "removed after sealing" in f.message for f in report.findings)
    assert any(f.kind == "chain" for f in report.findings)  # the stored chain no longer links
    assert any(f.kind == "checkpoint" and f"checkpoint {size}" in f.message for f in report.findings)
    assert report.tree_size == size


def _forged(database: Database) -> int:
    with database.factory() as session:
        return int(session.execute(text("SELECT id FROM ledger_entries WHERE idempotency_key = 'forged'")).scalar_one())


def test_no_checkpoint_is_a_failure_not_a_pass(pg_database: Database, keys: Keys, tmp_path: Path) -> None:
    report = verify_database(pg_database.factory, keys.verifier)
    assert not report.ok
    assert "no checkpoint" in report.findings[0].message
