"""Booking what matched: one ledger entry per chunk of a run's matches, through the
ledger's batch path.

A settlement match (signed amounts as the file shows them: ``E`` expected, ``G``
gross, ``F`` fee, ``N = G - F`` net in the transaction currency ``C``; ``S`` paid in
the settlement currency ``SC`` and ``SE`` what the quoted rate would have paid)
books, debits positive:

==================================================  ===========
``rail:R:receivable:C`` (``rail:R:payouts:C`` for     ``-E``
payouts)
``rail:R:fees:C``                                     ``+F``
``recon:R:variance:C`` (or ``recon:writeoff:C``)      ``-(G - E)``
``bank:clearing:C`` when the rail pays in ``C``       ``+N``
otherwise ``fx:liquidity:C``                          ``+N``
and ``bank:clearing:SC``                              ``+S``
``fx:liquidity:SC``                                   ``-SE``
``fx:gain_loss:SC``                                   ``-(S - SE)``
==================================================  ===========

Each currency balances by construction (``-E + F - G + E + N = 0`` and
``S - SE - (S - SE) = 0``). A refund (``E``, ``G`` negative) debits the receivable
its refund credited; a payout (negative) debits payouts in flight and credits bank
clearing. A statement match debits ``bank:account:C`` the line's amount and credits
``bank:clearing:C`` the batches' (the difference, within tolerance, to
``recon:bank:variance:C``).

A chunk's entry adds these up per account (so it has a handful of postings however
many matches it covers); its metadata names the run, the chunk and the range of
match ids, and each match row keeps its own amounts and its chunk number, so every
payment's settlement stays traceable. The idempotency key is derived from (run,
chunk), and the ``recon_bookings`` row is written in the same transaction as the
entry: a restarted run books only the chunks that have no booking yet, and never
one twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.ledger import EntrySpec, Ledger, PostingSpec, credit, debit
from settlement.reconciliation import accounts
from settlement.reconciliation.service.sql import sql

ENTRY_KIND = "reconciliation.settlement"
STATEMENT = "statement"


@dataclass(frozen=True)
class Totals:
    """Amounts of some matches of one kind and currency pair, added up."""

    rail: str
    kind: str
    currency: str
    settlement_currency: str | None
    expected: int
    fee: int
    gross: int
    net: int
    settlement: int
    expected_settlement: int


def deltas(t: Totals, *, difference_to: str | None = None) -> dict[tuple[str, str], int]:
    """Debit-positive amounts per (account, currency) for ``t`` (rules in the module
    docstring). ``difference_to`` replaces the variance account (write-offs)."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    c = t.currency
    difference = difference_to or accounts.variance(t.rail if t.kind != STATEMENT else "bank", c)
    if t.kind == STATEMENT:
        out[accounts.bank_clearing(c), c] -= t.expected
        out[accounts.bank_account(c), c] += t.gross
        out[difference, c] -= t.gross - t.expected
        return out
    source = accounts.payouts_in_flight(t.rail, c) if t.kind == "payout" else accounts.receivable(t.rail, c)
    out[source, c] -= t.expected
    out[accounts.fees(t.rail, c), c] += t.fee
    out[difference, c] -= t.gross - t.expected
    sc = t.settlement_currency
    if sc is None or sc == c:
        out[accounts.bank_clearing(c), c] += t.net
    else:
        out[accounts.fx_liquidity(c), c] += t.net
        out[accounts.bank_clearing(sc), sc] += t.settlement
        out[accounts.fx_liquidity(sc), sc] -= t.expected_settlement
        out[accounts.fx_gain_loss(sc), sc] -= t.settlement - t.expected_settlement
    return out


def postings(amounts: Mapping[tuple[str, str], int]) -> list[PostingSpec]:
    """Debit-positive amounts as postings, zeros left out, in a stable order."""
    legs = []
    for (code, currency), amount in sorted(amounts.items()):
        if amount > 0:
            legs.append(debit(code, amount, currency))
        elif amount < 0:
            legs.append(credit(code, -amount, currency))
    return legs


#: A chunk's totals: (amounts of one kind and currency pair, matches, first and last match id).
Chunk = list[tuple[Totals, int, int, int]]


def plan(session: Session, run_id: int) -> dict[int, Chunk]:
    """The totals of every chunk of the run not booked yet, in one pass over the run's
    matches (a handful of rows per chunk: memory does not follow the file's size)."""
    rows: Sequence[Any] = session.execute(text("""
        SELECT batch_no, rail, kind, currency, settlement_currency, count(*), min(id), max(id),
               sum(COALESCE(expected_amount, 0)), sum(COALESCE(fee, 0)), sum(COALESCE(gross, 0)),
               sum(COALESCE(net, 0)), sum(COALESCE(settlement_amount, 0)), sum(COALESCE(expected_settlement, 0))
        FROM recon_matches
        WHERE run_id = :run AND batch_no IS NOT NULL
          AND batch_no NOT IN (SELECT batch_no FROM recon_bookings WHERE run_id = :run)
        GROUP BY batch_no, rail, kind, currency, settlement_currency
        ORDER BY batch_no, rail, kind, currency, settlement_currency"""), {"run": run_id}).all()
    chunks: dict[int, Chunk] = defaultdict(list)
    for (chunk, rail, kind, currency, sc, count, first, last, expected, fee, gross, net, settlement,
         expected_settlement) in rows:
        totals = Totals(rail, kind, currency, sc, int(expected), int(fee), int(gross), int(net), int(settlement),
                        int(expected_settlement))
        chunks[int(chunk)].append((totals, int(count), int(first), int(last)))
    return dict(chunks)


def book_chunks(session: Session, run_id: int, chunks: Mapping[int, Chunk]) -> int:
    """Post one entry per chunk (one ``post_batch``) and record the bookings, skipping
    any chunk booked meanwhile; returns how many chunks this call booked."""
    if not chunks:
        return 0
    done: set[int] = set(session.execute(text(
        "SELECT batch_no FROM recon_bookings WHERE run_id = :run AND batch_no IN :chunks").bindparams(
        bindparam("chunks", expanding=True)), {"run": run_id, "chunks": list(chunks)}).scalars())
    specs: list[EntrySpec] = []
    booked: list[tuple[int, int, bool]] = []
    for chunk, groups in sorted(chunks.items()):
        if chunk in done:
            continue
        amounts: dict[tuple[str, str], int] = defaultdict(int)
        for totals, _, _, _ in groups:
            for key, amount in deltas(totals).items():
                amounts[key] += amount
        legs = postings(amounts)
        count = sum(g[1] for g in groups)
        if len(legs) >= 2:
            specs.append(EntrySpec(
                f"recon:run:{run_id}:chunk:{chunk}", legs, kind=ENTRY_KIND,
                description=f"reconciliation run {run_id}, chunk {chunk}: {count} matches",
                metadata={"reconciliation_run": run_id, "chunk": chunk, "matches": count,
                          "first_match_id": min(g[2] for g in groups), "last_match_id": max(g[3] for g in groups)}))
        booked.append((chunk, count, len(legs) >= 2))
    if specs:
        accounts.ensure(session, [leg.account for spec in specs for leg in spec.postings
                                  if isinstance(leg.account, str)])
    results = iter(Ledger(session).post_batch(specs))
    now = utcnow()
    for chunk, count, posted in booked:
        entry_id = next(results).id if posted else None
        sql(session).x(
            "INSERT INTO recon_bookings (run_id, batch_no, entry_id, match_count, created_at) "
            "VALUES (:run, :chunk, :entry, :count, :now) ON CONFLICT (run_id, batch_no) DO NOTHING",
            run=run_id, chunk=chunk, entry=entry_id, count=count, now=now)
    return len(booked)


def book_one(session: Session, key: str, totals: Sequence[Totals], *, difference_to: str | None, description: str,
             metadata: Mapping[str, object]) -> int | None:
    """Post the entry of a single resolution (manual match, write-off) under ``key``;
    returns its id (None when it nets to nothing)."""
    amounts: dict[tuple[str, str], int] = defaultdict(int)
    for each in totals:
        for k, amount in deltas(each, difference_to=difference_to).items():
            amounts[k] += amount
    return post_amounts(session, key, amounts, description=description, metadata=metadata)


def post_amounts(session: Session, key: str, amounts: Mapping[tuple[str, str], int], *, description: str,
                 metadata: Mapping[str, object]) -> int | None:
    legs = postings(amounts)
    if len(legs) < 2:
        return None
    accounts.ensure(session, [leg.account for leg in legs if isinstance(leg.account, str)])
    result = Ledger(session).post_batch([EntrySpec(key, legs, kind=ENTRY_KIND, description=description,
                                                   metadata=dict(metadata))])
    return result[0].id
