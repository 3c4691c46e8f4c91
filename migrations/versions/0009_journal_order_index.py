"""Entries indexed in sealing order, (tx_id, id).

The sealer takes the next batch of entries in (tx_id, id) order after the last sealed
one. With an index on tx_id alone PostgreSQL sorted every unsealed entry to find each
batch, so sealing a backlog cost time in proportion to the backlog for every batch;
walking this index in order stops after the batch. It replaces the tx_id index, whose
lookups it serves as well.

Revision ID: 0009_journal_order_index
Revises: 0003_journal
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009_journal_order_index"
down_revision: str | Sequence[str] | None = "0003_journal"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_ledger_entries_tx_id_id", "ledger_entries", ["tx_id", "id"])
    op.drop_index("ix_ledger_entries_tx_id", table_name="ledger_entries")


def downgrade() -> None:
    op.create_index("ix_ledger_entries_tx_id", "ledger_entries", ["tx_id"])
    op.drop_index("ix_ledger_entries_tx_id_id", table_name="ledger_entries")
