"""``settlement demo`` run as a person runs it (the installed command, in a process of its
own), its numbers then checked against the database, the files it wrote and the
export, independently of what the demo itself concluded: trial balance zero per
currency, every run's outcomes exactly the injected discrepancies (the rest matched,
no expectation left unsettled but the sales left out of the files), the exceptions
left open exactly those, the export verified offline.

* on its default, the embedded one: a SQLite file in the demo's folder, tasks inline,
  nothing else running (and the same numbers in ``summary.json`` and the report);
* on PostgreSQL with a fresh database, the Celery worker the demo starts and, as on a
  machine where no broker is running, a Redis server the demo starts for it;
* with ``--keep-running``: the API, the console and the simulators stay up with the
  keys it prints, until Ctrl-C stops everything.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
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
SETTLEMENT = Path(sys.executable).with_name("settlement")


def demo_command(out: Path, *args: str) -> list[str]:
    return [str(SETTLEMENT), "demo", "--payments", PAYMENTS, "--seed", SEED, "--out", str(out), *args]


def demo_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SETTLEMENT_")}
    return {**env, **settings}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def run_demo(out: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(demo_command(out, *args), env=env or demo_env(), cwd=out.parent, capture_output=True,
                          text=True, timeout=300, check=False)
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
    """The configured broker does not answer (as on a machine with none running): the
    demo starts a Redis server of its own for its worker, and stops both at the end."""
    out = tmp_path / "demo"
    nobody = f"redis://127.0.0.1:{closed_port()}/0"
    done = run_demo(out, "--database-url", pg_database.url, env=demo_env(SETTLEMENT_BROKER_URL=nobody))
    pg_database.engine.dispose()
    check_numbers(database_numbers(pg_database.url), injected(out))
    check_export(out)
    worker_log = (out / "logs" / "worker.log").read_text()
    assert "settlement.reconciliation.run_reconciliation" in worker_log
    assert "settlement.exports.run" in worker_log
    assert "verified" in done.stdout
    notes = json.loads((out / "summary.json").read_text())["notes"]
    own = next(n for n in notes if n.startswith("no broker answered: the demo started its own Redis server"))
    port = int(re.search(r"127\.0\.0\.1:(\d+)", own).group(1))  # type: ignore[union-attr]
    assert "tasks ran in a Celery worker process over the broker" in notes
    assert not answers(port)   # stopped with the demo
    assert "Ready to accept connections" in (out / "logs" / "redis.log").read_text()


def test_keep_running_leaves_the_service_up_until_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    demo = subprocess.Popen(demo_command(out, "--keep-running"), env=demo_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(300, demo.kill)
    watchdog.start()
    try:
        assert demo.stdout is not None
        printed = ""
        for line in demo.stdout:
            printed += line
            if "These keys belong" in line:
                break
        assert "Still running" in printed, printed[-4000:]
        printed = printed[printed.index("Still running"):]
        api = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", printed).group(1)  # type: ignore[union-attr]
        keys = dict(re.findall(r"(finance|auditor|checkout) key\s+(\S+)", printed))
        assert len(re.findall(r"finance key\s+\S+", printed)) == 2   # a second user approves write-offs
        simulators = [int(p) for p in re.findall(r"(?:mir|unionpay|alipay)\s+\S*?127\.0\.0\.1:(\d+)", printed)]
        assert len(simulators) == 3
        assert all(answers(p) for p in simulators)
        with httpx.Client(base_url=api, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            runs = client.get("/v1/reconciliation/runs", headers={"Authorization": f"Bearer {keys['auditor']}"})
            assert runs.status_code == 200, runs.text
            assert len(runs.json()["data"]) >= 4
            payments = client.get("/v1/payments", headers={"Authorization": f"Bearer {keys['checkout']}"})
            assert payments.status_code == 200
            assert payments.json()["data"]
            sign_in = client.get("/console/sign-in")
            assert sign_in.status_code == 200
            assert "<form" in sign_in.text
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
    finally:
        watchdog.cancel()
        if demo.poll() is None:
            demo.kill()
    api_port = int(api.rsplit(":", 1)[1])
    assert not answers(api_port)
    assert not any(answers(p) for p in simulators)


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
