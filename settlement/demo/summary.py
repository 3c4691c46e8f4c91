"""The demo's numbers, read from the database at the end (not from what the demo
believes it did): payments per rail, volumes per currency, reconciliation outcomes,
the exceptions left for people, and the trial balance per currency.

:class:`Summary` is what the command prints, what the HTML report shows and what
``summary.json`` holds; amounts are integer minor units with their currency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text

from settlement.db import SessionFactory


@dataclass
class RailLine:
    rail: str
    payments: int
    states: dict[str, int]


@dataclass
class Volume:
    currency: str
    authorized: int
    captured: int
    refunded: int
    payments: int


@dataclass
class TrialBalance:
    currency: str
    debits: int
    credits: int
    pending_debits: int
    pending_credits: int

    @property
    def difference(self) -> int:
        return self.debits - self.credits


@dataclass
class Reconciliation:
    run_id: int
    kind: str
    rail: str
    filename: str
    status: str
    outcomes: dict[str, int]
    expected: dict[str, int]
    error: str = ""

    @property
    def as_injected(self) -> bool:
        """Every outcome but matched is exactly what was injected."""
        return {k: v for k, v in self.outcomes.items() if k != "matched" and v} == {
            k: v for k, v in self.expected.items() if v}


@dataclass
class Summary:
    database: str
    seed: int
    payments_planned: int
    rails: list[RailLine] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    reconciliations: list[Reconciliation] = field(default_factory=list)
    exceptions: dict[str, int] = field(default_factory=dict)
    trial_balance: list[TrialBalance] = field(default_factory=list)
    ledger_entries: int = 0
    payout: dict[str, Any] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # float-ok: seconds
    notes: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return all(t.difference == 0 for t in self.trial_balance)

    @property
    def reconciled_as_injected(self) -> bool:
        return bool(self.reconciliations) and all(r.as_injected for r in self.reconciliations)

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["balanced"] = self.balanced
        document["reconciled_as_injected"] = self.reconciled_as_injected
        return document


def read_numbers(factory: SessionFactory, summary: Summary) -> None:
    """Fill the database's part of ``summary``."""
    with factory() as session:
        def rows(sql: str) -> list[Any]:
            return list(session.execute(text(sql)).all())

        by_rail: dict[str, Counter[str]] = {}
        for rail, state, count in rows("SELECT rail, state, count(*) FROM payments GROUP BY rail, state"):
            by_rail.setdefault(str(rail), Counter())[str(state)] += int(count)
        summary.rails = [RailLine(rail, sum(states.values()), dict(sorted(states.items())))
                         for rail, states in sorted(by_rail.items())]
        summary.volumes = [Volume(str(c), int(a), int(cap), int(ref), int(n)) for c, a, cap, ref, n in rows(
            "SELECT currency, COALESCE(sum(amount_authorized), 0), COALESCE(sum(amount_captured), 0), "
            "COALESCE(sum(amount_refunded), 0), count(*) FROM payments GROUP BY currency ORDER BY currency")]
        summary.trial_balance = [TrialBalance(str(c), int(d), int(cr), int(dp), int(cp)) for c, d, cr, dp, cp in rows(
            "SELECT currency, COALESCE(sum(debits_posted), 0), COALESCE(sum(credits_posted), 0), "
            "COALESCE(sum(debits_pending), 0), COALESCE(sum(credits_pending), 0) FROM ledger_accounts "
            "GROUP BY currency ORDER BY currency")]
        summary.ledger_entries = int(session.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one())
        summary.exceptions = {f"{kind} ({status.replace('_', ' ')})": int(n) for kind, status, n in rows(
            "SELECT kind, status, count(*) FROM recon_exceptions GROUP BY kind, status ORDER BY kind, status")}

