"""``settlement demo``: a marketplace day end to end on this machine, in one command.

    settlement demo                       # a SQLite file, tasks inline, 300 payments
    settlement demo --payments 60 --seed 3
    settlement demo --database-url postgresql+psycopg://postgres@127.0.0.1:5432/demo --broker-url redis://...
    settlement demo --keep-running        # then explore the API and the console

Everything it makes goes into one new folder (``--out``): the settlement files and the
bank statement, the export and its public key, ``summary.json`` and ``report.html``.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from settlement.money import format_minor

app = typer.Typer(help="Play a marketplace day end to end and report it.")
console = Console(highlight=False)


class RichReporter:
    """Steps as a live line with a bar, then one line each once done."""

    def __init__(self, out: Console) -> None:
        self.console = out
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.title = ""
        self.started = 0.0  # float-ok: a clock reading

    def begin(self, title: str, total: int | None = None) -> None:
        self.end()
        self.title, self.started = title, time.monotonic()
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=self.console, transient=True)
        self.progress.start()
        self.task = self.progress.add_task(title, total=total)

    def advance(self, units: int = 1) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, units)

    def end(self, detail: str = "") -> None:
        if self.progress is None:
            return
        self.progress.stop()
        self.progress = None
        took = time.monotonic() - self.started
        suffix = f": {detail}" if detail else ""
        self.console.print(f"[green]✓[/] {escape(self.title)}{escape(suffix)} [dim]({took:.1f} s)[/]")

    def note(self, text: str) -> None:
        self.console.print(f"[yellow]![/] {escape(text)}")


@app.callback(invoke_without_command=True)
def demo(payments: int = typer.Option(300, "--payments", "-n", min=30, help="payments in the day (at least 30)"),
         seed: int = typer.Option(7, "--seed", help="same seed, same day: payments and discrepancies"),
         database_url: str | None = typer.Option(
             None, "--database-url", help="run on this database instead of a new SQLite file in the demo's "
                                         "folder (a PostgreSQL database that does not exist is created)"),
         broker_url: str | None = typer.Option(
             None, "--broker-url", help="Celery broker for a real worker (default with --database-url: "
                                        "SETTLEMENT_BROKER_URL, else redis://127.0.0.1:6379/0; when neither "
                                        "answers, a Redis of the demo's own if redis-server is installed)"),
         keep_running: bool = typer.Option(False, "--keep-running",
                                           help="leave the API, the console and the simulators up until Ctrl-C"),
         out: Path | None = typer.Option(None, "--out", help="folder for everything the demo writes "
                                                             "(default: a new settlement-demo-* folder here)")) -> None:
    """Play a marketplace day through the real service: sellers in RUB and CNY, payments
    over Mir, UnionPay and Alipay with FX, captures, refunds, voids and a payout; the rails'
    settlement files with injected discrepancies and a bank statement, reconciled; the
    journal sealed and exported, the export verified offline. Ends with a summary and an
    HTML report."""
    from settlement.demo.errors import DemoOutFolderNotEmpty
    from settlement.demo.runner import Demo
    from settlement.demo.stack import Options

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kombu").setLevel(logging.ERROR)
    folder = out or Path.cwd() / f"settlement-demo-{dt.datetime.now(dt.UTC).astimezone():%Y%m%d-%H%M%S}"
    if folder.exists() and any(folder.iterdir()):
        raise DemoOutFolderNotEmpty(f"{folder} is not empty; give --out a new folder", folder=str(folder))
    broker = _broker(broker_url, database_url)
    options = Options(payments=payments, seed=seed, database_url=database_url, broker_url=broker or "",
                      own_broker=broker is None, keep_running=keep_running, out=folder.resolve())
    reporter = RichReporter(console)
    started = time.monotonic()
    console.print(f"[bold]settlement demo[/]: {payments} payments, seed {seed}, folder {escape(str(options.out))}")
    runner = Demo(options, reporter)
    try:
        summary = runner.run()
        reporter.end()
        _print_summary(summary, time.monotonic() - started)
        console.print(f"\nReport: [bold]{escape(str(runner.report))}[/]")
        if keep_running:
            _keep_running(runner)
    finally:
        reporter.end()
        runner.stop()
    if not (summary.balanced and summary.export.get("verified") and summary.reconciled_as_injected):
        console.print("[red]The demo's checks failed[/]: see the summary above.")
        raise typer.Exit(1)


def _broker(given: str | None, database_url: str | None) -> str | None:
    """The broker for a real worker: given, or with a PostgreSQL database the
    configured one (``SETTLEMENT_BROKER_URL``), else a local Redis on its usual port,
    if it answers. ``None``: none answers, the demo starts a Redis of its own. ``""``:
    no worker (the embedded default runs tasks inline)."""
    if given is not None:
        return given
    if not database_url or not database_url.startswith("postgres"):
        return ""
    import os

    from settlement.tasks.app import broker_reachable

    configured = os.environ.get("SETTLEMENT_BROKER_URL", "")
    if configured:
        # The broker the operator configured, or one of the demo's own: never another
        # server that happens to listen on the usual port.
        return configured if broker_reachable(configured) else None
    usual = "redis://127.0.0.1:6379/0"
    return usual if broker_reachable(usual) else None


def _print_summary(summary: object, seconds: float) -> None:  # float-ok: elapsed time
    from settlement.demo.summary import Summary

    assert isinstance(summary, Summary)
    s = summary
    console.print(f"\n[bold]Summary[/] ({s.database}; {seconds:.1f} s)")
    rails = Table("rail", "payments", "states", title="Payments per rail", title_justify="left")
    for r in s.rails:
        rails.add_row(r.rail, str(r.payments), ", ".join(f"{k} {n}" for k, n in r.states.items()))
    console.print(rails)
    volumes = Table("currency", "payments", "authorized", "captured", "refunded", title="Volumes per currency",
                    title_justify="left")
    for v in s.volumes:
        volumes.add_row(v.currency, str(v.payments), format_minor(v.authorized, v.currency),
                        format_minor(v.captured, v.currency), format_minor(v.refunded, v.currency))
    console.print(volumes)
    recon = Table("rail and file", "outcomes", "injected", "check", title="Reconciliation", title_justify="left")
    for line in s.reconciliations:
        check = ("[green]as injected[/]" if line.as_injected else
                 f"[red]{escape(line.error or 'differs')}[/]")
        recon.add_row(f"{line.rail}\n[dim]{escape(line.filename)}[/]",
                      "\n".join(f"{k.replace('_', ' ')} {n}" for k, n in sorted(line.outcomes.items())),
                      "\n".join(f"{k.replace('_', ' ')} {n}" for k, n in sorted(line.expected.items())), check)
    console.print(recon)
    exceptions = ", ".join(f"{k} {n}" for k, n in s.exceptions.items()) or "none"
    console.print(f"Exceptions left for people: {escape(exceptions)}")
    trial = Table("currency", "debits", "credits", "difference", title="Trial balance", title_justify="left")
    for t in s.trial_balance:
        trial.add_row(t.currency, format_minor(t.debits, t.currency), format_minor(t.credits, t.currency),
                      ("[green]" if t.difference == 0 else "[red]") + format_minor(t.difference, t.currency) + "[/]")
    console.print(trial)
    if s.payout:
        console.print(f"Payout: {s.payout.get('amount')} {s.payout.get('currency')}, {s.payout.get('state')}")
    e = s.export
    verdict = "[green]verified[/]" if e.get("verified") else "[red]NOT verified[/]"
    console.print(f"Export: {verdict}, {e.get('entries')} entries, {e.get('postings')} postings, checkpoint "
                  f"{e.get('tree_size')}; archive {escape(str(e.get('archive')))}")
    for failure in e.get("failures", []):
        console.print(f"  [red]FAIL[/] {escape(str(failure))}")
    for note in s.notes:
        console.print(f"Note: {escape(note)}")


def _keep_running(runner: object) -> None:
    from settlement.demo.runner import Demo
    from settlement.demo.stack import simulator_address

    assert isinstance(runner, Demo)
    assert runner.running is not None
    assert runner.keys is not None
    running, keys = runner.running, runner.keys
    console.print("\n[bold]Still running[/] (Ctrl-C stops everything):")
    console.print(f"  API          {running.api_url}  (OpenAPI: {running.api_url}/docs)")
    console.print(f"  console      {running.api_url}/console/")
    for name, simulator in running.simulators.items():
        console.print(f"  {name:<12} {simulator_address(simulator)}")
    console.print(f"  finance key  {keys.finance}")
    console.print(f"  finance key  {keys.finance_second}  (a second finance user: approves write-offs)")
    console.print(f"  auditor key  {keys.auditor}")
    console.print(f"  checkout key {keys.checkout}")
    console.print("  These keys belong to this demo's database only.")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    console.print("stopping")
