"""A batch of posted entries that is the last write of its transaction, sent with
the COMMIT.

``ledger_post_batch_strict`` is ``ledger_post_batch`` (0011) for a caller that sends
the COMMIT in the same round trip (psycopg's pipeline mode): where
``ledger_post_batch`` writes nothing and returns no rows, so that the caller takes the
general path, this one raises SQLSTATE ``SLB01``. The error aborts the transaction,
so the COMMIT queued behind it commits nothing, and the caller runs the transaction
again on the general path. The shared accounts are then locked only while the
database writes the batch and commits, never while the answer travels back to a
client that has to be scheduled before it can send the COMMIT.

Revision ID: 0012_ledger_batch_with_commit
Revises: 0011_ledger_batch_function
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_ledger_batch_with_commit"
down_revision: str | Sequence[str] | None = "0011_ledger_batch_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POST_BATCH_STRICT = r"""
CREATE FUNCTION ledger_post_batch_strict(p_entries json, p_postings json) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- A set-returning PL/pgSQL function runs to its end before its first row is read.
    PERFORM 1 FROM ledger_post_batch(p_entries, p_postings) LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ledger_post_batch wrote nothing: the batch needs the general path'
            USING ERRCODE = 'SLB01';
    END IF;
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POST_BATCH_STRICT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION ledger_post_batch_strict(json, json)")
