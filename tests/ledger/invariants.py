"""The ledger's invariants, computed from the tables with plain SQL, independently of
the service's own arithmetic."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def ledger_violations(session: Session) -> list[str]:
    """Every broken invariant, described; an empty list means the ledger is sound."""
    problems: list[str] = []
    for currency, pending, debits, credits in session.execute(text(
            "SELECT currency, pending, SUM(CASE WHEN side = 'D' THEN amount ELSE 0 END), "
            "SUM(CASE WHEN side = 'C' THEN amount ELSE 0 END) FROM ledger_postings GROUP BY currency, pending")):
        if debits != credits:
            problems.append(f"{currency} pending={pending}: debits {debits} != credits {credits}")
    for row in session.execute(text(
            "SELECT entry_id, currency, pending FROM ledger_postings GROUP BY entry_id, currency, pending "
            "HAVING SUM(CASE WHEN side = 'D' THEN amount ELSE -amount END) <> 0")):
        problems.append(f"entry {row[0]} unbalanced in {row[1]} (pending={row[2]})")
    rows = session.execute(text(
        "SELECT a.code, a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending, "
        "COALESCE((SELECT SUM(amount) FROM ledger_postings p WHERE p.account_id = a.id AND p.side = 'D' "
        "          AND NOT p.pending), 0), "
        "COALESCE((SELECT SUM(amount) FROM ledger_postings p WHERE p.account_id = a.id AND p.side = 'C' "
        "          AND NOT p.pending), 0), "
        "COALESCE((SELECT SUM(p.amount) FROM ledger_postings p JOIN ledger_holds h ON h.entry_id = p.entry_id "
        "          WHERE p.account_id = a.id AND p.side = 'D' AND p.pending AND h.status = 'pending'), 0), "
        "COALESCE((SELECT SUM(p.amount) FROM ledger_postings p JOIN ledger_holds h ON h.entry_id = p.entry_id "
        "          WHERE p.account_id = a.id AND p.side = 'C' AND p.pending AND h.status = 'pending'), 0), "
        "a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits, COALESCE(a.credit_limit, 0) "
        "FROM ledger_accounts a"))
    for code, dpo, cpo, dpe, cpe, sdpo, scpo, sdpe, scpe, dmnec, cmned, limit in rows:
        if (dpo, cpo, dpe, cpe) != (sdpo, scpo, sdpe, scpe):
            problems.append(f"{code}: counters {(dpo, cpo, dpe, cpe)} != postings {(sdpo, scpo, sdpe, scpe)}")
        if dmnec and dpe + dpo > cpo + limit:
            problems.append(f"{code}: debits beyond credits")
        if cmned and cpe + cpo > dpo + limit:
            problems.append(f"{code}: credits beyond debits")
    for row in session.execute(text(
            "SELECT p.id FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id "
            "WHERE a.currency <> p.currency")):
        problems.append(f"posting {row[0]} currency differs from its account")
    return problems


def counts(session: Session) -> tuple[int, int, int, int]:
    """(entries, postings, holds, refusals): to check that a refusal wrote nothing."""
    row = session.execute(text(
        "SELECT (SELECT COUNT(*) FROM ledger_entries), (SELECT COUNT(*) FROM ledger_postings), "
        "(SELECT COUNT(*) FROM ledger_holds), (SELECT COUNT(*) FROM ledger_refusals)")).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])
