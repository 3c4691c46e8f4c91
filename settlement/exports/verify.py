"""The offline verifier: an export directory (or its zip) and the journal's public
key are all it needs. It checks, and names the file and row of anything wrong:

1. ``manifest.json.sig`` is the key's signature of ``manifest.json``;
2. the checkpoint in the manifest is a signed note by the same key;
3. every file has the SHA-256 and size the manifest lists, and nothing else is there;
4. journal sequence numbers run without a gap from the manifest's first to last;
   each entry's rows are consistent, in posting order, balance per currency, and
   hash to the leaf they carry; the leaves and the manifest's proof nodes rebuild
   the checkpoint's root (RFC 9162);
5. the trial balance equals the journal: movements per account, closing = opening
   + debits - credits, every currency sums to zero (and openings equal the rows
   before the period when the export starts at sequence number 1);
6. each account statement opens and closes at the trial balance, its running
   balance follows line by line, and its lines are that account's postings;
7. SAF-T: NumberOfEntries, TotalDebit and TotalCredit match the lines, and each
   line's Amount is its CurrencyAmount at its ExchangeRate.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from settlement.exports import manifest
from settlement.exports.checks import JournalCheck, TrialBalanceCheck
from settlement.exports.fastcheck import (
    JournalTail,
    Split,
    check_journal_tail,
    entry_start,
    verify_csv_journal,
)
from settlement.exports.readers import Row, read_csv, read_jsonl
from settlement.exports.rows import JOURNAL, MANIFEST, SIGNATURE, STATEMENTS, TRIAL_BALANCE, format_amount
from settlement.exports.saft_reader import SaftJournal, read_statements, read_trial_balance
from settlement.exports.statement_checks import StatementCheck, StatementSummary, cross_check, verify_csv_statements
from settlement.journal.keys import PublicKey
from settlement.journal.notes import BadNote, open_checkpoint

MAX_FAILURES = 200
T = TypeVar("T")


@dataclass
class Failure:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Report:
    failures: list[Failure] = field(default_factory=list)
    more: int = 0
    entries: int = 0
    postings: int = 0
    tree_size: int = 0
    root_hash: str = ""

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, where: str, message: str) -> None:
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(Failure(where, message))
        else:
            self.more += 1


def verify_path(path: Path, key: PublicKey) -> Report:
    """Verify an export directory, or a ``.zip`` of one."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="settlement-verify-") as scratch:
            with zipfile.ZipFile(path) as bundle:
                for member in bundle.infolist():
                    name = Path(member.filename).name
                    if member.is_dir() or not name or name != member.filename:
                        report = Report()
                        report.fail(path.name, f"archive member {member.filename!r} is not a plain file name")
                        return report
                    bundle.extract(member, scratch)
            return verify_directory(Path(scratch), key)
    return verify_directory(path, key)


def verify_directory(directory: Path, key: PublicKey) -> Report:
    report = Report()
    try:
        data, doc = manifest.read(directory)
    except manifest.ManifestError as exc:
        report.fail(MANIFEST, str(exc))
        return report
    try:
        _verify(directory, data, doc, key, report)
    except (KeyError, TypeError, ValueError) as exc:
        report.fail(MANIFEST, f"malformed manifest ({exc!r})")
    return report


def _verify(directory: Path, data: bytes, doc: dict[str, Any], key: PublicKey, report: Report) -> None:
    signer = PublicKey(key.key, str(doc.get("origin", key.name)))
    problem = manifest.signature_ok(directory, data, signer)
    if problem is not None:
        report.fail(SIGNATURE, problem + (f"; the manifest names key {doc.get('key_id')}"
                                          if doc.get("key_id") != signer.key_id else ""))
    checkpoint = doc["checkpoint"]
    size, root = int(checkpoint["tree_size"]), bytes.fromhex(checkpoint["root_hash"])
    try:
        body = open_checkpoint(checkpoint["note"], signer)
        if (body.tree_size, body.root_hash) != (size, root):
            report.fail(f"{MANIFEST} checkpoint", "tree size or root differs from the signed checkpoint note")
    except BadNote as exc:
        report.fail(f"{MANIFEST} checkpoint", f"the checkpoint note does not verify: {exc}")
    report.tree_size, report.root_hash = size, root.hex()
    files = {f["name"]: f for f in doc["files"]}
    # What the checks need from the manifest and the trial balance (small) is read
    # first, so that the big files' work in a second process starts before this one
    # hashes the files; failures are reported in the same order all the same.
    try:
        plan = _plan(directory, doc)
    except BaseException:
        _check_files(directory, files, report)
        raise
    with _Worker() as worker:
        statements = _Statements(worker, plan) if plan.statements.is_file() else None
        split = _split(worker, plan, statements, size)
        _check_files(directory, files, report)
        check = _check_journal(plan, size, root, split, report)
        balances = TrialBalanceCheck(report.fail, check)
        for where, row in plan.tb_rows:
            if isinstance(row, str):
                report.fail(where, row)
            else:
                balances.row(where, row)
        balances.finish(plan.names[TRIAL_BALANCE])
        failures, more, summaries = statements.result() if statements is not None else ([], 0, {})
    for where, message in failures:
        report.fail(where, message)
    report.more += more
    cross_check(report.fail, plan.names[STATEMENTS], summaries, balances, check)


@dataclass
class _Plan:
    """What the report checks take from the manifest, and the trial balance's rows."""

    fmt: str
    names: dict[str, str]
    journal_doc: dict[str, Any]
    period_from: str | None
    period_to: str | None
    reporting: str | None
    proof: list[tuple[int, int, bytes]]
    first: int
    last: int
    tb_rows: list[Row]
    types: dict[str, str]
    statements: Path
    directory: Path


def _plan(directory: Path, doc: dict[str, Any]) -> _Plan:
    fmt = doc["file_format"]
    names = {f["report"]: f["name"] for f in doc["files"]}
    journal_doc = doc["journal"]
    period = doc["period"]
    proof = [(int(a), int(b), bytes.fromhex(h)) for a, b, h in journal_doc["proof"]]
    first, last = int(journal_doc["first_seq"]), int(journal_doc["last_seq"])
    tb_path = directory / names[TRIAL_BALANCE]
    tb_rows = list(_existing(tb_path, read_trial_balance(tb_path) if fmt == "xml"
                             else _rows(tb_path, fmt, TRIAL_BALANCE)))
    types = {row.account_code: row.type for _, row in tb_rows if not isinstance(row, str)}
    return _Plan(fmt, names, journal_doc, period["from"], period["to"], doc.get("reporting_currency"), proof, first,
                 last, tb_rows, types, directory / names[STATEMENTS], directory)


def _check_journal(plan: _Plan, size: int, root: bytes, split: Split | None, report: Report) -> JournalCheck:
    check = JournalCheck(report.fail, tree_size=size, root=root, first=plan.first, last=plan.last, proof=plan.proof,
                         period_from=plan.period_from, period_to=plan.period_to, reporting_currency=plan.reporting)
    name, journal_doc = plan.names[JOURNAL], plan.journal_doc
    path = plan.directory / name
    saft = SaftJournal(path) if plan.fmt == "xml" else None
    if plan.fmt == "csv" and path.is_file():
        verify_csv_journal(path, check, report.fail, split)
    else:
        rows = saft if saft is not None else _rows(path, plan.fmt, JOURNAL)
        for where, row in _existing(path, rows):
            if isinstance(row, str):
                report.fail(where, row)
            else:
                check.row(where, row)
    check.finish(name)
    report.entries, report.postings = check.entries, check.postings
    if (check.entries, check.postings) != (journal_doc["entries"], journal_doc["postings"]):
        report.fail(name, f"{check.entries} entries and {check.postings} postings, the manifest says "
                          f"{journal_doc['entries']} and {journal_doc['postings']}")
    if saft is not None:
        _check_saft_totals(saft, check, plan.reporting, name, report)
    return check


#: Files larger than this are checked in a second process, alongside the rest: the
#: statements file, and a CSV journal's rows from a cut on.
PARALLEL_BYTES = 8 << 20
#: How much of the journal this process checks while the second one starts (its
#: imports), in bytes; and what a byte of statements costs to check, in percent of
#: what a byte of journal does. They place the cut so that both finish together.
WORKER_START_BYTES = 32 << 20
STATEMENTS_COST = 100

StatementsResult = tuple[list[tuple[str, str]], int, dict[str, StatementSummary]]


def check_statements(path: str, fmt: str, types: dict[str, str], first: int, last: int) -> StatementsResult:
    """The statements file's own checks (runs in a worker process for big files)."""
    failures: list[tuple[str, str]] = []
    more = 0

    def fail(where: str, message: str) -> None:
        nonlocal more
        if len(failures) < MAX_FAILURES:
            failures.append((where, message))
        else:
            more += 1

    file = Path(path)
    checker = StatementCheck(fail, types, first, last)
    if fmt == "csv":
        verify_csv_statements(file, checker, fail)
        return failures, more, checker.summaries
    for where, row in read_statements(file) if fmt == "xml" else _rows(file, fmt, STATEMENTS):
        if isinstance(row, str):
            fail(where, row)
        else:
            checker.row(where, row)
    checker.finish(file.name)
    return failures, more, checker.summaries


class _Worker:
    """A second process (spawned), started when there is work for it; the work
    comes back here when it cannot run (:class:`BrokenProcessPool`)."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T] | None:
        if (os.cpu_count() or 1) < 2:
            return None
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            return self.pool.submit(fn, *args)
        except BrokenProcessPool:
            return None


class _Statements:
    """The statements check, started now: in the worker for a big file, or run when
    its result is asked for."""

    def __init__(self, worker: _Worker, plan: _Plan) -> None:
        self.args = (str(plan.statements), plan.fmt, plan.types, plan.first, plan.last)
        self.bytes = plan.statements.stat().st_size
        self.future = worker.submit(check_statements, *self.args) if self.bytes > PARALLEL_BYTES else None

    def result(self) -> StatementsResult:
        if self.future is not None:
            try:
                return self.future.result()
            except BrokenProcessPool:
                pass  # the worker could not start (or died): do the work here instead
        return check_statements(*self.args)


def journal_cut(journal_bytes: int, statements_bytes: int) -> int:
    """Where to cut a CSV journal of ``journal_bytes`` (roughly: the next entry's
    start) when the worker, once started, checks ``statements_bytes`` of statements
    and then the journal from the cut, so that both processes finish together."""
    return (journal_bytes + WORKER_START_BYTES + statements_bytes * STATEMENTS_COST // 100) // 2


def _split(worker: _Worker, plan: _Plan, statements: _Statements | None, tree_size: int) -> Split | None:
    """The journal's rows from a cut checked in the worker, for a big CSV journal."""
    path = plan.directory / plan.names.get(JOURNAL, "")
    if plan.fmt != "csv" or JOURNAL not in plan.names or not path.is_file():
        return None
    total = path.stat().st_size
    in_worker = statements.bytes if statements is not None and statements.future is not None else 0
    near = journal_cut(total, in_worker)
    if total <= PARALLEL_BYTES or not 0 < near < total:
        return None
    offset = entry_start(path, near)
    future = worker.submit(check_journal_tail, str(path), offset, tree_size, plan.period_from,
                           plan.period_to) if offset is not None else None
    if offset is None or future is None:
        return None
    return Split(offset, lambda: _tail(future))


def _tail(future: Future[JournalTail | None]) -> JournalTail | None:
    try:
        return future.result()
    except BrokenProcessPool:
        return None  # the worker could not start (or died): the journal is read here to its end


def _rows(path: Path, fmt: str, report_name: str) -> Iterator[Row]:
    return read_csv(path, report_name) if fmt == "csv" else read_jsonl(path, report_name)


def _existing(path: Path, rows: Any) -> Iterator[Row]:
    if not path.is_file():
        return iter(())
    return iter(rows)


def _check_files(directory: Path, files: dict[str, dict[str, Any]], report: Report) -> None:
    for name, info in files.items():
        path = directory / name
        if Path(name).name != name or not path.is_file():
            report.fail(name, "listed in the manifest but missing")
            continue
        digest, size = manifest.sha256_file(path)
        if digest != info["sha256"] or size != info["bytes"]:
            report.fail(name, f"SHA-256 {digest} ({size} bytes) differs from the manifest's {info['sha256']} "
                              f"({info['bytes']} bytes): the file was altered")
    for path in sorted(directory.iterdir()):
        if path.name not in files and path.name not in (MANIFEST, SIGNATURE):
            report.fail(path.name, "not listed in the manifest")


def _check_saft_totals(saft: SaftJournal, check: JournalCheck, reporting: str | None, name: str,
                       report: Report) -> None:
    if saft.default_currency != reporting:
        report.fail(f"{name} Header", f"DefaultCurrencyCode {saft.default_currency} differs from the manifest's "
                                      f"{reporting}")
    if saft.number_of_entries != str(saft.transactions) or saft.transactions != check.entries:
        report.fail(f"{name} NumberOfEntries", f"says {saft.number_of_entries}, the file has "
                                               f"{saft.transactions} transactions")
    if reporting is None:
        return
    for label, stated, computed in (("TotalDebit", saft.total_debit, check.reporting_debit),
                                    ("TotalCredit", saft.total_credit, check.reporting_credit)):
        if stated != format_amount(computed, reporting):
            report.fail(f"{name} {label}", f"says {stated}, the lines sum to {format_amount(computed, reporting)}")
