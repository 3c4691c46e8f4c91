"""A run's results, as rows, as CSV (streamed) and as an HTML page with a chart of
outcomes (server-rendered, an inline SVG; no script, no build step).

Amounts are decimal strings in the currency's own unit. Per result: what was
expected, what the file said, and the variances: fee (file fee - expected fee), FX
(paid - paid at the quoted rate) and amount (gross - expected).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.money import format_minor
from settlement.reconciliation.models import Outcome, Run

COLUMNS = ("match_id", "outcome", "rule", "shape", "kind", "currency", "expected_amount", "gross", "fee", "net",
           "expected_fee", "fee_variance", "settlement_currency", "settlement_amount", "expected_settlement",
           "fx_variance", "amount_difference", "line_number", "reference", "rail_reference", "rrn",
           "expectation_id", "expected_reference", "payment_id", "records", "expectations", "chunk", "entry_id")
COLORS = {Outcome.MATCHED: "#2e7d32", Outcome.FEE_VARIANCE: "#f9a825", Outcome.FX_VARIANCE: "#ef6c00",
          Outcome.LATE: "#6a1b9a", Outcome.AMOUNT_MISMATCH: "#c62828", Outcome.MISSING: "#37474f",
          Outcome.UNEXPECTED: "#1565c0", Outcome.DUPLICATE: "#ad1457"}

#: One page of a run's results: the page's matches first (by the run's index), then
#: for each its first record (or statement line) and its first expectation.
_QUERY = """
    WITH page AS (
        SELECT m.* FROM recon_matches m
        WHERE m.run_id = :run AND (CAST(:outcome AS text) IS NULL OR m.outcome = :outcome) AND m.id > :after
          AND (NOT :problems OR m.outcome <> 'matched')
        ORDER BY m.id LIMIT :limit),
    records AS (
        SELECT u.*, row_number() OVER (PARTITION BY u.match_id ORDER BY u.line_number) AS n FROM (
            SELECT x.match_id, f.line_number, f.reference, f.rail_reference, f.rrn
            FROM page p JOIN recon_match_items x ON x.match_id = p.id JOIN recon_file_items f ON f.id = x.item_id
            UNION ALL
            SELECT x.match_id, l.line_number, l.end_to_end_id, l.bank_reference, ''
            FROM page p JOIN recon_match_lines x ON x.match_id = p.id
            JOIN recon_statement_lines l ON l.id = x.line_id) u),
    expected AS (
        SELECT x.match_id, r.id, r.reference, r.payment_id,
               row_number() OVER (PARTITION BY x.match_id ORDER BY r.id) AS n
        FROM page p JOIN recon_match_expectations x ON x.match_id = p.id
        JOIN recon_expectations r ON r.id = x.expectation_id)
    SELECT m.id AS match_id, m.outcome, m.rule, m.shape, m.kind, m.currency, m.expected_amount, m.gross, m.fee,
           m.net, m.expected_fee, m.settlement_currency, m.settlement_amount, m.expected_settlement, m.batch_no,
           b.entry_id, i.line_number, i.reference, i.rail_reference, i.rrn, e.id AS expectation_id,
           e.reference AS expected_reference, e.payment_id,
           (SELECT count(*) FROM recon_match_items x WHERE x.match_id = m.id) +
           (SELECT count(*) FROM recon_match_lines x WHERE x.match_id = m.id) AS records,
           (SELECT count(*) FROM recon_match_expectations x WHERE x.match_id = m.id) +
           (SELECT count(*) FROM recon_match_batches x WHERE x.match_id = m.id) AS expectations
    FROM page m
    LEFT JOIN recon_bookings b ON b.run_id = m.run_id AND b.batch_no = m.batch_no
    LEFT JOIN records i ON i.match_id = m.id AND i.n = 1
    LEFT JOIN expected e ON e.match_id = m.id AND e.n = 1
    ORDER BY m.id"""


def _money(value: int | None, currency: str | None) -> str:
    return "" if value is None or currency is None else format_minor(value, currency)


def _row(r: Mapping[str, Any]) -> dict[str, Any]:
    c, sc = r["currency"], r["settlement_currency"]
    fee_variance = None if r["expected_fee"] is None or r["fee"] is None else r["fee"] - r["expected_fee"]
    fx_variance = (None if r["settlement_amount"] is None or r["expected_settlement"] is None
                   else r["settlement_amount"] - r["expected_settlement"])
    difference = None if r["gross"] is None or r["expected_amount"] is None else r["gross"] - r["expected_amount"]
    return {
        "match_id": r["match_id"], "outcome": r["outcome"], "rule": r["rule"], "shape": r["shape"], "kind": r["kind"],
        "currency": c, "expected_amount": _money(r["expected_amount"], c), "gross": _money(r["gross"], c),
        "fee": _money(r["fee"], c), "net": _money(r["net"], c), "expected_fee": _money(r["expected_fee"], c),
        "fee_variance": _money(fee_variance, c), "settlement_currency": sc or "",
        "settlement_amount": _money(r["settlement_amount"], sc), "expected_settlement":
            _money(r["expected_settlement"], sc), "fx_variance": _money(fx_variance, sc),
        "amount_difference": _money(difference, c), "line_number": r["line_number"] or "",
        "reference": r["reference"] or "", "rail_reference": r["rail_reference"] or "", "rrn": r["rrn"] or "",
        "expectation_id": r["expectation_id"] or "", "expected_reference": r["expected_reference"] or "",
        "payment_id": r["payment_id"] or "", "records": r["records"], "expectations": r["expectations"],
        "chunk": "" if r["batch_no"] is None else r["batch_no"], "entry_id": r["entry_id"] or "",
    }


def results(session: Session, run_id: int, *, outcome: str | None = None, after: int = 0, limit: int = 100,
            problems: bool = False) -> list[dict[str, Any]]:
    """Results in id order after ``after``; ``problems``: all but plain matches."""
    rows = session.execute(text(_QUERY), {"run": run_id, "outcome": outcome, "after": after, "limit": limit,
                                          "problems": problems})
    return [_row(dict(r)) for r in rows.mappings()]


def csv_lines(session: Session, run_id: int, *, page: int = 5_000) -> Iterator[str]:
    """The run's results as CSV text, a page of rows at a time (memory stays flat)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    after = 0
    while True:
        rows = results(session, run_id, after=after, limit=page)
        for row in rows:
            writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < page:
            return
        after = int(rows[-1]["match_id"])


_env = jinja2.Environment(loader=jinja2.PackageLoader("settlement.reconciliation", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]), undefined=jinja2.StrictUndefined)


def chart(outcomes: Mapping[str, int], *, width: int = 640, bar: int = 26) -> dict[str, Any]:
    """Bars of the outcome counts, widths proportional (at least a sliver when > 0)."""
    largest = max([*outcomes.values(), 1])
    scale = width - 260
    bars = []
    for index, outcome in enumerate(Outcome):
        count = int(outcomes.get(outcome.value, 0))
        length = 0 if count == 0 else max(2, count * scale // largest)
        bars.append({"label": outcome.value.replace("_", " "), "count": count, "y": index * (bar + 8),
                     "length": length, "color": COLORS[outcome]})
    return {"bars": bars, "width": width, "height": len(bars) * (bar + 8), "bar": bar}


def html(session: Session, run: Run, *, steps: list[dict[str, Any]], sample: int = 200) -> str:
    summary = run.summary or {}
    outcomes = summary.get("outcomes", {o.value: 0 for o in Outcome})
    problems = results(session, run.id, limit=sample, problems=True)
    return _env.get_template("report.html").render(run=run, summary=summary, chart=chart(outcomes), steps=steps,
                                                   problems=problems, columns=COLUMNS)
