"""A batch of posted entries in one call, and cheaper checks for big transactions.

``ledger_post_batch`` is to a batch what ``ledger_post_entry`` (0010) is to one
entry: it claims the keys (advisory locks, sorted), resolves and locks the accounts
in id order, replays the postings on the counters set-wise (running sums per
account), and writes the entries, their postings and the new counters. When anything
is off (a key seen before, an unknown account, another currency, a limit broken
after some entry, a counter beyond 2^63-1) it writes nothing and returns no rows, and
the caller takes the general path, which holds the same locks and words the refusal.

Two checks that ran once per row now run once per statement or transaction:

* the check of new postings looks up each entry and each (account, currency) once,
  not once per posting;
* whether every entry balances is checked once per transaction, at commit, over all
  the entries the transaction wrote (found by ``tx_id``), instead of once per entry:
  the first statement that inserts entries in a transaction queues the check by
  inserting the transaction's id into ``ledger_balance_checks``, whose deferred
  constraint trigger checks and then deletes it. What is refused is unchanged: at
  commit, every entry written by the transaction must balance per currency and
  pending flag; with the constraint set IMMEDIATE, at the end of the statement.

Revision ID: 0011_ledger_batch_function
Revises: 0010_ledger_post_function
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011_ledger_batch_function"
down_revision: str | Sequence[str] | None = "0010_ledger_post_function"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK_NEW_POSTINGS = r"""
CREATE OR REPLACE FUNCTION ledger_check_new_postings() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.entry_id, e.id IS NULL AS no_entry
      INTO bad
      FROM (SELECT DISTINCT entry_id FROM new_postings) AS n
      LEFT JOIN LATERAL (SELECT x.id, x.tx_id FROM ledger_entries x WHERE x.id = n.entry_id) AS e ON true
     WHERE e.id IS NULL OR e.tx_id IS DISTINCT FROM pg_current_xact_id()::text::bigint
     LIMIT 1;
    IF FOUND THEN
        IF bad.no_entry THEN
            RAISE EXCEPTION 'posting % refers to ledger entry % which does not exist',
                (SELECT min(id) FROM new_postings WHERE entry_id = bad.entry_id), bad.entry_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RAISE EXCEPTION 'posting % added to ledger entry % outside the transaction that wrote it',
            (SELECT min(id) FROM new_postings WHERE entry_id = bad.entry_id), bad.entry_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    SELECT n.account_id, n.currency, a.code, a.currency AS account_currency
      INTO bad
      FROM (SELECT DISTINCT account_id, currency FROM new_postings) AS n
      LEFT JOIN LATERAL (SELECT x.id, x.code, x.currency FROM ledger_accounts x WHERE x.id = n.account_id) AS a
           ON true
     WHERE a.id IS NULL OR a.currency <> n.currency
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF bad.code IS NULL THEN
        RAISE EXCEPTION 'posting % refers to ledger account % which does not exist',
            (SELECT min(id) FROM new_postings WHERE account_id = bad.account_id), bad.account_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RAISE EXCEPTION 'posting % in % to account % in %',
        (SELECT min(id) FROM new_postings WHERE account_id = bad.account_id AND currency = bad.currency),
        bad.currency, bad.code, bad.account_currency
        USING ERRCODE = 'check_violation';
END $$;
"""

BALANCE_CHECKS = r"""
-- One row per transaction that wrote entries, from its first such statement until
-- its commit (or the end of a statement, with the constraint set IMMEDIATE): never
-- anything at rest, so nothing to log.
CREATE UNLOGGED TABLE ledger_balance_checks (
    tx_id bigint PRIMARY KEY,
    CONSTRAINT ck_ledger_balance_checks_own_transaction CHECK (tx_id = pg_current_xact_id()::text::bigint)
);

CREATE FUNCTION ledger_queue_balance_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_balance_checks (tx_id) VALUES (pg_current_xact_id()::text::bigint)
        ON CONFLICT (tx_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_check_transaction_balanced() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off AS $$
DECLARE
    bad record;
BEGIN
    -- Entry by entry through the indexes (LATERAL): a join the planner may choose
    -- to run over the whole postings table would cost every commit that much.
    SELECT e.id AS entry_id, s.currency, s.difference
      INTO bad
      FROM ledger_entries e
      CROSS JOIN LATERAL (
            SELECT p.currency, SUM(CASE p.side WHEN 'D' THEN p.amount ELSE -p.amount END) AS difference
              FROM ledger_postings p
             WHERE p.entry_id = e.id
             GROUP BY p.currency, p.pending
            HAVING SUM(CASE p.side WHEN 'D' THEN p.amount ELSE -p.amount END) <> 0) AS s
     WHERE e.tx_id = NEW.tx_id
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger entry % does not balance in % (debits - credits = %)',
            bad.entry_id, bad.currency, bad.difference USING ERRCODE = 'check_violation';
    END IF;
    DELETE FROM ledger_balance_checks WHERE tx_id = NEW.tx_id;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_entries_queue_balance_check AFTER INSERT ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_queue_balance_check();
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_balance_checks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction_balanced();
DROP TRIGGER ledger_entries_balanced ON ledger_entries;
"""

POST_BATCH = r"""
CREATE OR REPLACE FUNCTION ledger_post_batch(p_entries json, p_postings json)
RETURNS TABLE (out_kind text, out_key text, out_id bigint, out_recorded timestamptz, out_account bigint,
               out_dpa bigint, out_cpa bigint)
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    e_key text[];
    e_hash text[];
    e_kind text[];
    e_eff timestamptz[];
    e_desc text[];
    e_meta jsonb[];
    v_ids bigint[];
    q_key text[];
    q_acc bigint[];
    q_side text[];
    q_amt bigint[];
    q_cur text[];
    q_dpa bigint[];
    q_cpa bigint[];
    a_id bigint[];
    a_cur text[];
    a_dm boolean[];
    a_cm boolean[];
    a_allow bigint[];
    a_dpe bigint[];
    a_dpo bigint[];
    a_cpe bigint[];
    a_cpo bigint[];
    v_bad boolean;
    v_rows bigint;
BEGIN
    SELECT array_agg(u.k ORDER BY u.n), array_agg(u.h ORDER BY u.n), array_agg(u.kind ORDER BY u.n),
           array_agg(u.eff ORDER BY u.n), array_agg(u.d ORDER BY u.n), array_agg(u.m ORDER BY u.n)
      INTO e_key, e_hash, e_kind, e_eff, e_desc, e_meta
      FROM ROWS FROM (json_to_recordset(p_entries) AS (k text, h text, kind text, eff timestamptz, d text, m jsonb))
           WITH ORDINALITY AS u(k, h, kind, eff, d, m, n);
    IF e_key IS NULL THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(s.h)
       FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(e_key) AS k ORDER BY 1) AS s;
    IF EXISTS (SELECT 1 FROM ledger_entries e WHERE e.idempotency_key = ANY(e_key))
       OR EXISTS (SELECT 1 FROM ledger_refusals r WHERE r.idempotency_key = ANY(e_key)) THEN
        RETURN;
    END IF;

    -- The postings, in order, with their accounts resolved: ids as given, codes
    -- through the code index, each distinct code once.
    WITH q AS (
        SELECT u.n, u.k, u.a, u.code, u.s, u.amt, u.c
          FROM ROWS FROM (json_to_recordset(p_postings) AS (k text, a bigint, code text, s text, amt bigint, c text))
               WITH ORDINALITY AS u(k, a, code, s, amt, c, n)
    ), codes AS (
        SELECT c.code, (SELECT x.id FROM ledger_accounts x WHERE x.code = c.code) AS id
          FROM (SELECT DISTINCT q.code FROM q WHERE q.a IS NULL) AS c
    )
    SELECT array_agg(q.k ORDER BY q.n), array_agg(COALESCE(q.a, codes.id) ORDER BY q.n),
           array_agg(q.s ORDER BY q.n), array_agg(q.amt ORDER BY q.n), array_agg(q.c ORDER BY q.n)
      INTO q_key, q_acc, q_side, q_amt, q_cur
      FROM q LEFT JOIN codes ON q.a IS NULL AND codes.code = q.code;
    IF q_acc IS NULL OR array_position(q_acc, NULL) IS NOT NULL THEN
        RETURN;
    END IF;
    IF (SELECT count(DISTINCT k) FROM unnest(q_key) AS k) <> cardinality(e_key) THEN
        RAISE EXCEPTION 'ledger_post_batch: every entry needs postings, every posting an entry of the batch'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- Lock the accounts in id order, as every writer does, and keep their rows.
    SELECT array_agg(DISTINCT a ORDER BY a) INTO v_ids FROM unnest(q_acc) AS a;
    SELECT array_agg(l.id ORDER BY l.id), array_agg(l.currency::text ORDER BY l.id),
           array_agg(l.debits_must_not_exceed_credits ORDER BY l.id),
           array_agg(l.credits_must_not_exceed_debits ORDER BY l.id),
           array_agg(COALESCE(l.credit_limit, 0) ORDER BY l.id),
           array_agg(l.debits_pending ORDER BY l.id), array_agg(l.debits_posted ORDER BY l.id),
           array_agg(l.credits_pending ORDER BY l.id), array_agg(l.credits_posted ORDER BY l.id)
      INTO a_id, a_cur, a_dm, a_cm, a_allow, a_dpe, a_dpo, a_cpe, a_cpo
      FROM (SELECT x.* FROM ledger_accounts x WHERE x.id = ANY(v_ids) ORDER BY x.id FOR UPDATE) AS l;
    IF cardinality(a_id) IS DISTINCT FROM cardinality(v_ids) THEN
        RETURN;
    END IF;

    -- Replay: each posting's counters after it (running sums per account). The
    -- limits are checked after every posting, which is stricter than after every
    -- entry only for an entry that touches one account twice: such a batch goes to
    -- the general path, which checks after each entry.
    SELECT bool_or(r.cur <> r.c OR r.dpa > 9223372036854775807 OR r.cpa > 9223372036854775807
                   OR (r.dm AND r.dpe + r.dpa > r.cpa + r.allow)
                   OR (r.cm AND r.cpe + r.cpa > r.dpa + r.allow)),
           array_agg(LEAST(r.dpa, 9223372036854775807)::bigint ORDER BY r.n),
           array_agg(LEAST(r.cpa, 9223372036854775807)::bigint ORDER BY r.n)
      INTO v_bad, q_dpa, q_cpa
      FROM (
        SELECT u.n, u.c, a.cur, a.dm, a.cm, a.allow, a.dpe, a.cpe,
               a.dpo + sum(CASE u.s WHEN 'D' THEN u.amt ELSE 0 END) OVER running AS dpa,
               a.cpo + sum(CASE u.s WHEN 'C' THEN u.amt ELSE 0 END) OVER running AS cpa
          FROM unnest(q_acc, q_side, q_amt, q_cur) WITH ORDINALITY AS u(acc, s, amt, c, n)
          JOIN unnest(a_id, a_cur, a_dm, a_cm, a_allow, a_dpe, a_dpo, a_cpe, a_cpo)
               AS a(id, cur, dm, cm, allow, dpe, dpo, cpe, cpo) ON a.id = u.acc
        WINDOW running AS (PARTITION BY u.acc ORDER BY u.n ROWS UNBOUNDED PRECEDING)
      ) AS r;
    IF v_bad IS DISTINCT FROM false OR cardinality(q_dpa) <> cardinality(q_acc) THEN
        RETURN;
    END IF;

    RETURN QUERY
    WITH e AS (
        INSERT INTO ledger_entries (idempotency_key, request_hash, kind, effective_at, recorded_at, description,
                                    metadata)
        SELECT u.k, u.h, u.kind, u.eff, clock_timestamp(), u.d, u.m
          FROM unnest(e_key, e_hash, e_kind, e_eff, e_desc, e_meta) WITH ORDINALITY AS u(k, h, kind, eff, d, m, n)
         ORDER BY u.n
        RETURNING id, idempotency_key, recorded_at
    ), p AS (
        INSERT INTO ledger_postings (entry_id, account_id, side, amount, currency, pending, recorded_at,
                                     debits_posted_after, credits_posted_after)
        SELECT e.id, u.acc, u.s, u.amt, u.c, false, e.recorded_at, u.dpa, u.cpa
          FROM unnest(q_key, q_acc, q_side, q_amt, q_cur, q_dpa, q_cpa) WITH ORDINALITY
               AS u(k, acc, s, amt, c, dpa, cpa, n)
          JOIN e ON e.idempotency_key = u.k
         ORDER BY u.n
        RETURNING id, account_id, debits_posted_after, credits_posted_after
    ), a AS (
        UPDATE ledger_accounts AS acc
           SET debits_posted = v.dpo, credits_posted = v.cpo
          FROM (SELECT u.acc, max(u.dpa) AS dpo, max(u.cpa) AS cpo
                  FROM unnest(q_acc, q_dpa, q_cpa) AS u(acc, dpa, cpa) GROUP BY u.acc) AS v
         WHERE acc.id = v.acc AND acc.id = ANY(v_ids)
        RETURNING acc.id
    )
    SELECT 'e'::text, e.idempotency_key::text, e.id, e.recorded_at, NULL::bigint, NULL::bigint, NULL::bigint FROM e
    UNION ALL
    SELECT 'p'::text, NULL::text, p.id, NULL::timestamptz, p.account_id, p.debits_posted_after,
           p.credits_posted_after FROM p;
    -- A posting naming no entry of the batch would be left out of the insert while
    -- its amount is in the counters: refuse the whole call instead.
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows <> cardinality(e_key) + cardinality(q_key) THEN
        RAISE EXCEPTION 'ledger_post_batch: a posting names no entry of the batch'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END $$;
"""

RESTORE_BALANCE_CHECK = r"""
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_balanced();
DROP TRIGGER ledger_entries_queue_balance_check ON ledger_entries;
DROP TABLE ledger_balance_checks;
DROP FUNCTION ledger_check_transaction_balanced();
DROP FUNCTION ledger_queue_balance_check();
DROP FUNCTION ledger_post_batch(json, json);
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CHECK_NEW_POSTINGS)
        op.execute(BALANCE_CHECKS)
        op.execute(POST_BATCH)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(RESTORE_BALANCE_CHECK)
    from importlib import util
    from pathlib import Path

    spec = util.spec_from_file_location("ledger_0008", Path(__file__).with_name("0008_ledger_checks.py"))
    assert spec is not None
    assert spec.loader is not None
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op.execute(module.PG_FUNCTIONS)
    op.execute("ALTER FUNCTION ledger_check_new_postings() SET enable_seqscan = off")
