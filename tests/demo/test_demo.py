"""``settlement demo`` run as a person runs it (the installed command, in a process of its
own), its numbers then checked against the database, the files it wrote and the
export, independently of what the demo itself concluded: trial balance zero per
currency, every run's outcomes exactly the injected discrepancies (the rest matched,
no expectation left unsettled but the sales left out of the files), the exceptions
left open exactly those, the export verified offline.

* on its default, the embedded one: a SQLite file in the demo's folder, tasks inline,
  nothing else running (and the same numbers in ``summary.json`` and the report);
* on PostgreSQL with a fresh database, a Redis broker and the Celery worker the demo
  starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import text
from typer.testing import CliRunner

from settlement.cli import build_app
from settlement.db import make_engine, make_session_factory
from settlement.demo.stack import JOURNAL_ORIGIN
from settlement.exports.verify import verify_path
from settlement.journal.keys import read_public_key
from tests.conftest import Database

PAYMENTS = "30"
#: A day whose 30 payments include Alipay pre-authorizations captured in full and in two
#: parts, a void and refunds, and UnionPay captures in two parts.
SEED = "188"
BROKER = os.environ.get("SETTLEMENT_TEST_DEMO_REDIS_URL", "redis://127.0.0.1:6379/12")
SETTLEMENT = Path(sys.executable).with_name("settlement")


def run_demo(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEMENT_")}
    done = subprocess.run([str(SETTLEMENT), "demo", "--payments", PAYMENTS, "--seed", SEED, "--out", str(out),
                           *args], env=env, cwd=out.parent, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


def injected(out: Path) -> dict[str, Counter[str]]:
    """Outcome -> count the demo planned, per rail and for the bank, from the files it wrote."""
    plan = json.loads((out / "plan.json").read_text())
    expected: dict[str, Counter[str]] = {}
    for d in plan["discrepancies"]:
        expected.setdefault(d["rail"], Counter())[d["outcome"]] += 1
    applied = json.loads((out / "discrepancies.json").read_text())
    for rail, written in applied["settlement_files"].items():
        assert len(written["applied"]) == sum(expected[rail].values()), rail
    expected["bank"] = Counter(s["outcome"] for s in applied["statement"])
    return expected


def check_export(out: Path) -> None:
    """The archive verifies offline with the public key the API published."""
    archive = next((out / "export").glob("settlement-export-*.zip"))
    key = read_public_key(out / "export" / "journal-public-key.pem", JOURNAL_ORIGIN)
    report = verify_path(archive, key)
    assert report.ok, [str(f) for f in report.failures]
    assert report.entries > 0


def database_numbers(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            def rows(sql: str) -> list[Any]:
                return list(session.execute(text(sql)).all())

            return {
                "trial": {c: (int(d), int(cr)) for c, d, cr in rows(
                    "SELECT currency, sum(debits_posted), sum(credits_posted) FROM ledger_accounts GROUP BY currency")},
                "pending": int(rows("SELECT COALESCE(sum(debits_pending + credits_pending), 0) "
                                    "FROM ledger_accounts")[0][0]),
                "runs": [(int(r), str(rail or "bank"), str(kind)) for r, rail, kind in rows(
                    "SELECT id, rail, kind FROM recon_runs WHERE NOT dry_run AND status = 'completed' ORDER BY id")],
                "outcomes": {(int(r), str(o)): int(n) for r, o, n in rows(
                    "SELECT run_id, outcome, count(*) FROM recon_matches GROUP BY run_id, outcome")},
                # Unsettled: no file line claims the expectation (runs.UNSETTLED).
                "unsettled": {str(rail): int(n) for rail, n in rows(
                    "SELECT e.rail, count(*) FROM recon_expectations e WHERE NOT EXISTS (SELECT 1 FROM "
                    "recon_match_expectations m WHERE m.expectation_id = e.id AND m.claimed) GROUP BY e.rail")},
                "open_exceptions": int(rows("SELECT count(*) FROM recon_exceptions WHERE status = 'open'")[0][0]),
                "payments": {str(rail): int(n) for rail, n in rows(
                    "SELECT rail, count(*) FROM payments GROUP BY rail")},
            }
    finally:
        engine.dispose()


def check_numbers(numbers: dict[str, Any], expected: dict[str, Counter[str]]) -> None:
    """The database's numbers are what the demo played and injected, exactly."""
    assert set(numbers["trial"]) == {"CNY", "RUB"}
    for currency, (debits, credits) in numbers["trial"].items():
        assert debits == credits > 0, currency
    assert numbers["pending"] == 0
    assert set(numbers["payments"]) == {"mir", "unionpay", "alipay"}
    assert sum(numbers["payments"].values()) == int(PAYMENTS)
    assert [rail for _, rail, _ in numbers["runs"]] == ["mir", "unionpay", "alipay", "bank"]
    for run_id, rail, _kind in numbers["runs"]:
        outcomes = {o: n for (r, o), n in numbers["outcomes"].items() if r == run_id}
        matched = outcomes.pop("matched", 0)
        assert Counter(outcomes) == expected[rail], rail
        assert matched > 0
        if rail != "bank":
            # Every expectation of the rail found its line, except the sales left out of the file.
            assert numbers["unsettled"].get(rail, 0) == expected[rail]["missing_in_file"], rail
    assert numbers["open_exceptions"] == sum(
        n for c in expected.values() for o, n in c.items() if o in (
            "amount_mismatch", "missing_in_file", "unexpected_in_file", "duplicate"))


def test_demo_on_its_default_sqlite_file(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = run_demo(out)
    database = out / "settlement.db"
    assert database.is_file()
    expected = injected(out)
    check_numbers(database_numbers(f"sqlite:///{database}"), expected)
    # Alipay's pre-authorizations were captured (one in two parts) and reconciled like the rest.
    plan = json.loads((out / "plan.json").read_text())
    assert {"capture", "two_captures"} <= {p["scenario"] for p in plan["payments"] if p["rail"] == "alipay"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["database"] == f"SQLite {database}"
    assert summary["balanced"]
    assert summary["reconciled_as_injected"]
    assert len(summary["reconciliations"]) == 4
    for run in summary["reconciliations"]:
        outcomes = {k: v for k, v in run["outcomes"].items() if k != "matched"}
        assert Counter(outcomes) == expected[run["rail"]], run["rail"]
    assert summary["export"]["verified"]
    check_export(out)
    report = (out / "report.html").read_text()
    assert report.startswith("<!doctype html>")
    for absent in ("<script", "http://", "https://"):   # self-contained: nothing runs, nothing is fetched
        assert absent not in report
    for shown in ("balanced", "verified", "Trial balance", "Exceptions left for people"):
        assert shown in report
    assert report.count("as injected") == 4
    assert str(out / "report.html") in done.stdout.replace("\n", "")
    assert "tasks ran in a Celery worker" not in done.stdout


def test_demo_on_postgresql_with_a_worker(pg_database: Database, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    done = run_demo(out, "--database-url", pg_database.url, "--broker-url", BROKER)
    pg_database.engine.dispose()
    check_numbers(database_numbers(pg_database.url), injected(out))
    check_export(out)
    worker_log = (out / "logs" / "worker.log").read_text()
    assert "settlement.reconciliation.run_reconciliation" in worker_log
    assert "settlement.exports.run" in worker_log
    assert "verified" in done.stdout


def test_refuses_an_occupied_folder_and_too_few_payments(tmp_path: Path) -> None:
    (tmp_path / "occupied").write_text("x")
    runner = CliRunner()
    taken = runner.invoke(build_app(), ["demo", "--out", str(tmp_path)])
    assert taken.exit_code == 1
    assert "demo_out_not_empty" in taken.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied"]
    few = runner.invoke(build_app(), ["demo", "--payments", "29", "--out", str(tmp_path / "new")])
    assert few.exit_code == 2
    assert not (tmp_path / "new").exists()
