"""The reconciliation migration builds what the models describe, and PostgreSQL holds
the invariants itself: references of the bulk tables, one claim per expectation."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from settlement import models
from settlement.db import unit_of_work
from tests.conftest import Database
from tests.reconciliation.factories import Harness, ops, write_file


def test_migration_matches_the_models(pg_database: Database) -> None:
    with pg_database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), models.metadata)
    mine = [d for d in differences if "recon_" in str(d)]
    assert mine == []


def test_the_migration_runs_on_sqlite_too(sqlite_database: Database) -> None:
    with sqlite_database.factory() as session:
        tables = {row[0] for row in session.execute(text(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'recon_%'"))}
    assert {"recon_files", "recon_file_items", "recon_expectations", "recon_matches", "recon_exceptions",
            "recon_writeoff_approvals"} <= tables


@pytest.mark.parametrize(("table", "values"), [
    ("recon_file_items", "(999, 1, 'payment', 'r', 'q', '', '', 1, 0, 1, 'RUB', '2026-11-18', '2026-11-19', "
                         "NULL, NULL, NULL)"),
    ("recon_match_items", "(999, 999, true)"),
])
def test_bulk_references_are_checked_per_statement(pg_database: Database, table: str, values: str) -> None:
    columns = {"recon_file_items": "(file_id, line_number, record_type, reference, rail_reference, rrn, arn, gross, "
                                   "fee, net, currency, transaction_date, settlement_date, settlement_amount, "
                                   "settlement_currency, fx_rate)",
               "recon_match_items": "(match_id, item_id, claimed)"}[table]
    with pytest.raises(IntegrityError, match="refers to no row"), unit_of_work(pg_database.factory) as session:
        session.execute(text(f"INSERT INTO {table} {columns} VALUES {values}"))


def test_an_expectation_is_claimed_once(recon: Harness) -> None:
    op = ops("mir", 1)[0]
    recon.expect(op)
    recon.reconcile(write_file("mir", [op.record()]))
    with unit_of_work(recon.factory) as session:
        other = session.execute(text("""
            INSERT INTO recon_matches (run_id, live, outcome, rule, shape, rail, kind, currency, created_at)
            SELECT run_id, live, outcome, 'manual', shape, rail, kind, currency, created_at FROM recon_matches
            RETURNING id""")).scalar_one()
    second_claim = text("""INSERT INTO recon_match_expectations (match_id, expectation_id, claimed)
                           SELECT :other, expectation_id, true FROM recon_match_expectations""")
    # PostgreSQL names the index, SQLite the column it holds unique.
    with pytest.raises(IntegrityError, match=r"uq_recon_match_expectations_claimed|"
                                             r"recon_match_expectations\.expectation_id"), \
            unit_of_work(recon.factory) as session:
        session.execute(second_claim, {"other": other})
