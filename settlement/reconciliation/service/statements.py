"""Matching bank statement lines against the rails' net settlement batches (what each
live settlement run said a rail pays for a settlement date and currency).

Candidates: the statement's booked lines not matched yet (signed: money in
positive) and the open settlement batches. A line's day is its value date, else
its booking date. Rules, in priority order, each on what earlier rules left:

1. one line, one batch: same currency and amount, the line's day at most
   ``recon_date_window_days`` from the batch's settlement date, and neither side
   has another candidate in that window;
2. one line, several batches (1:N): the line equals the sum of one rail's open
   batches in that currency settling in the window before the line's day (the bank
   credited several days at once), and no other rail's batches add up to it;
3. several lines, one batch (N:1): lines of one day, currency and counterparty
   account adding up to exactly one batch in the window;
4. one line, one batch within the amount tolerance (the difference is booked to
   ``recon:bank:variance``), unique both ways.

Lines left over are unexpected; batches left over whose settlement date is more
than ``recon_statement_sla_days`` before the statement's last day are missing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from settlement.reconciliation.models import Outcome
from settlement.reconciliation.service.matching import MatchParams
from settlement.reconciliation.service.sql import Sql, ratio, sql


def match_statement(session: Session, p: MatchParams, *, sla_days: int) -> None:
    """Write the run's statement outcomes (and, for a live run, confirm the batches)."""
    q = sql(session)
    q.register_functions()
    q.x(f"""
        {q.temp_as("sl")}
        SELECT l.id, l.amount, l.currency, COALESCE(l.value_date, l.booking_date) AS day, l.counterparty_account
        FROM recon_statement_lines l
        WHERE l.file_id = :file AND l.entry_status = 'BOOK'
          AND NOT EXISTS (SELECT 1 FROM recon_match_lines m WHERE m.line_id = l.id AND m.claimed)""", file=p.file_id)
    q.x(f"""
        {q.temp_as("sb")}
        SELECT b.id, b.rail, b.settlement_date, b.currency, b.amount FROM recon_settlement_batches b
        WHERE b.status = 'open'
          AND NOT EXISTS (SELECT 1 FROM recon_match_batches m WHERE m.batch_id = b.id AND m.claimed)""")
    q.temp_table("sp", "gid bigint, rule text, shape text, line_id bigint, batch_id bigint")
    near = (f"s.day IS NOT NULL AND abs({q.day('s.day')} - {q.day('b.settlement_date')}) <= :window "
            "AND s.currency = b.currency")
    within = ("(abs(s.amount - b.amount) <= :tolerance "
              "OR abs(s.amount - b.amount) * :rel_den <= abs(b.amount) * :rel_num)")
    numerator, denominator = ratio(p.relative_tolerance)
    for rule, same in (("exact", "s.amount = b.amount"), ("tolerance", within)):
        q.x(f"""
            INSERT INTO sp (gid, rule, shape, line_id, batch_id)
            SELECT {q.match_id}, :rule, '1:1', line_id, batch_id FROM (
                SELECT s.id AS line_id, b.id AS batch_id, count(*) OVER (PARTITION BY s.id) AS nl,
                       count(*) OVER (PARTITION BY b.id) AS nb
                FROM sl s JOIN sb b ON {near} AND {same}) c
            WHERE nl = 1 AND nb = 1""", rule=rule, window=p.window_days, tolerance=p.tolerance,
            rel_num=numerator, rel_den=denominator)
        _take(q, rule)
        if rule == "exact":
            _one_to_many(q, p)
            _many_to_one(q, p)
    _record(q, p, sla_days)
    q.drop_temporary()


def _take(q: Sql, rule: str) -> None:
    q.x("DELETE FROM sl WHERE id IN (SELECT line_id FROM sp WHERE rule = :rule)", rule=rule)
    q.x("DELETE FROM sb WHERE id IN (SELECT batch_id FROM sp WHERE rule = :rule)", rule=rule)


def _one_to_many(q: Sql, p: MatchParams) -> None:
    in_window = f"{q.day('b.settlement_date')} BETWEEN {q.day('s.day')} - :window AND {q.day('s.day')}"
    q.x(f"""
        WITH sums AS (
            SELECT s.id AS line_id, b.rail, count(*) AS n, sum(b.amount) AS total FROM sl s JOIN sb b
              ON s.currency = b.currency AND s.day IS NOT NULL AND {in_window}
            GROUP BY s.id, b.rail),
        hit AS MATERIALIZED (
            SELECT u.line_id, u.rail, {q.match_id} AS gid FROM sums u JOIN sl s ON s.id = u.line_id
            WHERE u.n > 1 AND u.total = s.amount
              AND (SELECT count(*) FROM sums o WHERE o.line_id = u.line_id AND o.total = s.amount) = 1)
        INSERT INTO sp (gid, rule, shape, line_id, batch_id)
        SELECT hit.gid, 'sum_of_batches', '1:N', hit.line_id, b.id FROM hit JOIN sl s ON s.id = hit.line_id
        JOIN sb b ON b.rail = hit.rail AND b.currency = s.currency AND {in_window}""", window=p.window_days)
    _take(q, "sum_of_batches")


def _many_to_one(q: Sql, p: MatchParams) -> None:
    days_apart = f"abs({q.day('g.day')} - {q.day('{batch}.settlement_date')}) <= :window"
    q.x(f"""
        WITH g AS (SELECT day, currency, counterparty_account, sum(amount) AS total FROM sl WHERE day IS NOT NULL
                   GROUP BY day, currency, counterparty_account HAVING count(*) > 1),
        hit AS MATERIALIZED (
            SELECT g.day, g.currency, g.counterparty_account, b.id AS batch_id, {q.match_id} AS gid
            FROM g JOIN sb b ON b.currency = g.currency AND b.amount = g.total
             AND {days_apart.format(batch="b")}
            WHERE (SELECT count(*) FROM sb o WHERE o.currency = g.currency AND o.amount = g.total
                   AND {days_apart.format(batch="o")}) = 1)
        INSERT INTO sp (gid, rule, shape, line_id, batch_id)
        SELECT hit.gid, 'sum_of_lines', 'N:1', s.id, hit.batch_id FROM hit JOIN sl s
          ON s.day = hit.day AND s.currency = hit.currency AND s.counterparty_account = hit.counterparty_account""",
        window=p.window_days)
    _take(q, "sum_of_lines")


def _record(q: Sql, p: MatchParams, sla_days: int) -> None:
    settling = f"'{Outcome.MATCHED.value}'"
    q.x(f"""
        INSERT INTO recon_matches (id, run_id, live, outcome, rule, shape, rail, kind, currency, expected_amount,
                                   gross, fee, net, batch_no, created_at)
        SELECT gid, :run, :live, outcome, rule, shape, rail, 'statement', currency, e, g, 0, g,
               CASE WHEN :live AND outcome = {settling} THEN CAST(gid / :chunk AS INTEGER) END, :now
        FROM (SELECT gid, min(rule) AS rule, min(shape) AS shape, min(b.rail) AS rail, min(b.currency) AS currency,
                     (SELECT sum(amount) FROM recon_settlement_batches WHERE id IN
                        (SELECT batch_id FROM sp x WHERE x.gid = sp.gid)) AS e,
                     (SELECT sum(amount) FROM recon_statement_lines WHERE id IN
                        (SELECT line_id FROM sp x WHERE x.gid = sp.gid)) AS g,
                     '{Outcome.MATCHED}' AS outcome
              FROM sp JOIN recon_settlement_batches b ON b.id = sp.batch_id GROUP BY gid) m""",
        run=p.run_id, live=p.live, chunk=p.chunk, now=p.now)
    q.x("INSERT INTO recon_match_lines (match_id, line_id, claimed) SELECT DISTINCT gid, line_id, :live "
        "FROM sp", live=p.live)
    q.x("INSERT INTO recon_match_batches (match_id, batch_id, claimed) SELECT DISTINCT gid, batch_id, "
        ":live FROM sp", live=p.live)
    q.x(f"""
        {q.temp_as("sx")}
        SELECT {q.match_id} AS gid, s.id, s.amount, s.currency FROM sl s""")
    q.x(f"""
        INSERT INTO recon_matches (id, run_id, live, outcome, rule, shape, rail, kind, currency, gross, fee, net,
                                   created_at)
        SELECT gid, :run, :live, '{Outcome.UNEXPECTED}', 'no_batch', '1:0', 'bank', 'statement', currency, amount, 0,
               amount, :now FROM sx""", run=p.run_id, live=p.live, now=p.now)
    q.x("INSERT INTO recon_match_lines (match_id, line_id, claimed) SELECT gid, id, false FROM sx")
    if p.cycle_date is not None:
        q.x(f"""
            {q.temp_as("smiss")}
            SELECT {q.match_id} AS gid, b.* FROM sb b WHERE {q.day("b.settlement_date")} + :sla < {q.day(":cycle")}""",
            sla=sla_days, cycle=p.cycle_date)
        q.x(f"""
            INSERT INTO recon_matches (id, run_id, live, outcome, rule, shape, rail, kind, currency, expected_amount,
                                       created_at)
            SELECT gid, :run, :live, '{Outcome.MISSING}', 'past_sla', '0:1', rail, 'statement', currency, amount, :now
            FROM smiss""", run=p.run_id, live=p.live, now=p.now)
        q.x("INSERT INTO recon_match_batches (match_id, batch_id, claimed) SELECT gid, id, false FROM smiss")
    if p.live:
        q.x("UPDATE recon_settlement_batches AS b SET status = 'confirmed' FROM sp WHERE b.id = sp.batch_id")
