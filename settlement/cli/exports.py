"""``settlement export`` and ``settlement verify``: what an auditor runs.

``export`` writes the journal, trial balance and account statements of a period
with a signed manifest into a new directory. ``verify DIR --public-key FILE``
checks such a directory (or its zip) offline; ``verify --database`` checks the live
database against the signed checkpoints. Both print every failure with the file
and row (or entry) it concerns, and exit 1 when anything failed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from settlement.cli.common import errors, state
from settlement.exports.dbverify import verify_database
from settlement.exports.errors import InvalidPeriod
from settlement.exports.service import ExportRequest, export, parse_rate
from settlement.exports.verify import verify_path
from settlement.journal.keys import load_signing_key, read_public_key

#: Hashes and paths are long: never wrap them.
console = Console(soft_wrap=True, highlight=False)


def _time(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidPeriod(f"--{name} {text!r} is not an ISO 8601 date or date-time", field=name) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def export_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="directory to create (must be new or empty)"),
    period_from: str | None = typer.Option(None, "--from",
                                           help="start (ISO 8601; UTC if no zone); default: the beginning"),
    period_to: str | None = typer.Option(None, "--to", help="end, exclusive; default: the latest checkpoint"),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv, jsonl or xml (SAF-T style)"),
    reporting_currency: str | None = typer.Option(None, "--reporting-currency", help="SAF-T reporting currency"),
    rate: list[str] = typer.Option([], "--rate", help="CUR=RATE: reporting units per unit of CUR (SAF-T); repeat"),
) -> None:
    """Export the ledger of a period, anchored to a signed checkpoint."""
    request = ExportRequest(fmt, _time(period_from, "from"), _time(period_to, "to"), reporting_currency,
                            dict(parse_rate(r) for r in rate))
    settings = state(ctx).settings
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=False) as bar:
        tasks: dict[str, object] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task({"journal": "journal entries", "statements": "statement lines"}.get(
                    phase, phase), total=total or None)
            bar.update(tasks[phase], completed=done, total=total or None)  # type: ignore[arg-type]

        result = export(state(ctx).factory, settings, request, out, progress=progress)
    if result.entries:
        console.print(f"exported sequence numbers {result.first_seq} to {result.last_seq} ({result.entries} entries, "
                      f"{result.postings} postings) of checkpoint {result.tree_size} into {result.directory}",
                      markup=False)
    else:
        console.print(f"nothing was recorded in the period; the export proves it against checkpoint "
                      f"{result.tree_size}, in {result.directory}", markup=False)
    for info in result.files:
        console.print(f"  {info['name']}  {info['rows']} rows  sha256 {info['sha256']}", markup=False)
    console.print(f"manifest sha256 {result.manifest_sha256}", markup=False)


def verify_command(
    ctx: typer.Context,
    directory: Path | None = typer.Argument(None, help="export directory or .zip"),
    public_key: Path | None = typer.Option(None, "--public-key", "-k", help="the journal's public key (PEM)"),
    database: bool = typer.Option(False, "--database", help="check the live database against the checkpoints"),
) -> None:
    """Verify an export offline, or the live database against the signed checkpoints."""
    settings = state(ctx).settings
    if public_key is not None:
        key = read_public_key(public_key, settings.journal_origin)
    elif database:
        key = load_signing_key(settings).public
    else:
        raise typer.BadParameter("give --public-key FILE (the journal's public key)", param_hint="--public-key")
    if database:
        if directory is not None:
            raise typer.BadParameter("--database takes no directory", param_hint="DIRECTORY")
        report = verify_database(state(ctx).factory, key)
        for finding in report.findings:
            errors.print(f"[red]FAIL[/] {escape(str(finding))}", highlight=False)
        if report.more:
            errors.print(f"... and {report.more} more", highlight=False)
        if not report.ok:
            raise typer.Exit(1)
        console.print(f"OK: {report.checked} sealed entries match checkpoint {report.tree_size} "
                      f"({report.unsealed} not sealed yet)")
        return
    if directory is None:
        raise typer.BadParameter("give the export directory, or --database", param_hint="DIRECTORY")
    result = verify_path(directory, key)
    for failure in result.failures:
        errors.print(f"[red]FAIL[/] {escape(str(failure))}", highlight=False)
    if result.more:
        errors.print(f"... and {result.more} more", highlight=False)
    if not result.ok:
        raise typer.Exit(1)
    console.print(f"OK: {result.entries} entries, {result.postings} postings, anchored to checkpoint "
                  f"{result.tree_size} (root {result.root_hash})")


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
    app.command("verify")(verify_command)
