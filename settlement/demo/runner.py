"""The demo from start to end: start the stack, play the day, settle and reconcile,
seal and export, then read the numbers back and write the report.

:class:`Demo` leaves the stack running after :meth:`Demo.run` (``--keep-running``
shows it to a person); :meth:`Demo.stop` ends it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from settlement.demo import audit, settle
from settlement.demo.day import Keys, create_keys, play
from settlement.demo.plan import Plan, make_plan
from settlement.demo.progress import Reporter
from settlement.demo.report import write_report
from settlement.demo.stack import Options, Running, Stack
from settlement.demo.summary import Reconciliation, Summary, read_numbers

#: What the statement must produce: the rail's batch the bank never received, and the
#: credit nobody announced.
STATEMENT_EXPECTED = {"missing_in_file": 1, "unexpected_in_file": 1}


class Demo:
    def __init__(self, options: Options, reporter: Reporter) -> None:
        self.options = options
        self.reporter = reporter
        self.stack = Stack(options, reporter)
        self.keys: Keys | None = None
        self.running: Running | None = None
        self.report: Path | None = None

    def run(self) -> Summary:
        out = self.options.out
        timings: dict[str, float] = {}  # float-ok: seconds
        clock = time.monotonic()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.monotonic()
            timings[name] = round(now - clock, 2)
            clock = now

        plan = make_plan(self.options.payments, self.options.seed)
        self.running = running = self.stack.start()
        lap("start")
        summary = Summary(database=running.database, seed=plan.seed, payments_planned=len(plan.payments))
        summary.notes.extend(running.notes)
        if running.worker:
            summary.notes.append("tasks ran in a Celery worker process over the broker")
        self.keys = keys = create_keys(running.factory)
        _write_plan(out / "plan.json", plan)
        day = play(running.api_url, keys, plan, self.reporter, dialect=running.settings.database_url.split(":")[0]
                   .split("+")[0])
        summary.payout = day.payout
        lap("payments")
        settlement_day = settle.settlement_day(running.settings)
        files = settle.write_files(running.simulators, plan, day, settlement_day, out / "files",
                                   api_url=running.api_url, checkout_key=keys.checkout, settings=running.settings,
                                   reporter=self.reporter)
        statement, statement_injected = settle.write_statement(files, settlement_day, out / "files")
        _write_injected(out / "discrepancies.json", files, statement_injected)
        lap("files")
        self._reconcile(running, keys, plan, files, statement=statement, summary=summary)
        lap("reconciliation")
        self.reporter.begin("Sealing the journal and signing a checkpoint")
        size, root = audit.seal(running.factory, running.settings)
        self.reporter.end(f"{size} entries, root {root[:16]}...")
        self.reporter.begin("The auditor exports the ledger and verifies it offline")
        exported = audit.export_and_verify(running.api_url, keys.auditor, running.settings, out / "export")
        self.reporter.end(("verified" if exported.verified else "NOT verified") +
                          f": {exported.entries} entries, checkpoint {exported.tree_size}")
        summary.export = {"id": exported.export_id, "archive": str(exported.archive),
                          "public_key": str(exported.public_key), "entries": exported.entries,
                          "postings": exported.postings, "tree_size": exported.tree_size,
                          "root_hash": exported.root_hash, "verified": exported.verified,
                          "failures": exported.failures[:20]}
        lap("audit")
        read_numbers(running.factory, summary)
        summary.timings = timings
        (out / "summary.json").write_text(json.dumps(summary.as_json(), indent=2, default=str))
        self.report = write_report(out / "report.html", summary)
        return summary

    def stop(self) -> None:
        self.stack.stop()

    def _reconcile(self, running: Running, keys: Keys, plan: Plan, files: list[settle.SettlementFile], *,
                   statement: Path, summary: Summary) -> None:
        """Finance uploads each settlement file, then the statement, and runs them."""
        self.reporter.begin("Finance reconciles every file", total=len(files) + 1)
        for f in files:
            result = settle.reconcile(running.api_url, keys.finance, f.path, kind="settlement", rail=f.rail)
            summary.reconciliations.append(_line(result, dict(plan.expected_outcomes(f.rail))))
            self.reporter.advance()
        result = settle.reconcile(running.api_url, keys.finance, statement, kind="statement", rail=None)
        summary.reconciliations.append(_line(result, STATEMENT_EXPECTED))
        self.reporter.end(", ".join(f"{r.rail} {sum(r.outcomes.values())} outcomes" for r in summary.reconciliations))


def _line(result: settle.RunResult, expected: dict[str, int]) -> Reconciliation:
    return Reconciliation(result.run_id, result.kind, result.rail, result.filename, result.status, result.outcomes,
                          expected, result.error)


def _write_plan(path: Path, plan: Plan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "seed": plan.seed,
        "payments": [{"index": p.index, "rail": p.rail, "currency": p.currency, "amount_minor": p.amount,
                      "seller": p.seller, "scenario": p.scenario.value} for p in plan.payments],
        "discrepancies": [{"rail": d.rail, "kind": d.kind.value, "payment": d.payment, "delta_minor": d.delta,
                           "outcome": d.outcome} for d in plan.discrepancies],
    }, indent=2))


def _write_injected(path: Path, files: list[settle.SettlementFile], statement: list[dict[str, object]]) -> None:
    path.write_text(json.dumps({
        "settlement_files": {f.rail: {"file": f.path.name, "records": f.records, "applied": f.applied, "net": f.net}
                             for f in files},
        "statement": statement}, indent=2))
