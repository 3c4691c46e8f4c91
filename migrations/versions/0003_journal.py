"""Journal sealing (leaves, persisted subtree hashes, signed checkpoints) and
export jobs.

PostgreSQL enforces, independently of the Python sealer:

1. journal tables are append-only: UPDATE, DELETE and TRUNCATE are refused
   (the ledger's ``ledger_refuse_change`` function);
2. each batch of new leaves continues the sequence without a gap (the first new
   ``seq`` is the last stored one + 1, and the batch is contiguous);
3. each new leaf extends the hash chain: ``chain_hash = sha256(previous chain_hash
   || leaf_hash)``, starting from 32 zero bytes;
4. hashes are 32 bytes, an entry is sealed at most once (unique ``entry_id``).

``entry_id`` has no foreign key: checking it would cost a lookup (and a FOR KEY
SHARE row lock, a write) per sealed entry, half the sealer's time, while entries can
never be deleted (their own trigger) and the sealer reads every entry it seals in the
same transaction; ``settlement verify --database`` names a leaf whose entry is gone.

Revision ID: 0003_journal
Revises: 0002_auth
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_journal"
down_revision: str | Sequence[str] | None = "0002_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

PG_CHECK_LEAVES = r"""
CREATE FUNCTION journal_check_new_leaves() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first_seq bigint;
    last_seq bigint;
    added bigint;
    previous_seq bigint;
    previous_chain bytea;
    broken bigint;
BEGIN
    SELECT min(seq), max(seq), count(*) INTO first_seq, last_seq, added FROM new_leaves;
    IF added = 0 THEN
        RETURN NULL;
    END IF;
    IF last_seq - first_seq + 1 <> added THEN
        RAISE EXCEPTION 'journal leaves % to % are not contiguous', first_seq, last_seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT seq, chain_hash INTO previous_seq, previous_chain
      FROM journal_leaves WHERE seq < first_seq ORDER BY seq DESC LIMIT 1;
    IF COALESCE(previous_seq, 0) <> first_seq - 1 THEN
        RAISE EXCEPTION 'journal leaf % does not follow the last sealed leaf %', first_seq, COALESCE(previous_seq, 0)
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT n.seq INTO broken
      FROM (SELECT seq, leaf_hash, chain_hash, lag(chain_hash) OVER (ORDER BY seq) AS before FROM new_leaves) AS n
     WHERE n.chain_hash <> sha256(COALESCE(n.before, previous_chain, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) || n.leaf_hash)
     ORDER BY n.seq LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'journal leaf % does not extend the hash chain', broken
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
"""

JOURNAL_TABLES = ("journal_leaves", "journal_nodes", "journal_checkpoints")

PG_TRIGGERS = "\n".join(
    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
    f"FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();\n"
    f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();"
    for table in JOURNAL_TABLES
) + """
CREATE TRIGGER journal_leaves_gapless_chain AFTER INSERT ON journal_leaves
    REFERENCING NEW TABLE AS new_leaves FOR EACH STATEMENT EXECUTE FUNCTION journal_check_new_leaves();
"""

SQLITE_TRIGGERS = [
    f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op_name} refused'); END"
    for table in JOURNAL_TABLES
    for op_name in ("UPDATE", "DELETE")
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "journal_leaves",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_at", TS, nullable=False),
        sa.CheckConstraint("seq >= 1", name="seq_positive"),
        sa.CheckConstraint("length(leaf_hash) = 32 AND length(chain_hash) = 32", name="hash_length"),
        sa.UniqueConstraint("entry_id", name="uq_journal_leaves_entry_id"),
    )
    op.create_table(
        "journal_nodes",
        sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("level > 0 AND idx >= 0 AND length(hash) = 32", name="node"),
    )
    op.create_table(
        "journal_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("chain_head", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(8), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("tree_size >= 1", name="tree_size_positive"),
    )
    op.create_table(
        "export_jobs",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("period_from", TS),
        sa.Column("period_to", TS),
        sa.Column("options", JSON, nullable=False),
        sa.Column("requested_by", sa.BigInteger()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
        sa.Column("tree_size", sa.BigInteger()),
        sa.Column("entries", sa.BigInteger()),
        sa.Column("postings", sa.BigInteger()),
        sa.Column("archive_name", sa.String(200)),
        sa.Column("archive_sha256", sa.String(64)),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="status"),
        sa.CheckConstraint("format IN ('csv', 'jsonl', 'xml')", name="format"),
    )
    if postgres:
        op.execute(PG_CHECK_LEAVES)
        op.execute(PG_TRIGGERS)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in ("export_jobs", "journal_checkpoints", "journal_nodes", "journal_leaves"):
        op.drop_table(table)
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS journal_check_new_leaves() CASCADE")
