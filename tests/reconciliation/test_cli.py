"""``settlement reconcile``: a rail's file (dry run, then for real, then again), a bank
statement, a bad file, and the exceptions queue with maker-checker between two users."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from settlement.cli import build_app, common
from tests.conftest import Database
from tests.reconciliation.factories import DAY, Harness, Op, ops, statement_camt, write_file


def _run(database: Database, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(build_app(), ["--database-url", database.url, "reconcile", *args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("SETTLEMENT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SETTLEMENT_WRITEOFF_APPROVAL_THRESHOLD", "10000")
    # Wide enough that tables never wrap a word (the consoles exist before this test).
    widths = [(c, c._width) for c in (common.console, common.errors)]
    for console, _ in widths:
        console.width = 200
    yield tmp_path
    for console, width in widths:
        console._width = width


def _count(output: str, label: str) -> int:
    found = re.search(rf"{label}\s*│\s*(\d+)", output)
    assert found, output
    return int(found.group(1))


def test_reconcile_a_rail_file_then_a_statement(database: Database, recon: Harness, cli_env: Path) -> None:
    a = ops("mir", 3)
    gone = Op("mir", "gone", "900000000001", "900000000002", 2_000_000, day=DAY - dt.timedelta(days=10))
    recon.expect(*a, gone)
    records = [a[0].record(), a[1].record(), a[2].record(fee_delta=2)]
    register = cli_env / "mir-20261119.csv"
    register.write_bytes(write_file("mir", records))

    dry = _run(database, "mir", str(register), "--dry-run")
    assert "(dry run)" in dry
    assert (_count(dry, "matched"), _count(dry, "fee variance"), _count(dry, "missing in file")) == (2, 1, 1)
    assert recon.entries() == 0
    live = _run(database, "mir", str(register), "--user", "alice")
    assert _count(live, "matches booked") == 3
    assert "load" in live
    assert "book" in live
    again = _run(database, "mir", str(register))
    assert "already reconciled by run 2: nothing applied again" in again
    assert recon.entries() == 1

    statement = cli_env / "camt053.xml"
    statement.write_bytes(statement_camt([(sum(r.net for r in records), DAY + dt.timedelta(days=1), "E2E")]))
    confirmed = _run(database, "statement", str(statement))
    assert _count(confirmed, "matched") == 1
    assert recon.balance("bank:account:RUB") == sum(r.net for r in records)

    listed = _run(database, "exceptions")
    assert "missing_in_file" in listed
    exception_id = recon.scalar("SELECT id FROM recon_exceptions WHERE kind = 'missing_in_file'")
    pending = _run(database, "resolve", str(exception_id), "--action", "write-off", "--reason",
                   "the acquirer has no trace of it", "--user", "alice")
    assert "pending_approval" in pending
    refused = _run(database, "approve", str(exception_id), "--reason", "ok", "--user", "alice", code=1)
    assert "recon_writeoff_self_approval" in refused
    done = _run(database, "approve", str(exception_id), "--reason", "checked", "--user", "bob")
    assert "resolved" in done
    history = _run(database, "exception", str(exception_id))
    assert "cli:alice: write_off_requested" in history
    assert "cli:bob: write_off_approved" in history
    assert recon.balance("recon:writeoff:RUB") == gone.amount
    shown = _run(database, "show", "2")
    assert "book   done" in shown
    report = cli_env / "run2.csv"
    _run(database, "report", "2", "--csv", str(report))
    assert report.read_text().startswith("match_id,outcome,rule")


def test_a_bad_file_fails_clearly(database: Database, recon: Harness, cli_env: Path) -> None:
    bad = cli_env / "garbage.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not a register")
    out = _run(database, "mir", str(bad), code=1)
    assert "recon_file_unusable" in out
    assert "line 1" in out
    assert recon.entries() == 0
    unknown = CliRunner().invoke(build_app(), ["--database-url", database.url, "reconcile", "visa", str(bad)])
    assert unknown.exit_code == 2
    assert "No such command" in unknown.output
