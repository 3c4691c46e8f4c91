"""Writing an export: the journal, the trial balance and the account statements
of a period (or as of a time), in one format, anchored to a signed checkpoint.

Steps:

1. seal what is committed and sign a checkpoint (refused without a signing key);
2. in one snapshot, refuse a period that is not wholly in the checkpoint, choose
   the run of sequence numbers [a, b] that holds every entry recorded in the
   period (an entry recorded just outside it, inside that run, is exported too:
   its ``recorded_at`` shows it, and the trial balance leaves it out), and stream
   the journal rows, then the trial balance, then the statements;
3. write the manifest (files, hashes, checkpoint, the tree nodes outside [a, b])
   and sign it.

Files are written into a temporary directory moved into place at the end, so a
failed export leaves nothing behind. Memory does not grow with the export: rows
stream from server-side cursors to the files; per account totals are kept.

Trial balance rule: opening = posted debits - credits of entries recorded before
``from``; movements = posted debits and credits recorded in [from, to); closing =
opening + debits - credits. Pending postings (holds) appear in the journal only.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work
from settlement.db.types import utcnow
from settlement.exports import manifest, pgcsv
from settlement.exports.errors import (
    ExportDirectoryNotEmpty,
    InvalidExchangeRate,
    InvalidExportFormat,
    InvalidPeriod,
    JournalEmpty,
    MissingExchangeRate,
    PeriodNotSealed,
    PeriodOpen,
)
from settlement.exports.query import ExportQueries
from settlement.exports.rows import (
    FORMATS,
    JOURNAL,
    STATEMENTS,
    TRIAL_BALANCE,
    BalanceLine,
    PostingFields,
    StatementLine,
    file_name,
)
from settlement.exports.saft import SaftWriter, rate_text
from settlement.exports.writers import COLUMNS, CsvWriter, JsonLinesWriter, ReportWriter
from settlement.journal import canonical, merkle
from settlement.journal.jobs import checkpoint_now
from settlement.journal.keys import SigningKey, load_signing_key
from settlement.journal.service import Journal
from settlement.ledger.models import AccountType
from settlement.money import apply_rate, check_currency

#: phase ("journal", "statements"), rows done, rows expected (entries for the journal).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExportRequest:
    """What to export. Times are aware; ``rates`` map a currency to reporting-currency
    units per unit (SAF-T only)."""

    format: str
    period_from: dt.datetime | None = None
    period_to: dt.datetime | None = None
    reporting_currency: str | None = None
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def check(self) -> None:
        if self.format not in FORMATS:
            raise InvalidExportFormat(f"format must be one of {', '.join(FORMATS)}", format=str(self.format))
        for name in ("period_from", "period_to"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, dt.datetime) or value.tzinfo is None):
                raise InvalidPeriod(f"{name} must be a time with a zone", field=name)
        if self.period_from and self.period_to and self.period_from >= self.period_to:
            raise InvalidPeriod("from must be before to", field="period")
        if self.reporting_currency is not None:
            check_currency(self.reporting_currency)
        for currency, rate in self.rates.items():
            check_currency(currency)
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                raise InvalidExchangeRate(f"rate for {currency} must be a positive decimal", currency=currency)


def parse_rate(text: str) -> tuple[str, Decimal]:
    """``CNY=12.5`` -> ("CNY", Decimal("12.5"))."""
    currency, _, value = text.partition("=")
    try:
        rate = Decimal(value.strip())
    except InvalidOperation:
        raise InvalidExchangeRate(f"{text!r} is not CUR=RATE", rate=text) from None
    return check_currency(currency.strip().upper()), rate


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    tree_size: int
    first_seq: int
    last_seq: int
    entries: int
    postings: int
    files: list[dict[str, Any]]
    manifest_sha256: str


def export(factory: SessionFactory, settings: Settings, request: ExportRequest, out_dir: Path, *,
           progress: Progress | None = None, clock: Callable[[], dt.datetime] = utcnow) -> ExportResult:
    """Write the export into ``out_dir`` (new or empty). See the module docstring."""
    request.check()
    key = load_signing_key(settings)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ExportDirectoryNotEmpty(f"{out_dir} exists and is not an empty directory", path=str(out_dir))
    if checkpoint_now(factory, key, batch=settings.journal_seal_batch, wait=True,
                      wait_seconds=settings.journal_seal_wait_seconds) is None:
        raise JournalEmpty("nothing is sealed yet: there is nothing to export")
    work = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        with unit_of_work(factory) as session:
            result = _Run(session, key=key, request=request, work=work, progress=progress, clock=clock).write()
        if out_dir.exists():
            out_dir.rmdir()
        work.rename(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ExportResult(out_dir, *result)


class _Run:
    """One export being written: the snapshot's queries, the writers, per account totals."""

    def __init__(self, session: Any, *, key: SigningKey, request: ExportRequest, work: Path,
                 progress: Progress | None, clock: Callable[[], dt.datetime]) -> None:
        self.queries = ExportQueries(session)
        self.queries.snapshot()
        self.journal = Journal(session)
        self.key, self.request, self.work, self.progress = key, request, work, progress
        self.now = clock()
        self.created = canonical.format_time(self.now)
        start, end = request.period_from, request.period_to
        self.from_text = canonical.format_time(start) if start else None
        self.to_text = canonical.format_time(end) if end else None
        # CSV on PostgreSQL: the database writes the journal and the statements (pgcsv.py).
        self.by_database = self.queries.dialect == "postgresql" and request.format == "csv"
        reports = (TRIAL_BALANCE,) if self.by_database else (JOURNAL, TRIAL_BALANCE, STATEMENTS)
        self.writers = {report: self._writer(report) for report in reports}
        self.moves: dict[int, list[int]] = {}
        self.statement_postings = 0

    def write(self) -> tuple[Any, ...]:
        request, queries = self.request, self.queries
        checkpoint = self.journal.latest_checkpoint()
        size = checkpoint.tree_size
        start, end = request.period_from, request.period_to
        # Without an end the period is "as of checkpoint N": what came after it is simply
        # not in it. With an end, everything recorded before it must be in N.
        unsealed = queries.unsealed_in_period(size, start, end) if end is not None else 0
        if unsealed:
            raise PeriodNotSealed(f"{unsealed} entries recorded in the period are not sealed in checkpoint {size} "
                                  "yet; retry in a moment", entries=unsealed, tree_size=size)
        if end is not None and end > self.now:
            raise PeriodOpen("the period has not ended yet; leave out the end to export as of the latest "
                             "checkpoint", period_to=end.isoformat())
        if end is not None and queries.writers_started_before(end):
            raise PeriodOpen("a transaction that began before the end of the period is still running",
                             period_to=end.isoformat())
        first, last = queries.period_range(size, start, end)
        outside = merkle.covering_nodes(0, first - 1, size) + merkle.covering_nodes(last, size, size)
        subtree = self.journal.subtrees(outside)
        proof = [[a, b, subtree(a, b).hex()] for a, b in outside]
        accounts = queries.accounts()
        written: dict[str, dict[str, Any]] = {}
        if self.by_database:
            entries, postings = self._database_files(first, last, accounts, queries.opening(size, start), written)
        else:
            entries, postings = self._journal(first, last)
            balances = self._trial_balance(accounts, queries.opening(size, start))
            self._statements(accounts, balances, first=first, last=last)
        for report, writer in self.writers.items():
            writer.close()
            name = file_name(report, request.format)
            digest, length = manifest.sha256_file(self.work / name)
            written[report] = {"name": name, "report": report, "sha256": digest, "bytes": length, "rows": writer.rows}
        files = [written[report] for report in (JOURNAL, TRIAL_BALANCE, STATEMENTS)]
        saft = self.writers.get(JOURNAL)
        reporting = saft.reporting_currency if isinstance(saft, SaftWriter) else None
        doc = {
            "format": manifest.FORMAT, "created_at": self.created, "canonical_encoding": canonical.VERSION,
            "origin": self.key.name, "key_id": self.key.public.key_id, "file_format": request.format,
            "period": {"from": self.from_text, "to": self.to_text, "basis": "recorded_at"},
            "checkpoint": {"tree_size": size, "root_hash": checkpoint.root_hash.hex(), "note": checkpoint.note},
            "journal": {"first_seq": first, "last_seq": last, "entries": entries, "postings": postings,
                        "proof": proof},
            "reporting_currency": reporting,
            "exchange_rates": {c: rate_text(r) for c, r in sorted(request.rates.items())} if reporting else {},
            "files": files,
        }
        digest = manifest.write(self.work, doc, self.key)
        return size, first, last, entries, postings, files, digest

    def _writer(self, report: str) -> ReportWriter:
        path = self.work / file_name(report, self.request.format)
        if self.request.format == "csv":
            return CsvWriter(path, COLUMNS[report])
        if self.request.format == "jsonl":
            return JsonLinesWriter(path)
        return SaftWriter(path, report, created_at=self.created, reporting_currency=self.request.reporting_currency,
                          period_from=self.from_text, period_to=self.to_text)

    def _database_files(self, first: int, last: int, accounts: dict[int, tuple[str, str, str]],
                        opening: Any, written: dict[str, dict[str, Any]]) -> tuple[int, int]:
        """The journal and the statements, each written by PostgreSQL with COPY, at the
        same time: the statements on a second connection that imports this
        transaction's snapshot, so both files read exactly the same data."""
        entries = max(0, last - first + 1)
        self.moves, postings, empty, self.statement_postings = self.queries.movements(
            first, last, self.request.period_from, self.request.period_to)
        balances = self._trial_balance(accounts, opening)
        session = self.queries.session
        snapshot: str = session.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        main = session.connection().connection.driver_connection
        assert main is not None
        with _snapshot_connection(session, snapshot) as second, ThreadPoolExecutor(max_workers=1) as pool:
            statements = pool.submit(self._database_statements, second, balances, first, last, written)
            self._database_journal(main, first, last, accounts, rows=postings + empty, written=written)
            statements.result()
        return entries, postings

    def _database_journal(self, connection: Any, first: int, last: int, accounts: dict[int, tuple[str, str, str]],
                          *, rows: int, written: dict[str, dict[str, Any]]) -> None:
        progress = self.progress
        name = file_name(JOURNAL, "csv")
        digest, length = pgcsv.write_journal(
            connection, self.work / name, first=first, last=last, currencies={c for _, c, _ in accounts.values()},
            progress=None if progress is None else lambda lines: progress(JOURNAL, min(lines, rows), rows))
        written[JOURNAL] = {"name": name, "report": JOURNAL, "sha256": digest, "bytes": length, "rows": rows}

    def _database_statements(self, connection: Any, balances: dict[int, BalanceLine], first: int, last: int,
                             written: dict[str, dict[str, Any]]) -> None:
        chosen = [(account_id, line.account_code, line.currency, line.opening,
                   1 if AccountType(line.type).debit_normal else -1) for account_id, line in balances.items()]
        name = file_name(STATEMENTS, "csv")
        progress = self.progress
        digest, length = pgcsv.write_statements(
            connection, self.work / name, first=first, last=last,
            period=(self.request.period_from, self.request.period_to), accounts=chosen,
            progress=None if progress is None else lambda done: progress(STATEMENTS, done, 0))
        written[STATEMENTS] = {"name": name, "report": STATEMENTS, "sha256": digest, "bytes": length,
                               "rows": 2 * len(balances) + self.statement_postings}

    def _journal(self, first: int, last: int) -> tuple[int, int]:
        writer = self.writers[JOURNAL]
        saft = writer if isinstance(writer, SaftWriter) else None
        rates: dict[str, Decimal] = dict(self.request.rates)
        from_text, to_text, moves, progress = self.from_text, self.to_text, self.moves, self.progress
        entries = count = 0
        total = max(0, last - first + 1)
        for record in self.queries.journal(first, last) if total else ():
            assert record.seq is not None
            assert record.stored_leaf is not None
            recorded = record.recorded_at
            in_period = (from_text is None or recorded >= from_text) and (to_text is None or recorded < to_text)
            entry = (record.seq, record.entry_id, record.idempotency_key, record.kind, record.effective_at, recorded,
                     record.description, canonical.canonical_json(record.metadata) if record.metadata else "{}",
                     record.reverses_entry_id, record.hold_id, record.stored_leaf.hex())
            postings: list[PostingFields] = []
            for posting_id, account_id, code, side, amount, currency, pending in record.postings:
                reporting, rate = _convert(saft, currency, amount, rates) if saft is not None else (None, None)
                postings.append((posting_id, account_id, code, side, amount, currency, pending, reporting, rate))
                if in_period and not pending:
                    move = moves.get(account_id)
                    if move is None:
                        move = moves[account_id] = [0, 0]
                    move[0 if side == "D" else 1] += amount
            writer.journal(entry, postings)
            entries += 1
            count += len(postings)
            if progress is not None and entries % 5000 == 0:
                progress(JOURNAL, entries, total)
        if progress is not None:
            progress(JOURNAL, entries, total)
        return entries, count

    def _trial_balance(self, accounts: dict[int, tuple[str, str, str]],
                       opening: dict[int, tuple[int, int]]) -> dict[int, BalanceLine]:
        balances: dict[int, BalanceLine] = {}
        for account_id in sorted(set(opening) | set(self.moves)):
            code, currency, kind = accounts[account_id]
            debits, credits = opening.get(account_id, (0, 0))
            debit, credit = self.moves.get(account_id, (0, 0))
            net = debits - credits
            line = BalanceLine(account_id, code, currency, kind, net, debit, credit, net + debit - credit)
            self.writers[TRIAL_BALANCE].balance(line)
            balances[account_id] = line
        return balances

    def _statements(self, accounts: dict[int, tuple[str, str, str]], balances: dict[int, BalanceLine], *,
                    first: int, last: int) -> None:
        writer, progress = self.writers[STATEMENTS], self.progress
        rows = (self.queries.statement_lines(first, last, self.request.period_from, self.request.period_to)
                if first <= last else iter(()))
        row = next(rows, None)
        done = 0
        for account_id, balance in balances.items():
            code, currency, kind = accounts[account_id]
            sign = 1 if AccountType(kind).debit_normal else -1
            running = sign * balance.opening
            writer.statement(StatementLine(code, currency, "opening", running))
            while row is not None and row[0] == account_id:
                _, seq, entry_id, posting_id, side, amount, recorded, text = row
                running += sign * (amount if side == "D" else -amount)
                writer.statement(StatementLine(code, currency, "posting", running, seq, entry_id, posting_id,
                                               recorded, text or "", side, amount))
                done += 1
                row = next(rows, None)
            writer.statement(StatementLine(code, currency, "closing", running))
            if progress is not None:
                progress(STATEMENTS, done, 0)
        if row is not None:
            raise RuntimeError(f"statement line for account {row[0]} outside the trial balance")


_ONE = Decimal(1)


def _convert(saft: SaftWriter, currency: str, amount: int, rates: dict[str, Decimal]) -> tuple[int, Decimal]:
    """(amount in the reporting currency, rate): the posting's amount x rate, rounded
    half-even to the reporting currency's places (the first currency seen is the
    reporting one when none was given)."""
    if saft.reporting_currency is None:
        saft.reporting_currency = currency
    reporting = saft.reporting_currency
    if currency == reporting:
        return amount, _ONE
    rate = rates.get(currency)
    if rate is None:
        raise MissingExchangeRate(f"postings in {currency} need a rate to the reporting currency {reporting} "
                                  f"(--rate {currency}=...)", currency=currency, reporting=reporting)
    return apply_rate(amount, rate, currency, reporting), rate


def archive(directory: Path, target: Path) -> tuple[str, int]:
    """Zip an export directory (flat) into ``target``; returns its SHA-256 and size."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as bundle:
        for path in sorted(directory.iterdir()):
            bundle.write(path, path.name)
    return manifest.sha256_file(target)


@contextmanager
def _snapshot_connection(session: Session, snapshot: str) -> Iterator[psycopg.Connection[Any]]:
    """A new read-only connection to the session's database whose transaction sees
    exactly ``snapshot`` (exported by the session's REPEATABLE READ transaction)."""
    url = session.get_bind().engine.url.set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as connection:
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        connection.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        work_mem: str = session.execute(text("SHOW work_mem")).scalar_one()
        connection.execute("SELECT set_config('work_mem', %s, true)", (work_mem,))
        try:
            yield connection
        finally:
            connection.rollback()
