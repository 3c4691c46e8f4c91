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
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from settlement.exports import manifest
from settlement.exports.checks import JournalCheck, TrialBalanceCheck
from settlement.exports.fastcheck import verify_csv_journal, verify_csv_statements
from settlement.exports.readers import Row, read_csv, read_jsonl
from settlement.exports.rows import JOURNAL, MANIFEST, SIGNATURE, STATEMENTS, TRIAL_BALANCE, format_amount
from settlement.exports.saft_reader import SaftJournal, read_statements, read_trial_balance
from settlement.exports.statement_checks import StatementCheck, StatementSummary, cross_check
from settlement.journal.keys import PublicKey
from settlement.journal.notes import BadNote, open_checkpoint

MAX_FAILURES = 200


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
    _check_files(directory, files, report)
    _check_reports(directory, doc, size, root, report)


def _check_reports(directory: Path, doc: dict[str, Any], size: int, root: bytes, report: Report) -> None:
    fmt = doc["file_format"]
    names = {f["report"]: f["name"] for f in doc["files"]}
    journal_doc = doc["journal"]
    period = doc["period"]
    reporting = doc.get("reporting_currency")
    proof = [(int(a), int(b), bytes.fromhex(h)) for a, b, h in journal_doc["proof"]]
    first, last = int(journal_doc["first_seq"]), int(journal_doc["last_seq"])
    # The trial balance is small: read it first, so the statements (which need the
    # accounts' types) can be checked in another process while this one checks the
    # journal.
    tb_path = directory / names[TRIAL_BALANCE]
    tb_rows = list(_existing(tb_path, read_trial_balance(tb_path) if fmt == "xml"
                             else _rows(tb_path, fmt, TRIAL_BALANCE), report))
    types = {row.account_code: row.type for _, row in tb_rows if not isinstance(row, str)}
    st_path = directory / names[STATEMENTS]
    statements = _Statements(st_path, fmt, types, first, last) if st_path.is_file() else None
    check = JournalCheck(report.fail, tree_size=size, root=root, first=first, last=last, proof=proof,
                         period_from=period["from"], period_to=period["to"], reporting_currency=reporting)
    journal_path = directory / names[JOURNAL]
    saft = SaftJournal(journal_path) if fmt == "xml" else None
    if fmt == "csv" and journal_path.is_file():
        verify_csv_journal(journal_path, check, report.fail)
    else:
        rows = saft if saft is not None else _rows(journal_path, fmt, JOURNAL)
        for where, row in _existing(journal_path, rows, report):
            if isinstance(row, str):
                report.fail(where, row)
            else:
                check.row(where, row)
    check.finish(names[JOURNAL])
    report.entries, report.postings = check.entries, check.postings
    if (check.entries, check.postings) != (journal_doc["entries"], journal_doc["postings"]):
        report.fail(names[JOURNAL], f"{check.entries} entries and {check.postings} postings, the manifest says "
                                    f"{journal_doc['entries']} and {journal_doc['postings']}")
    if saft is not None:
        _check_saft_totals(saft, check, reporting, names[JOURNAL], report)
    balances = TrialBalanceCheck(report.fail, check)
    for where, row in tb_rows:
        if isinstance(row, str):
            report.fail(where, row)
        else:
            balances.row(where, row)
    balances.finish(names[TRIAL_BALANCE])
    failures, more, summaries = statements.result() if statements is not None else ([], 0, {})
    for where, message in failures:
        report.fail(where, message)
    report.more += more
    cross_check(report.fail, names[STATEMENTS], summaries, balances, check)


#: Statements files larger than this are checked in a second process, alongside the journal.
PARALLEL_BYTES = 8 << 20


def check_statements(path: str, fmt: str, types: dict[str, str], first: int,
                     last: int) -> tuple[list[tuple[str, str]], int, dict[str, StatementSummary]]:
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


class _Statements:
    """The statements check, started now: in a worker process for a big file, or
    run when its result is asked for."""

    def __init__(self, path: Path, fmt: str, types: dict[str, str], first: int, last: int) -> None:
        self.args = (str(path), fmt, types, first, last)
        self.pool: ProcessPoolExecutor | None = None
        self.future: Future[tuple[list[tuple[str, str]], int, dict[str, StatementSummary]]] | None = None
        if path.stat().st_size > PARALLEL_BYTES and (os.cpu_count() or 1) > 1:
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            self.future = self.pool.submit(check_statements, *self.args)

    def result(self) -> tuple[list[tuple[str, str]], int, dict[str, StatementSummary]]:
        if self.future is None or self.pool is None:
            return check_statements(*self.args)
        try:
            return self.future.result()
        except BrokenProcessPool:
            # The worker could not start (or died): do the work here instead.
            return check_statements(*self.args)
        finally:
            self.pool.shutdown()


def _rows(path: Path, fmt: str, report_name: str) -> Iterator[Row]:
    return read_csv(path, report_name) if fmt == "csv" else read_jsonl(path, report_name)


def _existing(path: Path, rows: Any, report: Report) -> Iterator[Row]:
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
