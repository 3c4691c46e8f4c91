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
from settlement.exports.fastcheck import JournalPart, Split, check_journal_part, entry_start, verify_csv_journal
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
    except Exception:
        _check_files(directory, files, report)
        raise
    with _Worker() as worker:
        statements = _Statements(worker, plan) if plan.statements.is_file() else None
        split = _split(worker, plan, size)
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
#: statements file, and chunks of a CSV journal.
PARALLEL_BYTES = 8 << 20
#: A big CSV journal is cut into chunks of about this size. The worker takes them
#: from the last one back (once it has checked the statements) while this process
#: reads the journal from its start: they meet where their work evens out.
CHUNK_BYTES = 4 << 20

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
    comes back here when it cannot run (:class:`BrokenProcessPool`). It shares with
    this process which chunks of the journal each has claimed: ``claims`` holds the
    first chunk this process has not reached and the first the worker has taken."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.claims: Any = None

    def __enter__(self) -> _Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def _start(self) -> ProcessPoolExecutor | None:
        if self.pool is None and (os.cpu_count() or 1) > 1:
            context = multiprocessing.get_context("spawn")
            self.claims = context.Array("q", 2)
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_share,
                                            initargs=(self.claims,))
        return self.pool

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T] | None:
        pool = self._start()
        try:
            return pool.submit(fn, *args) if pool is not None else None
        except BrokenProcessPool:
            return None

    def chunks(self, cuts: list[int], *args: Any) -> Future[dict[int, JournalPart | None]] | None:
        """Start the worker on the journal's chunks (after what it has already)."""
        if self._start() is None:
            return None
        with self.claims.get_lock():
            self.claims[0], self.claims[1] = 0, len(cuts)
        return self.submit(check_journal_chunks, cuts, *args)

    def claim(self, chunk: int) -> bool:
        """This process reaches ``chunk``: True if it is still this process's to read."""
        with self.claims.get_lock():
            if self.claims[1] <= chunk:
                return False
            self.claims[0] = chunk + 1
            return True


#: In the worker process: the claims on the journal's chunks, shared with the main process.
_SHARED: dict[str, Any] = {}


def _share(claims: Any) -> None:
    _SHARED["claims"] = claims


def check_journal_chunks(cuts: list[int], path: str, tree_size: int, period_from: str | None,
                         period_to: str | None) -> dict[int, JournalPart | None]:
    """In the worker: the journal's chunks, from the last one back, until the main
    process (reading from the start) has reached the next one, or one is not right
    (the main process then reads it, and so the chunks before it, itself)."""
    claims = _SHARED["claims"]
    parts: dict[int, JournalPart | None] = {}
    while True:
        with claims.get_lock():
            chunk = claims[1] - 1
            if chunk < claims[0]:
                return parts
            claims[1] = chunk
        end = cuts[chunk + 1] if chunk + 1 < len(cuts) else None
        part = parts[chunk] = check_journal_part(path, cuts[chunk], end, tree_size=tree_size, period_from=period_from,
                                                 period_to=period_to)
        if part is None:
            return parts


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


def _split(worker: _Worker, plan: _Plan, tree_size: int) -> Split | None:
    """A big CSV journal cut into chunks, the worker started on them."""
    path = plan.directory / plan.names.get(JOURNAL, "")
    if plan.fmt != "csv" or JOURNAL not in plan.names or not path.is_file():
        return None
    total = path.stat().st_size
    if total <= PARALLEL_BYTES:
        return None
    cuts = sorted({cut for near in range(CHUNK_BYTES, total, CHUNK_BYTES)
                   if (cut := entry_start(path, near)) is not None})
    future = worker.chunks(cuts, str(path), tree_size, plan.period_from, plan.period_to) if cuts else None
    if future is None:
        return None
    return Split(cuts, worker.claim, lambda: _parts(future))


def _parts(future: Future[dict[int, JournalPart | None]]) -> dict[int, JournalPart | None]:
    try:
        return future.result()
    except BrokenProcessPool:
        return {}  # the worker could not start (or died): the journal is read here to its end


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
