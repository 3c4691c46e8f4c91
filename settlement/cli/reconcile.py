"""``settlement reconcile``: reconcile settlement files and bank statements, and work
through the exceptions queue.

    settlement reconcile mir register.csv --dry-run     # outcomes only, nothing booked
    settlement reconcile mir register.csv               # load, match, book (once per file)
    settlement reconcile statement camt053.xml
    settlement reconcile exceptions --status open
    settlement reconcile resolve 12 --action write-off --reason "rail confirmed the shortfall"
    settlement reconcile approve 12 --reason "checked with the acquirer" --user second.person

Actions are recorded as ``cli:<user>`` (``--user``, default: the login name).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from adapters.registry import default_registry
from settlement.cli.common import console, errors, state
from settlement.db import unit_of_work
from settlement.money import format_minor
from settlement.reconciliation import runner
from settlement.reconciliation.models import FileKind, Outcome, RunStatus
from settlement.reconciliation.service import files, queue, reports, resolve, runs


class _RailOrCommand(TyperGroup):
    """``settlement reconcile <rail> FILE``: a first word naming an installed rail runs
    the hidden ``rail`` command with it."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:  # Typer's vendored click Context
        if args and args[0] not in self.commands and args[0] in default_registry().names():
            return "rail", self.commands["rail"], args
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=_RailOrCommand, no_args_is_help=True,
                  help="Reconcile settlement files (settlement reconcile RAIL FILE) and bank statements; "
                       "the exceptions queue.")
UserOption = typer.Option(None, "--user", "-u", help="who acts (default: the login name)")


def _actor(user: str | None) -> str:
    return f"cli:{user or getpass.getuser()}"


@app.command("rail", hidden=True)
def reconcile_rail(ctx: typer.Context, rail: str = typer.Argument(..., help="mir, unionpay, alipay..."),
                   path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
                   dry_run: bool = typer.Option(False, "--dry-run", help="compute outcomes, book nothing"),
                   user: str | None = UserOption) -> None:
    """Reconcile a rail's settlement file."""
    _reconcile(ctx, FileKind.SETTLEMENT, rail, path, dry_run, _actor(user))


@app.command("statement")
def reconcile_statement(ctx: typer.Context,
                        path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
                        dry_run: bool = typer.Option(False, "--dry-run", help="compute outcomes, book nothing"),
                        user: str | None = UserOption) -> None:
    """Reconcile a bank statement (camt.053 or 1CClientBankExchange) against the rails'
    net settlement batches."""
    _reconcile(ctx, FileKind.STATEMENT, None, path, dry_run, _actor(user))


def _reconcile(ctx: typer.Context, kind: FileKind, rail: str | None, path: Path, dry_run: bool,
               actor: str) -> None:
    cli = state(ctx)
    factory, settings = cli.factory, cli.settings
    with unit_of_work(factory) as session, path.open("rb") as source:
        registered = files.register_file(session, settings, kind=kind, rail=rail, source=source,
                                         filename=path.name, actor=actor)
        existing = None if dry_run else runs.live_run_of(session, registered.file.id)
        if existing is not None and existing.status == RunStatus.COMPLETED.value:
            console.print(escape(f"{path.name} is file {registered.file.id}, already reconciled by run "
                                 f"{existing.id}: nothing applied again"))
            _summary(existing.id, dict(existing.summary))
            return
        run = existing or runs.create_run(session, file_id=registered.file.id, dry_run=dry_run, actor=actor)
        run_id = run.id
    if not registered.created:
        console.print(escape(f"{path.name}: these bytes are file {registered.file.id} already; resuming its run "
                             f"{run_id}" if existing else f"{path.name}: these bytes are file {registered.file.id} "
                             "already"))
    with _bar() as (progress, tasks):
        def report(step: str, done: int, total: int) -> None:
            progress.update(tasks[step], completed=done, total=max(total, 1))

        summary = runner.execute(factory, settings, run_id, progress=report)
    _summary(run_id, summary)
    with unit_of_work(factory) as session:
        run = runs.get_run(session, run_id)
        if run.status == RunStatus.FAILED.value:
            errors.print(f"[bold red]error[/] {escape(f'[{run.error_code}]')}: {escape(run.error_message or '')}",
                         highlight=False)
            raise typer.Exit(1)


@contextmanager
def _bar() -> Iterator[tuple[Progress, dict[str, TaskID]]]:
    """A bar per step: load (bytes read), match, book (chunks)."""
    with Progress(TextColumn("{task.description:<6}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        yield progress, {step: progress.add_task(step, total=1) for step in ("load", "match", "book")}


def _summary(run_id: int, summary: dict[str, Any]) -> None:
    file = summary.get("file", {})
    table = Table(title=f"run {run_id}: {file.get('filename', '')}" + (" (dry run)" if summary.get("dry_run") else ""))
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_column("amount (gross or expected)", justify="right")
    amounts = summary.get("amounts", {})
    for outcome in Outcome:
        count = summary.get("outcomes", {}).get(outcome.value, 0)
        money = ", ".join(f"{format_minor(v, c)} {c}" for c, v in sorted(amounts.get(outcome.value, {}).items()))
        table.add_row(outcome.value.replace("_", " "), str(count), money)
    table.add_section()
    table.add_row("records in file", str(file.get("records", 0)), "")
    table.add_row("unreadable lines", str(file.get("errors", 0)), "")
    table.add_row("matches booked", str(summary.get("matches_booked", 0)), f"{summary.get('entries', 0)} entries")
    table.add_row("expectations still open", str(summary.get("expectations_open", 0)), "")
    console.print(table)
    if file.get("error_code"):
        errors.print(escape(f"file unusable [{file['error_code']}]: {file.get('error_message')}"), highlight=False)


@app.command("runs")
def list_runs(ctx: typer.Context, rail: str | None = typer.Option(None), limit: int = typer.Option(20)) -> None:
    """Recent runs."""
    table = Table("run", "kind", "rail", "file", "dry", "status", "cycle", "created")
    with unit_of_work(state(ctx).factory) as session:
        for r in runs.list_runs(session, rail=rail, limit=limit):
            table.add_row(str(r.id), r.kind, r.rail or "", str(r.file_id), "yes" if r.dry_run else "", r.status,
                          str(r.cycle_date or ""), r.created_at.isoformat(timespec="seconds"))
    console.print(table)


@app.command("show")
def show_run(ctx: typer.Context, run_id: int) -> None:
    """A run's summary and steps."""
    with unit_of_work(state(ctx).factory) as session:
        run = runs.get_run(session, run_id)
        steps = runs.steps(session, run_id)
        console.print(f"run {run.id}: {run.status}" + (f" [{run.error_code}] {run.error_message}"
                                                         if run.error_code else ""))
        for s in steps:
            console.print(f"  {s.step:<6} {s.status:<8} {s.done}/{s.total}")
        _summary(run.id, dict(run.summary or {}))


@app.command("resume")
def resume(ctx: typer.Context, run_id: int) -> None:
    """Execute a run that stopped (it continues after its last committed step)."""
    cli = state(ctx)
    with _bar() as (progress, tasks):
        summary = runner.execute(cli.factory, cli.settings, run_id, progress=lambda step, done, total: progress.update(
            tasks[step], completed=done, total=max(total, 1)))
    _summary(run_id, summary)


@app.command("report")
def report(ctx: typer.Context, run_id: int,
           csv_path: Path = typer.Option(..., "--csv", help="write the CSV here")) -> None:
    """Write a run's outcomes as CSV."""
    with unit_of_work(state(ctx).factory) as session, csv_path.open("w", encoding="utf-8", newline="") as out:
        runs.get_run(session, run_id)
        for chunk in reports.csv_lines(session, run_id):
            out.write(chunk)
    console.print(f"wrote {csv_path}")


@app.command("exceptions")
def list_exceptions(ctx: typer.Context, status: str | None = typer.Option("open"),
                    kind: str | None = typer.Option(None), rail: str | None = typer.Option(None),
                    assigned_to: str | None = typer.Option(None, "--assigned-to"),
                    limit: int = typer.Option(50)) -> None:
    """The exceptions queue (open ones by default; --status '' for all)."""
    table = Table("id", "kind", "status", "rail", "amount", "run", "assigned to", "resolution")
    with unit_of_work(state(ctx).factory) as session:
        for e in queue.list_exceptions(session, status=status or None, kind=kind, rail=rail,
                                       assigned_to=assigned_to, limit=limit):
            table.add_row(str(e.id), e.kind, e.status, e.rail, f"{format_minor(e.amount, e.currency)} {e.currency}",
                          str(e.run_id), e.assigned_to or "", e.resolution or "")
    console.print(table)


@app.command("exception")
def show_exception(ctx: typer.Context, exception_id: int) -> None:
    """One exception and its history."""
    with unit_of_work(state(ctx).factory) as session:
        e = queue.get_exception(session, exception_id)
        console.print(f"exception {e.id}: {e.kind}, {e.status}, {format_minor(e.amount, e.currency)} {e.currency} "
                      f"(rail {e.rail}, run {e.run_id}, expectation {e.expectation_id}, record {e.item_id})")
        for a in queue.actions(session, exception_id):
            console.print(f"  {a.created_at.isoformat(timespec='seconds')} {a.actor}: {a.action}: {a.reason}")


@app.command("assign")
def assign(ctx: typer.Context, exception_id: int, to: str = typer.Option(..., "--to"),
           reason: str | None = typer.Option(None), user: str | None = UserOption) -> None:
    """Assign an exception to someone."""
    with unit_of_work(state(ctx).factory) as session:
        queue.assign(session, exception_id, assignee=to, actor=_actor(user), reason=reason)
    console.print(f"exception {exception_id} assigned to {to}")


@app.command("resolve")
def resolve_exception(ctx: typer.Context, exception_id: int,
                      action: str = typer.Option(..., "--action", help="match, write-off or ignore"),
                      reason: str = typer.Option(..., "--reason", help="why (required)"),
                      expectation: int | None = typer.Option(None, help="manual match: the expectation"),
                      item: int | None = typer.Option(None, help="manual match: the file record"),
                      line: int | None = typer.Option(None, help="manual match: the statement line"),
                      batch: int | None = typer.Option(None, help="manual match: the settlement batch"),
                      user: str | None = UserOption) -> None:
    """Resolve an exception: manual match, write-off or ignore."""
    choice = {"match": resolve.Action.MANUAL_MATCH, "manual-match": resolve.Action.MANUAL_MATCH,
              "write-off": resolve.Action.WRITE_OFF, "ignore": resolve.Action.IGNORE}.get(action)
    if choice is None:
        raise typer.BadParameter("--action is match, write-off or ignore")
    cli = state(ctx)
    with unit_of_work(cli.factory) as session:
        e = resolve.resolve(session, exception_id, action=choice, actor=_actor(user), reason=reason,
                            threshold=cli.settings.writeoff_approval_threshold, expectation_id=expectation,
                            item_id=item, line_id=line, batch_id=batch)
        status, entry = e.status, e.entry_id
    note = " (waiting for a second finance user's approval)" if status == "pending_approval" else ""
    console.print(f"exception {exception_id}: {status}{note}" + (f", entry {entry}" if entry else ""))


@app.command("approve")
def approve(ctx: typer.Context, exception_id: int, reason: str = typer.Option(..., "--reason"),
            user: str | None = UserOption) -> None:
    """Approve a pending write-off (someone else's)."""
    _decide(ctx, exception_id, True, reason, user)


@app.command("reject")
def reject(ctx: typer.Context, exception_id: int, reason: str = typer.Option(..., "--reason"),
           user: str | None = UserOption) -> None:
    """Reject a pending write-off (someone else's)."""
    _decide(ctx, exception_id, False, reason, user)


def _decide(ctx: typer.Context, exception_id: int, approve: bool, reason: str, user: str | None) -> None:
    with unit_of_work(state(ctx).factory) as session:
        e = resolve.decide(session, exception_id, approve=approve, actor=_actor(user), reason=reason)
        status, entry = e.status, e.entry_id
    console.print(f"exception {exception_id}: {status}" + (f", entry {entry}" if entry else ""))
