"""Bank statements (camt.053, 1CClientBankExchange) against the rails' net settlement
batches: one line per batch, one line for several days, several lines for one batch,
unexpected lines, batches the bank never showed."""

from __future__ import annotations

import datetime as dt

from settlement.db import unit_of_work
from settlement.reconciliation.models import FileKind
from settlement.reconciliation.service.resolve import Action, resolve
from tests.adapters.statements.factories import one_c_account_section, one_c_document, one_c_file
from tests.reconciliation.factories import Harness, ops, statement_camt, write_file

D = dt.date(2026, 11, 16)


def _settle(recon: Harness, day: dt.date, start: int, count: int = 2) -> int:
    """Reconcile a Mir file settling on ``day``; returns the batch amount (its net)."""
    batch = ops("mir", count, start=start)
    recon.expect(*batch)
    records = [op.record(settled=day) for op in batch]
    recon.reconcile(write_file("mir", records, settled=day), name=f"mir-{day}")
    return sum(r.net for r in records)


def test_camt053_lines_against_settlement_batches(recon: Harness) -> None:
    old = _settle(recon, D - dt.timedelta(days=9), 100)
    first = _settle(recon, D, 1)
    second, third = _settle(recon, D + dt.timedelta(days=1), 10), _settle(recon, D + dt.timedelta(days=2), 20)
    fourth = _settle(recon, D + dt.timedelta(days=3), 30)
    assert recon.sql("SELECT count(*) FROM recon_settlement_batches WHERE status = 'open'") == [(5,)]
    before_clearing = recon.balance("bank:clearing:RUB")
    statement = statement_camt([
        (first, D, "E2E-1"),                                             # one line, one batch
        (second + third, D + dt.timedelta(days=2), "E2E-2"),             # two days credited at once
        (fourth - 1_000, D + dt.timedelta(days=3), "E2E-3a"),            # one batch in two lines
        (1_000, D + dt.timedelta(days=3), "E2E-3b"),
        (-500, D + dt.timedelta(days=4), "FEE"),                         # a bank fee: not a settlement
    ])
    run_id, summary = recon.reconcile(statement, rail=None, kind=FileKind.STATEMENT, name="camt.xml")
    shapes = sorted((r["outcome"], r["shape"], r["rule"]) for r in recon.results(run_id))
    assert shapes == [("matched", "1:1", "exact"), ("matched", "1:N", "sum_of_batches"),
                      ("matched", "N:1", "sum_of_lines"), ("missing_in_file", "0:1", "past_sla"),
                      ("unexpected_in_file", "1:0", "no_batch")]
    confirmed = first + second + third + fourth
    assert recon.balance("bank:account:RUB") == confirmed
    assert recon.balance("bank:clearing:RUB") == before_clearing - confirmed
    assert summary["matches_booked"] == 3
    assert sorted(recon.sql("SELECT status, amount FROM recon_settlement_batches")) == sorted(
        [("confirmed", first), ("confirmed", second), ("confirmed", third), ("confirmed", fourth), ("open", old)])
    assert sorted(k for (k,) in recon.sql("SELECT kind FROM recon_exceptions WHERE rail = 'bank' OR batch_id "
                                         "IS NOT NULL")) == ["missing_in_file", "unexpected_in_file"]


def test_1c_statement_confirms_a_batch(recon: Harness) -> None:
    amount = _settle(recon, D, 1)
    document = one_c_document("7", f"{amount // 100}.{amount % 100:02d}", ДатаПоступило=D.strftime("%d.%m.%Y"))
    data = one_c_file([*one_c_account_section(), *document])
    _, summary = recon.reconcile(data, rail=None, kind=FileKind.STATEMENT, name="kl_to_1c.txt")
    assert summary["outcomes"]["matched"] == 1
    assert recon.balance("bank:account:RUB") == amount


def test_a_statement_line_is_used_once(recon: Harness) -> None:
    amount = _settle(recon, D, 1)
    recon.reconcile(statement_camt([(amount, D, "E2E-1")]), rail=None, kind=FileKind.STATEMENT, name="a")
    # A second statement repeating the movement finds the batch already confirmed.
    _, summary = recon.reconcile(statement_camt([(amount, D, "E2E-1"), (1, D, "x")]), rail=None,
                                 kind=FileKind.STATEMENT, name="b")
    assert summary["outcomes"]["unexpected_in_file"] == 2
    assert recon.balance("bank:account:RUB") == amount


def test_statement_exceptions_are_resolved_with_their_entries(recon: Harness) -> None:
    amount = _settle(recon, D - dt.timedelta(days=9), 1)
    # The bank credited the batch short by 1.50 (its fee), and a stray credit of 7.00.
    run_id, _ = recon.reconcile(statement_camt([(amount - 150, D, "E2E-1"), (700, D, "STRAY")]), rail=None,
                                kind=FileKind.STATEMENT, name="camt")
    ids = {kind: (i, line) for i, kind, line in recon.sql(
        "SELECT id, kind, line_id FROM recon_exceptions WHERE run_id = :r", r=run_id)}
    assert set(ids) == {"missing_in_file", "unexpected_in_file"}
    short_line = recon.scalar("SELECT id FROM recon_statement_lines WHERE end_to_end_id = 'E2E-1'")
    with unit_of_work(recon.factory) as session:
        resolve(session, ids["missing_in_file"][0], action=Action.MANUAL_MATCH, actor="key:1:a", threshold=10_000,
                reason="the bank's fee came off the batch", line_id=short_line)
    # The line for the batch had its own unexpected exception: resolved with it.
    stray = recon.scalar("SELECT id FROM recon_exceptions WHERE kind = 'unexpected_in_file' AND status = 'open'")
    with unit_of_work(recon.factory) as session:
        resolve(session, stray, action=Action.WRITE_OFF, actor="key:1:a", threshold=10_000, reason="unknown payer")
    assert recon.balance("bank:account:RUB") == amount - 150 + 700
    assert recon.balance("recon:bank:variance:RUB") == 150
    assert recon.balance("recon:writeoff:RUB") == -700
    assert recon.sql("SELECT DISTINCT status FROM recon_exceptions") == [("resolved",)]
    assert recon.sql("SELECT status FROM recon_settlement_batches") == [("confirmed",)]
