"""Matching a settlement file against the rail's open expectations: set-based SQL, in
one transaction (all of a run's outcomes appear at once or not at all). The same
statements run on PostgreSQL and SQLite; :mod:`.sql` holds the few fragments they
say differently there.

Working set, in temporary tables: ``ri`` the file's records not
settled yet (with the expectation kind their record type settles: payment, refund,
payout; chargebacks and adjustments settle none), ``re`` the rail's open
expectations, ``rp`` the pairs found so far (``gid`` is the match id they will get).

Before the rules, a record identical to an earlier line of the same file (type,
references, amounts, currency, transaction date) is a **duplicate**. Then the rules,
in priority order; each takes only what earlier rules left:

1. exact, by key: the record's key equals the expectation's, same kind, currency
   and amount (gross = signed expected amount), transaction dates at most
   ``recon_date_window_days`` apart, and the (key, amount) is unique on both sides.
   Keys in fallback order: rail reference, RRN, ARN (against the expectation's
   RRN/ARN), our reference;
2. N:1: several records with one key whose gross amounts add up to the amount of
   the one expectation with that key;
3. 1:N: one record whose gross equals the sum of several expectations sharing a
   key (their rail reference, or the ``batch_reference`` the record names);
4. by key alone (any amount), in the same key order, the key unique on both sides:
   exact evidence (rules 1 to 3) wins over a pairing whose amounts differ.

A pair is then classified, first that applies: **amount mismatch** (gross differs
by more than both tolerances, or the settlement currency is not the expected one),
**fee variance** (the fee differs from the expected fee), **FX variance** (the
settlement amount differs from the net converted at the quoted rate, rounded half
away from zero), **late** (the expectation was already overdue in an earlier
cycle), **matched**. Records left over are a **duplicate** when they repeat an
expectation already settled (same key, kind and amount), else **unexpected in
file**; expectations left over are **missing in file** once the cycle date is past
their SLA (``missing_after``), and otherwise stay open.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from settlement.reconciliation.models import Outcome
from settlement.reconciliation.service.sql import ratio, sql

#: (record column, expectation column) of each key, in fallback order.
KEYS: tuple[tuple[str, str, str], ...] = (
    ("rail_reference", "rail_reference", "rail_reference"),
    ("rrn", "rrn", "rrn"),
    ("arn", "arn", "rrn"),
    ("reference", "reference", "reference"),
)
#: Keys that group several records for one expectation (N:1).
N_TO_ONE: tuple[tuple[str, str, str], ...] = (("rail_reference", "rail_reference", "rail_reference"),
                                              ("reference", "reference", "reference"))
#: Keys that group several expectations for one record (1:N).
ONE_TO_N: tuple[tuple[str, str, str], ...] = (("rail_reference", "rail_reference", "rail_reference"),
                                              ("batch", "reference", "batch_reference"),
                                              ("batch", "rail_reference", "batch_reference"))
#: The pairs found so far (``rp``) and by the current rule (``rp_new``).
_RP_COLUMNS = ("gid bigint, rule text, shape text, item_id bigint, kind text, currency text, gross bigint, "
               "fee bigint, net bigint, settlement_amount bigint, settlement_currency text, exp_id bigint, "
               "signed_amount bigint, expected_fee bigint, e_settlement_currency text, fx_rate numeric, "
               "overdue boolean")
#: The working set's columns SQLite looks pairs up by (every key a rule joins on).
_SQLITE_INDEXES = {"ri": ("id", "rail_reference", "rrn", "arn", "reference"),
                   "re": ("id", "rail_reference", "rrn", "reference", "batch_reference")}
_RP_ITEM = ("item_id", "kind", "currency", "gross", "fee", "net", "settlement_amount", "settlement_currency")
_RP_EXP = ("exp_id", "signed_amount", "expected_fee", "e_settlement_currency", "fx_rate", "overdue")


@dataclass(frozen=True)
class MatchParams:
    run_id: int
    file_id: int
    rail: str
    live: bool
    cycle_date: dt.date | None
    window_days: int
    tolerance: int
    relative_tolerance: Decimal
    chunk: int
    now: dt.datetime


def _x(session: Session, statement: str, **params: object) -> int:
    return sql(session).x(statement, **params)


def prepare(session: Session, p: MatchParams) -> None:
    """Build the working set."""
    q = sql(session)
    if q.postgres:
        _tune_postgres(session)
    else:
        q.register_functions()
    q.x(f"""
        {q.temp_as("ri")}
        SELECT i.id, i.line_number, i.record_type,
               CASE WHEN i.record_type IN ('payment', 'refund', 'payout') THEN i.record_type END AS kind,
               i.reference, i.rail_reference, i.rrn, i.arn, i.gross, i.fee, i.net, i.currency,
               i.transaction_date, i.settlement_date, i.settlement_amount, i.settlement_currency
        FROM recon_file_items i
        WHERE i.file_id = :file
          AND NOT EXISTS (SELECT 1 FROM recon_match_items m WHERE m.item_id = i.id AND m.claimed)""",
        file=p.file_id)
    q.x(f"""
        {q.temp_as("re")}
        SELECT e.id, e.kind, e.reference, e.rail_reference, COALESCE(e.rrn, '') AS rrn,
               COALESCE(e.batch_reference, '') AS batch_reference, e.signed_amount, e.expected_fee, e.currency,
               e.settlement_currency, e.fx_rate, e.transaction_date, e.expected_settlement_date, e.missing_after,
               e.overdue_since_run_id IS NOT NULL AS overdue
        FROM recon_expectations e WHERE e.rail = :rail AND e.status = 'open'
          AND NOT EXISTS (SELECT 1 FROM recon_match_expectations m WHERE m.expectation_id = e.id AND m.claimed)""",
        rail=p.rail)
    q.temp_table("rp", _RP_COLUMNS)
    # What the current rule found, before it joins rp (so no step rescans all of rp).
    q.temp_table("rp_new", _RP_COLUMNS)
    q.temp_table("rdup", "id bigint")
    if q.postgres:
        session.execute(text("ANALYZE ri"))
        session.execute(text("ANALYZE re"))
    else:
        # SQLite knows nothing of fresh temporary tables and would nest the rules'
        # grouped subqueries inside each other (quadratic); indexed keys lead it to
        # look each pair up instead.
        for table, columns in _SQLITE_INDEXES.items():
            for column in columns:
                session.execute(text(f"CREATE INDEX temp.{table}_{column} ON {table} ({column})"))


def _tune_postgres(session: Session) -> None:
    # The working set of a million lines is a few hundred megabytes of temporary
    # tables: kept in memory rather than written out and read back. PostgreSQL takes
    # this only before the session's first temporary table (a pooled connection may
    # have had one already: then the default stays).
    try:
        with session.begin_nested():
            session.execute(text("SET LOCAL temp_buffers = '1GB'"))
    except DBAPIError:
        pass
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    # Every join here is a whole set against a whole set. The planner's estimate for a
    # join on three or four equal columns of fresh temporary tables is a handful of
    # rows, which makes it pick nested loops: quadratic (minutes for a few thousand
    # lines). Hash and merge joins are right at every size.
    session.execute(text("SET LOCAL enable_nestloop = off"))
    # Those same estimates make JIT compile every statement, which costs more than it saves.
    session.execute(text("SET LOCAL jit = off"))


def find_duplicate_lines(session: Session) -> None:
    """Records repeating an earlier line of the file, set aside as duplicates."""
    same = "record_type, reference, rail_reference, rrn, gross, fee, net, currency, transaction_date"
    _x(session, f"""
        INSERT INTO rdup (id)
        SELECT id FROM (
            SELECT ri.id, row_number() OVER (PARTITION BY {same} ORDER BY ri.line_number) AS n
            FROM ri JOIN (SELECT {same} FROM ri GROUP BY {same} HAVING count(*) > 1) d USING ({same})) x
        WHERE n > 1""")
    sql(session).delete_taken("ri", "rdup", "id")


#: Above this many pairs, the working set is rebuilt from what is left rather than
#: deleted from (deleting most of a million rows costs several times more).
_REBUILD = 10_000


def _take(session: Session) -> int:
    """Move the pairs a rule just found (``rp_new``) out of the working set and into
    ``rp``; returns how many rows they are."""
    q = sql(session)
    taken = int(q.scalar("SELECT count(*) FROM rp_new"))
    if taken == 0:
        return 0
    if not q.postgres:
        # SQLite's working sets are small: plain deletes and copies.
        q.delete_taken("ri", "rp_new", "item_id")
        q.delete_taken("re", "rp_new", "exp_id")
        q.x("INSERT INTO rp SELECT * FROM rp_new")
        q.x("DELETE FROM rp_new")
        return taken
    for table, column in (("ri", "item_id"), ("re", "exp_id")):
        if taken <= _REBUILD:
            q.delete_taken(table, "rp_new", column)
            continue
        _x(session, f"""CREATE TEMP TABLE {table}_left ON COMMIT DROP AS SELECT * FROM {table} t
                        WHERE NOT EXISTS (SELECT 1 FROM rp_new WHERE rp_new.{column} = t.id)""")
        session.execute(text(f"DROP TABLE {table}"))
        session.execute(text(f"ALTER TABLE {table}_left RENAME TO {table}"))
        # What is left is small: the planner must know it, or it hashes whole tables
        # to look up a few keys.
        session.execute(text(f"ANALYZE {table}"))
    earlier: bool = session.execute(text("SELECT EXISTS (SELECT 1 FROM rp)")).scalar_one()
    if earlier:
        _x(session, "INSERT INTO rp SELECT * FROM rp_new")
        session.execute(text("TRUNCATE rp_new"))
    else:
        # The first rule's pairs (most of a file) become rp as they are, uncopied.
        session.execute(text("DROP TABLE rp"))
        session.execute(text("ALTER TABLE rp_new RENAME TO rp"))
        session.execute(text("CREATE TEMP TABLE rp_new (LIKE rp) ON COMMIT DROP"))
    return taken


def _select_pair() -> str:
    items = ", ".join(f"i.{c}" for c in ("id", "kind", "currency", "gross", "fee", "net", "settlement_amount",
                                          "settlement_currency"))
    return f"{items}, e.id, e.signed_amount, e.expected_fee, e.settlement_currency, e.fx_rate, e.overdue"


def one_to_one(session: Session, p: MatchParams, *, exact: bool) -> dict[str, int]:
    """Rules 1 (``exact``) or 4, for every key in order; returns pairs per rule."""
    q = sql(session)
    found: dict[str, int] = {}
    for name, item_key, exp_key in KEYS:
        rule = f"{'exact' if exact else 'key'}:{name}"
        amount_i, amount_e = (", gross", ", signed_amount") if exact else ("", "")
        same_amount = "AND e.signed_amount = i.gross" if exact else ""
        # Keys unique on each side: equi-joins on grouped keys, so PostgreSQL hashes them.
        _x(session, f"""
            INSERT INTO rp_new (gid, rule, shape, {', '.join(_RP_ITEM)}, {', '.join(_RP_EXP)})
            SELECT {q.match_id}, :rule, '1:1', {_select_pair()}
            FROM ri i
            JOIN (SELECT {item_key} AS k, kind, currency{amount_i} FROM ri WHERE {item_key} <> ''
                  GROUP BY {item_key}, kind, currency{amount_i} HAVING count(*) = 1) ui
              ON ui.k = i.{item_key} AND ui.kind = i.kind AND ui.currency = i.currency
                 {"AND ui.gross = i.gross" if exact else ""}
            JOIN re e ON e.{exp_key} = i.{item_key} AND e.kind = i.kind AND e.currency = i.currency {same_amount}
            JOIN (SELECT {exp_key} AS k, kind, currency{amount_e} FROM re WHERE {exp_key} <> ''
                  GROUP BY {exp_key}, kind, currency{amount_e} HAVING count(*) = 1) ue
              ON ue.k = e.{exp_key} AND ue.kind = e.kind AND ue.currency = e.currency
                 {"AND ue.signed_amount = e.signed_amount" if exact else ""}
            WHERE abs({q.day("i.transaction_date")} - {q.day("e.transaction_date")}) <= :window""",
           rule=rule, window=p.window_days)
        found[rule] = _take(session)
    return found


def many_to_one(session: Session) -> dict[str, int]:
    """Rule 2: several records, one expectation."""
    q = sql(session)
    found: dict[str, int] = {}
    for name, item_key, exp_key in N_TO_ONE:
        rule = f"sum:{name}"
        _x(session, f"""
            WITH g AS (SELECT {item_key} AS k, kind, currency, sum(gross) AS gross FROM ri
                       WHERE {item_key} <> '' AND kind IS NOT NULL
                       GROUP BY {item_key}, kind, currency HAVING count(*) > 1),
                 hit AS MATERIALIZED (
                       SELECT g.k, g.kind, g.currency, e.id AS exp_id, {q.match_id} AS gid
                       FROM g JOIN re e ON e.{exp_key} = g.k AND e.kind = g.kind AND e.currency = g.currency
                       WHERE e.signed_amount = g.gross
                         AND (SELECT count(*) FROM re o WHERE o.{exp_key} = g.k AND o.kind = g.kind
                              AND o.currency = g.currency) = 1)
            INSERT INTO rp_new (gid, rule, shape, {', '.join(_RP_ITEM)}, {', '.join(_RP_EXP)})
            SELECT hit.gid, :rule, 'N:1', {_select_pair()}
            FROM hit JOIN ri i ON i.{item_key} = hit.k AND i.kind = hit.kind AND i.currency = hit.currency
            JOIN re e ON e.id = hit.exp_id""", rule=rule)
        found[rule] = _take(session)
    return found


def one_to_many(session: Session) -> dict[str, int]:
    """Rule 3: one record, several expectations."""
    q = sql(session)
    found: dict[str, int] = {}
    for name, item_key, exp_key in ONE_TO_N:
        rule = f"net:{name}:{item_key}" if name == "batch" else f"net:{name}"
        _x(session, f"""
            WITH g AS (SELECT {exp_key} AS k, kind, currency, sum(signed_amount) AS amount FROM re
                       WHERE {exp_key} <> '' GROUP BY {exp_key}, kind, currency HAVING count(*) > 1),
                 hit AS MATERIALIZED (
                       SELECT g.k, g.kind, g.currency, i.id AS item_id, {q.match_id} AS gid
                       FROM g JOIN ri i ON i.{item_key} = g.k AND i.kind = g.kind AND i.currency = g.currency
                       WHERE i.gross = g.amount
                         AND (SELECT count(*) FROM ri o WHERE o.{item_key} = g.k AND o.kind = g.kind
                              AND o.currency = g.currency) = 1)
            INSERT INTO rp_new (gid, rule, shape, {', '.join(_RP_ITEM)}, {', '.join(_RP_EXP)})
            SELECT hit.gid, :rule, '1:N', {_select_pair()}
            FROM hit JOIN re e ON e.{exp_key} = hit.k AND e.kind = hit.kind AND e.currency = hit.currency
            JOIN ri i ON i.id = hit.item_id""", rule=rule)
        found[rule] = _take(session)
    return found


def _outcome_sql() -> str:
    """The classification of an aggregated pair (columns e, ef, g, f, s, se, sc, esc,
    late); the relative tolerance as integers (:func:`.sql.ratio`)."""
    return f"""CASE
        WHEN g <> e AND abs(g - e) > :tolerance AND abs(g - e) * :rel_den > abs(e) * :rel_num
            THEN '{Outcome.AMOUNT_MISMATCH}'
        WHEN esc IS NOT NULL AND sc IS DISTINCT FROM esc THEN '{Outcome.AMOUNT_MISMATCH}'
        WHEN ef IS NOT NULL AND f <> ef THEN '{Outcome.FEE_VARIANCE}'
        WHEN se IS NOT NULL AND s <> se THEN '{Outcome.FX_VARIANCE}'
        WHEN late THEN '{Outcome.LATE}'
        ELSE '{Outcome.MATCHED}' END"""


def record_pairs(session: Session, p: MatchParams) -> None:
    """Write a match (classified) and its links for every pair group."""
    q = sql(session)
    settling = ", ".join(f"'{o.value}'" for o in Outcome if o.settles)
    # 1:1 rows carry their own amounts; group rows add up the side that has several.
    grouped = f"""
        SELECT gid, min(rule) AS rule, min(shape) AS shape, min(kind) AS kind, min(currency) AS currency,
               CASE WHEN min(shape) = '1:N' THEN sum(signed_amount) ELSE min(signed_amount) END AS e,
               CASE WHEN min(shape) = '1:N' THEN sum(expected_fee) ELSE min(expected_fee) END AS ef,
               CASE WHEN min(shape) = 'N:1' THEN sum(gross) ELSE min(gross) END AS g,
               CASE WHEN min(shape) = 'N:1' THEN sum(fee) ELSE min(fee) END AS f,
               CASE WHEN min(shape) = 'N:1' THEN sum(net) ELSE min(net) END AS n,
               CASE WHEN min(shape) = 'N:1' THEN sum(settlement_amount) ELSE min(settlement_amount) END AS s,
               min(settlement_currency) AS sc, min(e_settlement_currency) AS esc, max(fx_rate) AS rate,
               {q.any_true("overdue")} AS late
        FROM rp WHERE shape <> '1:1' GROUP BY gid"""
    single = """
        SELECT gid, rule, shape, kind, currency, signed_amount AS e, expected_fee AS ef, gross AS g, fee AS f,
               net AS n, settlement_amount AS s, settlement_currency AS sc, e_settlement_currency AS esc,
               fx_rate AS rate, overdue AS late
        FROM rp WHERE shape = '1:1'"""
    numerator, denominator = ratio(p.relative_tolerance)
    for source in (single, grouped):
        _x(session, f"""
            INSERT INTO recon_matches (id, run_id, live, outcome, rule, shape, rail, kind, currency, expected_amount,
                                       expected_fee, gross, fee, net, settlement_currency, settlement_amount,
                                       expected_settlement, batch_no, created_at)
            SELECT gid, :run, :live, outcome, rule, shape, :rail, kind, currency, e, ef, g, f, n, sc, s, se,
                   CASE WHEN :live AND outcome IN ({settling}) THEN CAST(gid / :chunk AS INTEGER) END, :now
            FROM (SELECT c.*, {_outcome_sql()} AS outcome
                  FROM (SELECT x.*, CASE WHEN x.sc IS NULL THEN NULL
                                         WHEN x.rate IS NULL THEN x.s
                                         ELSE {q.fx("x.n", "x.rate")} END AS se
                        FROM ({source}) x) c) classified""",
           run=p.run_id, live=p.live, rail=p.rail, chunk=p.chunk, now=p.now, tolerance=p.tolerance,
           rel_num=numerator, rel_den=denominator)
    # Only the side a group has one of repeats in rp: DISTINCT there, not over every pair.
    _x(session, """INSERT INTO recon_match_items (match_id, item_id, claimed)
                   SELECT gid, item_id, :live FROM rp WHERE shape <> '1:N'
                   UNION ALL SELECT DISTINCT gid, item_id, :live FROM rp WHERE shape = '1:N'""", live=p.live)
    _x(session, """INSERT INTO recon_match_expectations (match_id, expectation_id, claimed)
                   SELECT gid, exp_id, :live FROM rp WHERE shape <> 'N:1'
                   UNION ALL SELECT DISTINCT gid, exp_id, :live FROM rp WHERE shape = 'N:1'""", live=p.live)


def record_leftovers(session: Session, p: MatchParams) -> None:
    """Duplicates, unexpected records and missing expectations (nothing is claimed)."""
    q = sql(session)
    # A leftover record repeating a settled expectation (same key, kind, amount) is a
    # duplicate; rp holds what this run paired, the status what earlier runs did.
    # One EXISTS per key, so each is an index lookup (rail, key). A live run's own
    # pairs are claimed already; a dry run's are only in rp.
    this_run = "" if p.live else "x.id IN (SELECT exp_id FROM rp) OR "
    same = f"""x.rail = :rail AND x.kind = ri.kind AND x.signed_amount = ri.gross AND x.currency = ri.currency
              AND ({this_run}EXISTS (SELECT 1 FROM recon_match_expectations l
                                    WHERE l.expectation_id = x.id AND l.claimed))"""
    repeats = f"""(ri.rail_reference <> '' AND EXISTS (SELECT 1 FROM recon_expectations x
                                                       WHERE x.rail_reference = ri.rail_reference AND {same}))
               OR (ri.rrn <> '' AND EXISTS (SELECT 1 FROM recon_expectations x WHERE x.rrn = ri.rrn AND {same}))"""
    _x(session, f"""
        {q.temp_as("rl")}
        SELECT {q.match_id} AS gid, id, CASE WHEN {repeats} THEN 'repeats_settled' ELSE 'no_expectation' END AS rule
        FROM ri
        UNION ALL
        SELECT {q.match_id}, id, 'repeated_line' FROM rdup""", rail=p.rail)
    _x(session, f"""
        INSERT INTO recon_matches (id, run_id, live, outcome, rule, shape, rail, kind, currency, gross, fee, net,
                                   settlement_currency, settlement_amount, created_at)
        SELECT rl.gid, :run, :live, CASE WHEN rl.rule = 'no_expectation' THEN '{Outcome.UNEXPECTED}'
                                         ELSE '{Outcome.DUPLICATE}' END,
               rl.rule, '1:0', :rail, i.record_type, i.currency, i.gross, i.fee, i.net, i.settlement_currency,
               i.settlement_amount, :now
        FROM rl JOIN recon_file_items i ON i.id = rl.id""", run=p.run_id, live=p.live, rail=p.rail, now=p.now)
    _x(session, "INSERT INTO recon_match_items (match_id, item_id, claimed) SELECT gid, id, false FROM rl")
    if p.cycle_date is None:
        return
    _x(session, f"""
        {q.temp_as("rmiss")}
        SELECT {q.match_id} AS gid, re.* FROM re WHERE re.missing_after < :cycle""", cycle=p.cycle_date)
    _x(session, f"""
        INSERT INTO recon_matches (id, run_id, live, outcome, rule, shape, rail, kind, currency, expected_amount,
                                   expected_fee, created_at)
        SELECT gid, :run, :live, '{Outcome.MISSING}', 'past_sla', '0:1', :rail, kind, currency, signed_amount,
               expected_fee, :now
        FROM rmiss""", run=p.run_id, live=p.live, rail=p.rail, now=p.now)
    _x(session, """INSERT INTO recon_match_expectations (match_id, expectation_id, claimed)
                   SELECT gid, id, false FROM rmiss""")


def leftovers_mode(session: Session) -> None:
    """From here on the statements start from the few lines and expectations left over
    and look up their keys by index: nested loops are what they need (PostgreSQL;
    SQLite's planner has no switch to turn back)."""
    if sql(session).postgres:
        session.execute(text("SET LOCAL enable_nestloop = on"))


def settle_expectations(session: Session, p: MatchParams) -> None:
    """Live runs: expectations still unsettled though due by the cycle date become
    overdue (a later match is then late). Paired ones are settled by their claimed
    links; nothing else about them changes."""
    if p.cycle_date is not None:
        _x(session, """
            UPDATE recon_expectations AS x SET overdue_since_run_id = :run
            FROM re WHERE x.id = re.id AND x.overdue_since_run_id IS NULL
              AND x.expected_settlement_date <= :cycle""", run=p.run_id, cycle=p.cycle_date)


def create_batches(session: Session, p: MatchParams) -> None:
    """Live runs: what the rail pays per settlement date and currency (every record of
    the file counts: matched or not, it is in the rail's net)."""
    _x(session, """
        INSERT INTO recon_settlement_batches (file_id, run_id, rail, settlement_date, currency, amount, record_count,
                                              status, created_at)
        SELECT :file, :run, :rail, settlement_date, COALESCE(settlement_currency, currency),
               sum(COALESCE(settlement_amount, net)), count(*), 'open', :now
        FROM recon_file_items WHERE file_id = :file
        GROUP BY settlement_date, COALESCE(settlement_currency, currency)
        ON CONFLICT DO NOTHING""", file=p.file_id, run=p.run_id, rail=p.rail, now=p.now)


def finish(session: Session) -> None:
    """The working set is dropped (at commit on PostgreSQL, here on SQLite)."""
    sql(session).drop_temporary()
