"""Ledger core: accounts, entries, postings, holds, refusals, and the database's own
enforcement of the ledger invariants.

PostgreSQL enforces, independently of the Python service:

1. every entry balances per currency and per layer (posted / pending): a deferred
   constraint trigger checks each new entry's postings at commit;
2. postings can only be added to an entry inside the transaction that wrote it,
   refer to an existing entry and account, and are in the account's currency: one
   set-based statement trigger per INSERT (on PostgreSQL it replaces per-row foreign
   key triggers, which cost two trigger calls per posting on the batch path;
   entries and accounts are never deleted, so insert-time checks are the whole of
   referential integrity here);
3. entries, postings and refusals are append-only: UPDATE, DELETE and TRUNCATE are
   refused; accounts cannot be deleted and their identity (code, currency, type)
   cannot change; a hold can only move once from pending to a final state;
4. account limits: CHECK constraints on the counters.

SQLite (the embedded default) gets the CHECK constraints and append-only triggers;
its balance checks are the service's.

Revision ID: 0001_ledger
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_ledger"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("ledger",)
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

DEBIT_LIMIT = ("NOT debits_must_not_exceed_credits OR "
               "debits_pending + debits_posted <= credits_posted + COALESCE(credit_limit, 0)")
CREDIT_LIMIT = ("NOT credits_must_not_exceed_debits OR "
                "credits_pending + credits_posted <= debits_posted + COALESCE(credit_limit, 0)")

PG_FUNCTIONS = r"""
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE FUNCTION ledger_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger account % identity (id, code, currency, type) cannot change', OLD.code
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE FUNCTION ledger_hold_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' THEN
        RAISE EXCEPTION 'hold % is already %', OLD.id, OLD.status
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.id <> OLD.id OR NEW.entry_id <> OLD.entry_id OR NEW.amount <> OLD.amount
       OR NEW.currency <> OLD.currency OR NEW.debit_account_id <> OLD.debit_account_id
       OR NEW.credit_account_id <> OLD.credit_account_id OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'hold % terms cannot change', OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION ledger_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT currency, pending, SUM(CASE side WHEN 'D' THEN amount ELSE -amount END) AS difference
      INTO bad
      FROM ledger_postings
     WHERE entry_id = NEW.id
     GROUP BY currency, pending
    HAVING SUM(CASE side WHEN 'D' THEN amount ELSE -amount END) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry % does not balance in % (debits - credits = %)',
            NEW.id, bad.currency, bad.difference USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_check_new_postings() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.id, n.entry_id, e.id AS found INTO bad
      FROM new_postings n LEFT JOIN ledger_entries e ON e.id = n.entry_id
     WHERE e.id IS NULL OR e.tx_id IS DISTINCT FROM pg_current_xact_id()::text::bigint
     LIMIT 1;
    IF FOUND THEN
        IF bad.found IS NULL THEN
            RAISE EXCEPTION 'posting % refers to ledger entry % which does not exist', bad.id, bad.entry_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RAISE EXCEPTION 'posting % added to ledger entry % outside the transaction that wrote it',
            bad.id, bad.entry_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT n.id, n.account_id, n.currency, a.code, a.currency AS account_currency INTO bad
      FROM new_postings n LEFT JOIN ledger_accounts a ON a.id = n.account_id
     WHERE a.id IS NULL OR a.currency <> n.currency
     LIMIT 1;
    IF FOUND THEN
        IF bad.code IS NULL THEN
            RAISE EXCEPTION 'posting % refers to ledger account % which does not exist', bad.id, bad.account_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RAISE EXCEPTION 'posting % in % to account % in %', bad.id, bad.currency, bad.code, bad.account_currency
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""

PG_CLAIM = r"""
-- Lock idempotency keys for the rest of the transaction (sorted, so two batches
-- never deadlock), then report what is stored under them. A request that waited
-- for a key sees the outcome committed by the transaction that held it, because
-- each statement of a volatile function reads a fresh snapshot.
CREATE FUNCTION ledger_claim_keys(keys text[])
RETURNS TABLE (kind text, idempotency_key text, entry_id bigint, request_hash text, code text, message text,
               detail jsonb)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(s.h)
       FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(keys) AS k ORDER BY 1) AS s;
    RETURN QUERY
        SELECT 'e'::text, e.idempotency_key::text, e.id, e.request_hash::text, NULL::text, NULL::text, NULL::jsonb
          FROM ledger_entries e WHERE e.idempotency_key = ANY(keys)
        UNION ALL
        SELECT 'r'::text, r.idempotency_key::text, NULL::bigint, r.request_hash::text, r.code::text, r.message,
               r.detail
          FROM ledger_refusals r WHERE r.idempotency_key = ANY(keys);
END $$;
"""

PG_TRIGGERS = r"""
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_postings_no_truncate BEFORE TRUNCATE ON ledger_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_refusals_append_only BEFORE UPDATE OR DELETE ON ledger_refusals
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_refusals_no_truncate BEFORE TRUNCATE ON ledger_refusals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
-- The WHEN clause is evaluated without calling PL/pgSQL, so the counter updates of
-- every write do not pay for this guard.
CREATE TRIGGER ledger_accounts_identity BEFORE UPDATE ON ledger_accounts FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id OR NEW.code IS DISTINCT FROM OLD.code
          OR NEW.currency IS DISTINCT FROM OLD.currency OR NEW.type IS DISTINCT FROM OLD.type
          OR NEW.created_at IS DISTINCT FROM OLD.created_at)
    EXECUTE FUNCTION ledger_account_guard();
CREATE TRIGGER ledger_holds_no_delete BEFORE DELETE ON ledger_holds
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_holds_no_truncate BEFORE TRUNCATE ON ledger_holds
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_holds_resolve_once BEFORE UPDATE ON ledger_holds
    FOR EACH ROW EXECUTE FUNCTION ledger_hold_guard();
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();
CREATE TRIGGER ledger_postings_checked AFTER INSERT ON ledger_postings
    REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_new_postings();
"""

SQLITE_TRIGGERS = [
    f"CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op_name} refused'); END"
    for table in ("ledger_entries", "ledger_postings", "ledger_refusals")
    for op_name in ("UPDATE", "DELETE")
] + [
    "CREATE TRIGGER ledger_accounts_no_delete BEFORE DELETE ON ledger_accounts "
    "BEGIN SELECT RAISE(ABORT, 'ledger_accounts: DELETE refused'); END",
    "CREATE TRIGGER ledger_accounts_identity BEFORE UPDATE OF id, code, currency, type ON ledger_accounts "
    "WHEN NEW.id <> OLD.id OR NEW.code <> OLD.code OR NEW.currency <> OLD.currency OR NEW.type <> OLD.type "
    "BEGIN SELECT RAISE(ABORT, 'ledger account identity cannot change'); END",
    "CREATE TRIGGER ledger_holds_no_delete BEFORE DELETE ON ledger_holds "
    "BEGIN SELECT RAISE(ABORT, 'ledger_holds: DELETE refused'); END",
    "CREATE TRIGGER ledger_holds_resolve_once BEFORE UPDATE ON ledger_holds WHEN OLD.status <> 'pending' "
    "BEGIN SELECT RAISE(ABORT, 'hold already resolved'); END",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "ledger_accounts",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("code", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("debits_must_not_exceed_credits", sa.Boolean(), nullable=False),
        sa.Column("credits_must_not_exceed_debits", sa.Boolean(), nullable=False),
        sa.Column("credit_limit", sa.BigInteger()),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("type IN ('asset', 'liability', 'equity', 'income', 'expense')", name="type"),
        sa.CheckConstraint("NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
                           name="one_limit_flag"),
        sa.CheckConstraint("credit_limit IS NULL OR credit_limit >= 0", name="credit_limit"),
        sa.CheckConstraint("debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 "
                           "AND credits_posted >= 0", name="counters_non_negative"),
        sa.CheckConstraint(DEBIT_LIMIT, name="debits_within_limit"),
        sa.CheckConstraint(CREDIT_LIMIT, name="credits_within_limit"),
        sa.UniqueConstraint("code", name="uq_ledger_accounts_code"),
    )
    tx_default = sa.text("(pg_current_xact_id()::text::bigint)") if postgres else None
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIGID, sa.Identity(always=True), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("effective_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("reverses_entry_id", sa.BigInteger(), sa.ForeignKey("ledger_entries.id",
                  name="fk_ledger_entries_reverses_entry_id_ledger_entries")),
        sa.Column("hold_id", sa.BigInteger()),
        sa.Column("tx_id", sa.BigInteger(), server_default=tx_default),
        sa.UniqueConstraint("idempotency_key", name="uq_ledger_entries_idempotency_key"),
        sa.UniqueConstraint("reverses_entry_id", name="uq_ledger_entries_reverses_entry_id"),
    )
    op.create_index("ix_ledger_entries_recorded_at", "ledger_entries", ["recorded_at"])
    op.create_index("ix_ledger_entries_tx_id", "ledger_entries", ["tx_id"])
    # SQLite has no statement triggers: it keeps declarative foreign keys.
    posting_refs: dict[str, list[sa.ForeignKey]] = {"entry_id": [], "account_id": []}
    if not postgres:
        posting_refs = {
            "entry_id": [sa.ForeignKey("ledger_entries.id", name="fk_ledger_postings_entry_id_ledger_entries")],
            "account_id": [sa.ForeignKey("ledger_accounts.id", name="fk_ledger_postings_account_id_ledger_accounts")],
        }
    op.create_table(
        "ledger_postings",
        sa.Column("id", BIGID, sa.Identity(always=True), primary_key=True),
        sa.Column("entry_id", sa.BigInteger(), *posting_refs["entry_id"], nullable=False),
        sa.Column("account_id", sa.BigInteger(), *posting_refs["account_id"], nullable=False),
        sa.Column("side", sa.String(1), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("debits_posted_after", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted_after", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("side IN ('D', 'C')", name="side"),
    )
    op.create_index("ix_ledger_postings_account_time", "ledger_postings", ["account_id", "recorded_at", "id"])
    op.create_index("ix_ledger_postings_entry_id", "ledger_postings", ["entry_id"])
    op.create_table(
        "ledger_holds",
        sa.Column("id", BIGID, sa.Identity(), primary_key=True),
        sa.Column("entry_id", sa.BigInteger(), sa.ForeignKey("ledger_entries.id",
                  name="fk_ledger_holds_entry_id_ledger_entries"), nullable=False),
        sa.Column("debit_account_id", sa.BigInteger(), sa.ForeignKey("ledger_accounts.id",
                  name="fk_ledger_holds_debit_account_id_ledger_accounts"), nullable=False),
        sa.Column("credit_account_id", sa.BigInteger(), sa.ForeignKey("ledger_accounts.id",
                  name="fk_ledger_holds_credit_account_id_ledger_accounts"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("posted_amount", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("resolved_entry_id", sa.BigInteger(), sa.ForeignKey("ledger_entries.id",
                  name="fk_ledger_holds_resolved_entry_id_ledger_entries")),
        sa.Column("resolved_at", TS),
        sa.Column("parent_hold_id", sa.BigInteger(), sa.ForeignKey("ledger_holds.id",
                  name="fk_ledger_holds_parent_hold_id_ledger_holds")),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("posted_amount >= 0 AND posted_amount <= amount", name="posted_within_amount"),
        sa.CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name="status"),
        sa.UniqueConstraint("entry_id", name="uq_ledger_holds_entry_id"),
    )
    op.create_index("ix_ledger_holds_pending_expiry", "ledger_holds", ["expires_at"],
                    postgresql_where=sa.text("status = 'pending'"), sqlite_where=sa.text("status = 'pending'"))
    op.create_index("ix_ledger_holds_debit_account", "ledger_holds", ["debit_account_id", "created_at"])
    op.create_index("ix_ledger_holds_credit_account", "ledger_holds", ["credit_account_id", "created_at"])
    op.create_table(
        "ledger_refusals",
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    if postgres:
        op.execute(PG_FUNCTIONS)
        op.execute(PG_CLAIM)
        op.execute(PG_TRIGGERS)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in ("ledger_refusals", "ledger_holds", "ledger_postings", "ledger_entries", "ledger_accounts"):
        op.drop_table(table)
    if postgres:
        for function in ("ledger_refuse_change", "ledger_account_guard", "ledger_hold_guard",
                         "ledger_check_entry_balanced", "ledger_check_new_postings"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}() CASCADE")
        op.execute("DROP FUNCTION IF EXISTS ledger_claim_keys(text[])")
