"""Reconciliation: file registry and items, expectations, runs and their steps, matches
and their links, bookings, settlement batches, the exceptions queue.

Invariants held by the database (see settlement/reconciliation/models):

* a file's bytes are registered once (unique SHA-256), a record is loaded once
  (unique per file and line), a file has at most one live run;
* an expectation, file item, statement line or settlement batch is claimed by at
  most one match (partial unique indexes on the link tables);
* a run's chunk is booked once (unique run and chunk);
* a write-off is approved or rejected by someone other than its requester (CHECK);
* exception actions are append-only (triggers refuse UPDATE and DELETE);
* the bulk tables (a file's items and errors, a run's matches and their links) refer
  to their parents through set-based checks on PostgreSQL: one statement trigger
  per table checks every row a statement wrote with one join, instead of a foreign
  key's lookup per row (a million per file). SQLite keeps declarative foreign keys.

Revision ID: 0006_reconciliation
Revises: 0002_auth
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_reconciliation"
down_revision: str | Sequence[str] | None = "0002_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)
RATE = sa.Numeric(24, 12)
CUR = sa.String(3)

PG_APPEND_ONLY = [
    r"""CREATE FUNCTION recon_exception_actions_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'recon_exception_actions are append-only: % refused', TG_OP;
END $$""",
    "CREATE TRIGGER recon_exception_actions_append_only BEFORE UPDATE OR DELETE ON recon_exception_actions "
    "FOR EACH ROW EXECUTE FUNCTION recon_exception_actions_refuse_change()",
]
SQLITE_APPEND_ONLY = [
    f"CREATE TRIGGER recon_exception_actions_no_{op_name.lower()} BEFORE {op_name} ON recon_exception_actions "
    f"BEGIN SELECT RAISE(ABORT, 'recon_exception_actions are append-only: {op_name} refused'); END"
    for op_name in ("UPDATE", "DELETE")
]


#: Bulk tables: (table, [(column, referenced table)]), checked per statement on PostgreSQL.
BULK_REFERENCES: list[tuple[str, list[tuple[str, str]]]] = [
    ("recon_file_items", [("file_id", "recon_files")]),
    ("recon_statement_lines", [("file_id", "recon_files")]),
    ("recon_file_errors", [("file_id", "recon_files")]),
    ("recon_matches", [("run_id", "recon_runs")]),
    ("recon_match_expectations", [("match_id", "recon_matches"), ("expectation_id", "recon_expectations")]),
    ("recon_match_items", [("match_id", "recon_matches"), ("item_id", "recon_file_items")]),
    ("recon_match_lines", [("match_id", "recon_matches"), ("line_id", "recon_statement_lines")]),
    ("recon_match_batches", [("match_id", "recon_matches"), ("batch_id", "recon_settlement_batches")]),
]


def _reference_checks(table: str, references: list[tuple[str, str]]) -> list[str]:
    checks = "".join(f"""
    SELECT n.{column} AS missing INTO bad FROM new_rows n LEFT JOIN {target} t ON t.id = n.{column}
     WHERE t.id IS NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '{table}.{column} % refers to no row of {target}', bad.missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;""" for column, target in references)
    return [
        f"""CREATE FUNCTION {table}_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN{checks}
    RETURN NULL;
END $$""",
        f"CREATE TRIGGER {table}_references AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_check_references()",
    ]


def _fk(column: str, table: str, target: str, *, nullable: bool = False, primary_key: bool = False) -> sa.Column:
    return sa.Column(column, sa.BigInteger(), sa.ForeignKey(f"{target}.id", name=f"fk_{table}_{column}_{target}"),
                     nullable=nullable, primary_key=primary_key)


def _ref(column: str, table: str, target: str, postgres: bool, *, primary_key: bool = False) -> sa.Column:
    """A reference of a bulk table: a declarative foreign key on SQLite only."""
    if postgres:
        return sa.Column(column, sa.BigInteger(), nullable=False, primary_key=primary_key)
    return _fk(column, table, target, primary_key=primary_key)


def _partial(where: str) -> dict[str, sa.TextClause]:
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "recon_files",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rail", sa.String(32)),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_path", sa.String(1024), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("loaded_items", sa.BigInteger(), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("error_count", sa.BigInteger(), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.Column("registered_by", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("loaded_at", TS),
        sa.UniqueConstraint("sha256", name="uq_recon_files_sha256"),
        sa.CheckConstraint("size_bytes >= 0", name="ck_recon_files_size"),
        sa.CheckConstraint("kind = 'statement' OR rail IS NOT NULL", name="ck_recon_files_settlement_rail"),
    )
    op.create_table(
        "recon_file_items",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        _ref("file_id", "recon_file_items", "recon_files", postgres),
        sa.Column("line_number", sa.BigInteger(), nullable=False),
        sa.Column("record_type", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("rail_reference", sa.String(100), nullable=False),
        sa.Column("rrn", sa.String(64), nullable=False),
        sa.Column("arn", sa.String(64), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("transaction_date", sa.Date(), nullable=False),
        sa.Column("settlement_date", sa.Date(), nullable=False),
        sa.Column("settlement_amount", sa.BigInteger()),
        sa.Column("settlement_currency", CUR),
        sa.Column("fx_rate", RATE),
        sa.UniqueConstraint("file_id", "line_number", name="uq_recon_file_items_file_id"),
    )
    op.create_table(
        "recon_statement_lines",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        _ref("file_id", "recon_statement_lines", "recon_files", postgres),
        sa.Column("line_number", sa.BigInteger(), nullable=False),
        sa.Column("sub_index", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("statement_id", sa.String(200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("entry_status", sa.String(8), nullable=False),
        sa.Column("booking_date", sa.Date()),
        sa.Column("value_date", sa.Date()),
        sa.Column("bank_reference", sa.String(200), nullable=False),
        sa.Column("end_to_end_id", sa.String(200), nullable=False),
        sa.Column("counterparty_name", sa.String(300), nullable=False),
        sa.Column("counterparty_account", sa.String(64), nullable=False),
        sa.Column("remittance", sa.String(500), nullable=False),
        sa.UniqueConstraint("file_id", "line_number", "sub_index", name="uq_recon_statement_lines_file_id"),
    )
    op.create_table(
        "recon_file_errors",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        _ref("file_id", "recon_file_errors", "recon_files", postgres),
        sa.Column("line_number", sa.BigInteger(), nullable=False),
        sa.Column("sub_index", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("raw", sa.String(300), nullable=False),
    )
    op.create_index("ix_recon_file_errors_file_id", "recon_file_errors", ["file_id", "line_number"])
    op.create_table(
        "recon_expectations",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("rail_reference", sa.String(100), nullable=False),
        sa.Column("rrn", sa.String(64)),
        sa.Column("batch_reference", sa.String(100)),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("signed_amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("expected_fee", sa.BigInteger()),
        sa.Column("settlement_currency", CUR),
        sa.Column("settlement_amount", sa.BigInteger()),
        sa.Column("fx_rate", RATE),
        sa.Column("transaction_date", sa.Date(), nullable=False),
        sa.Column("expected_settlement_date", sa.Date(), nullable=False),
        sa.Column("missing_after", sa.Date(), nullable=False),
        sa.Column("payment_id", sa.BigInteger()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("overdue_since_run_id", sa.BigInteger()),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS),
        sa.UniqueConstraint("rail", "kind", "reference", name="uq_recon_expectations_rail"),
        sa.CheckConstraint("amount > 0", name="ck_recon_expectations_amount_positive"),
        sa.CheckConstraint("kind IN ('payment', 'refund', 'payout')", name="ck_recon_expectations_kind"),
        sa.CheckConstraint("(settlement_currency IS NULL) = (fx_rate IS NULL)", name="ck_recon_expectations_fx_terms"),
    )
    op.create_index("ix_recon_expectations_open", "recon_expectations", ["rail", "id"], **_partial("status = 'open'"))
    op.create_index("ix_recon_expectations_rail_reference", "recon_expectations", ["rail", "rail_reference"])
    op.create_index("ix_recon_expectations_rrn", "recon_expectations", ["rail", "rrn"])
    op.create_table(
        "recon_runs",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rail", sa.String(32)),
        _fk("file_id", "recon_runs", "recon_files"),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cycle_date", sa.Date()),
        sa.Column("summary", JSON, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", sa.Text()),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("heartbeat_at", TS),
        sa.Column("finished_at", TS),
    )
    op.create_index("uq_recon_runs_live_file", "recon_runs", ["file_id"], unique=True, **_partial("NOT dry_run"))
    op.create_table(
        "recon_run_steps",
        _fk("run_id", "recon_run_steps", "recon_runs", primary_key=True),
        sa.Column("step", sa.String(16), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TS),
        sa.Column("finished_at", TS),
    )
    op.create_table(
        "recon_settlement_batches",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        _fk("file_id", "recon_settlement_batches", "recon_files"),
        _fk("run_id", "recon_settlement_batches", "recon_runs"),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("settlement_date", sa.Date(), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("file_id", "settlement_date", "currency", name="uq_recon_settlement_batches_file_id"),
    )
    op.create_index("ix_recon_settlement_batches_open", "recon_settlement_batches", ["currency", "settlement_date"],
                    **_partial("status = 'open'"))
    op.create_table(
        "recon_matches",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        _ref("run_id", "recon_matches", "recon_runs", postgres),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("shape", sa.String(8), nullable=False),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("expected_amount", sa.BigInteger()),
        sa.Column("expected_fee", sa.BigInteger()),
        sa.Column("gross", sa.BigInteger()),
        sa.Column("fee", sa.BigInteger()),
        sa.Column("net", sa.BigInteger()),
        sa.Column("settlement_currency", CUR),
        sa.Column("settlement_amount", sa.BigInteger()),
        sa.Column("expected_settlement", sa.BigInteger()),
        sa.Column("batch_no", sa.Integer()),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_recon_matches_run_id", "recon_matches", ["run_id", "outcome", "id"])
    for table, column, target in (("recon_match_expectations", "expectation_id", "recon_expectations"),
                                  ("recon_match_items", "item_id", "recon_file_items"),
                                  ("recon_match_lines", "line_id", "recon_statement_lines"),
                                  ("recon_match_batches", "batch_id", "recon_settlement_batches")):
        op.create_table(
            table,
            _ref("match_id", table, "recon_matches", postgres, primary_key=True),
            _ref(column, table, target, postgres, primary_key=True),
            sa.Column("claimed", sa.Boolean(), nullable=False),
        )
        op.create_index(f"uq_{table}_claimed", table, [column], unique=True, **_partial("claimed"))
    op.create_table(
        "recon_bookings",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        _fk("run_id", "recon_bookings", "recon_runs"),
        sa.Column("batch_no", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.BigInteger()),
        sa.Column("match_count", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("run_id", "batch_no", name="uq_recon_bookings_run_id"),
    )
    op.create_table(
        "recon_exceptions",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("rail", sa.String(32), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        _fk("run_id", "recon_exceptions", "recon_runs"),
        _fk("match_id", "recon_exceptions", "recon_matches"),
        _fk("expectation_id", "recon_exceptions", "recon_expectations", nullable=True),
        _fk("item_id", "recon_exceptions", "recon_file_items", nullable=True),
        _fk("line_id", "recon_exceptions", "recon_statement_lines", nullable=True),
        _fk("batch_id", "recon_exceptions", "recon_settlement_batches", nullable=True),
        sa.Column("assigned_to", sa.String(200)),
        sa.Column("resolution", sa.String(24)),
        sa.Column("resolved_by", sa.String(200)),
        sa.Column("resolved_at", TS),
        sa.Column("entry_id", sa.BigInteger()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("(status = 'resolved') = (resolution IS NOT NULL)", name="ck_recon_exceptions_resolution"),
    )
    op.create_index("uq_recon_exceptions_match", "recon_exceptions", ["match_id"], unique=True)
    op.create_index("uq_recon_exceptions_open_expectation", "recon_exceptions", ["expectation_id"], unique=True,
                    **_partial("status <> 'resolved' AND expectation_id IS NOT NULL"))
    op.create_index("uq_recon_exceptions_open_batch", "recon_exceptions", ["batch_id"], unique=True,
                    **_partial("status <> 'resolved' AND batch_id IS NOT NULL"))
    op.create_index("ix_recon_exceptions_status", "recon_exceptions", ["status", "id"])
    op.create_table(
        "recon_exception_actions",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        _fk("exception_id", "recon_exception_actions", "recon_exceptions"),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("entry_id", sa.BigInteger()),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("length(reason) > 0", name="ck_recon_exception_actions_reason"),
    )
    op.create_index("ix_recon_exception_actions_exception_id", "recon_exception_actions", ["exception_id", "id"])
    op.create_index("uq_recon_exception_actions_key", "recon_exception_actions", ["exception_id", "idempotency_key"],
                    unique=True, **_partial("idempotency_key IS NOT NULL"))
    op.create_table(
        "recon_writeoff_approvals",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        _fk("exception_id", "recon_writeoff_approvals", "recon_exceptions"),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", CUR, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", TS),
        sa.Column("decision_reason", sa.String(1000)),
        sa.CheckConstraint("decided_by IS NULL OR decided_by <> requested_by",
                           name="ck_recon_writeoff_approvals_four_eyes"),
        sa.CheckConstraint("(status = 'pending') = (decided_by IS NULL)", name="ck_recon_writeoff_approvals_decision"),
        sa.CheckConstraint("amount >= 0", name="ck_recon_writeoff_approvals_amount"),
    )
    op.create_index("uq_recon_writeoff_approvals_pending", "recon_writeoff_approvals", ["exception_id"],
                    unique=True, **_partial("status = 'pending'"))
    for statement in PG_APPEND_ONLY if postgres else SQLITE_APPEND_ONLY:
        op.execute(statement)
    if postgres:
        for table, references in BULK_REFERENCES:
            for statement in _reference_checks(table, references):
                op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in ("recon_writeoff_approvals", "recon_exception_actions", "recon_exceptions", "recon_bookings",
                  "recon_match_batches", "recon_match_lines", "recon_match_items", "recon_match_expectations",
                  "recon_matches", "recon_settlement_batches", "recon_run_steps", "recon_runs",
                  "recon_expectations", "recon_file_errors", "recon_statement_lines", "recon_file_items",
                  "recon_files"):
        op.drop_table(table)
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS recon_exception_actions_refuse_change()")
        for table, _ in BULK_REFERENCES:
            op.execute(f"DROP FUNCTION IF EXISTS {table}_check_references()")
