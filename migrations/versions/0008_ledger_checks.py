"""A cheaper statement-level check of new postings, same guarantees: one pass over
the statement's postings (entry exists, was written by this transaction, account
exists, same currency) instead of two; the second query runs only to name the
problem once a bad posting is found.

Revision ID: 0008_ledger_checks
Revises: 0001_ledger
Create Date: 2026-11-21
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0008_ledger_checks"
down_revision: str | Sequence[str] | None = "0001_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION ledger_check_new_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.entry_id, n.account_id, n.currency, e.id IS NULL AS no_entry,
           a.code, a.currency AS account_currency
      INTO bad
      FROM new_postings n
      LEFT JOIN ledger_entries e ON e.id = n.entry_id
      LEFT JOIN ledger_accounts a ON a.id = n.account_id
     WHERE e.id IS NULL OR e.tx_id IS DISTINCT FROM pg_current_xact_id()::text::bigint
        OR a.id IS NULL OR a.currency <> n.currency
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF bad.no_entry THEN
        RAISE EXCEPTION 'posting % refers to ledger entry % which does not exist', bad.id, bad.entry_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ledger_entries e
                    WHERE e.id = bad.entry_id AND e.tx_id = pg_current_xact_id()::text::bigint) THEN
        RAISE EXCEPTION 'posting % added to ledger entry % outside the transaction that wrote it',
            bad.id, bad.entry_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF bad.code IS NULL THEN
        RAISE EXCEPTION 'posting % refers to ledger account % which does not exist', bad.id, bad.account_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RAISE EXCEPTION 'posting % in % to account % in %', bad.id, bad.currency, bad.code, bad.account_currency
        USING ERRCODE = 'check_violation';
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTIONS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Put back the functions as 0001 created them.
    path = Path(__file__).with_name("0001_ledger.py")
    spec = importlib.util.spec_from_file_location("ledger_0001", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(module.PG_FUNCTIONS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
