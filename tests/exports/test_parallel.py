"""A big CSV journal is checked in two parts at once: the rows from a cut in another
process. Wherever the cut falls (between entries, inside an entry, inside a quoted
field that spans lines) and whatever is wrong with the rows, the result is the
sequential one: the same failures, naming the same rows, and the same sums."""

from __future__ import annotations

import functools
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from settlement.exports import fastcheck, verify
from settlement.exports.checks import AccountTotals, JournalCheck
from settlement.exports.fastcheck import JournalPart, Split, check_journal_part, verify_csv_journal
from settlement.exports.verify import Report, verify_path
from settlement.journal.merkle import RangeMerger
from tests.conftest import Database
from tests.exports.conftest import Exporter
from tests.journal.factories import Keys, post_many, post_variety

Outcome = tuple[list[tuple[str, str]], int, int, list[tuple[str, tuple[str, int, int, int, int, int]]]]


@pytest.fixture(params=["all", "period"])
def exported(book: Database, exporter: Callable[[Database], Exporter], request: pytest.FixtureRequest) -> Path:
    """A CSV export with entries of every shape (a description with a line break
    among them) in both halves of its journal: everything, or a period (so rows
    before the period and proof nodes on both sides come into it)."""
    post_variety(book.factory, "w")
    post_many(book.factory, 20, "more")
    if request.param == "all":
        return exporter(book)("csv").directory
    with book.factory() as session:
        stamps = session.execute(text("SELECT recorded_at FROM ledger_entries ORDER BY id")).scalars().all()
    post_many(book.factory, 3, "after")
    return exporter(book)("csv", period_from=stamps[4], period_to=stamps[-4]).directory


def outcome(directory: Path, cuts: list[int] | None = None, worker_from: int = 0) -> Outcome:
    """The journal check's failures and sums, read in one part, or cut into chunks
    at ``cuts`` of which the worker has those from ``worker_from`` on (checked in
    this process, as the worker would)."""
    doc = json.loads((directory / "manifest.json").read_text())
    journal, checkpoint, period = doc["journal"], doc["checkpoint"], doc["period"]
    failures: list[tuple[str, str]] = []

    def fail(where: str, message: str) -> None:
        failures.append((where, message))

    check = JournalCheck(fail, tree_size=checkpoint["tree_size"], root=bytes.fromhex(checkpoint["root_hash"]),
                         first=journal["first_seq"], last=journal["last_seq"],
                         proof=[(a, b, bytes.fromhex(h)) for a, b, h in journal["proof"]],
                         period_from=period["from"], period_to=period["to"])
    path = directory / "journal.csv"
    split = None
    if cuts is not None:
        ends: list[int | None] = [*cuts[1:], None]

        def parts() -> dict[int, JournalPart | None]:
            return {chunk: _part(str(path), cuts[chunk], ends[chunk], checkpoint["tree_size"], period["from"],
                                 period["to"]) for chunk in range(worker_from, len(cuts))}

        split = Split(cuts, lambda chunk: chunk < worker_from, parts)
    verify_csv_journal(path, check, fail, split)
    check.finish(path.name)
    accounts = [(code, (t.currency, t.debit, t.credit, t.before_debit, t.before_credit, t.digest))
                for code, t in check.accounts.items()]
    return failures, check.entries, check.postings, accounts


@functools.cache
def _part(path: str, start: int, end: int | None, tree_size: int, period_from: str | None,
          period_to: str | None) -> JournalPart | None:
    """What the worker finds in a chunk (each test's files are its own)."""
    return check_journal_part(path, start, end, tree_size=tree_size, period_from=period_from, period_to=period_to)


def line_starts(path: Path) -> Iterator[int]:
    """The offset of every line after the header (some inside a quoted field)."""
    data = path.read_bytes()
    position = data.index(b"\n") + 1
    while position < len(data):
        yield position
        position = data.index(b"\n", position) + 1


def entry_starts(path: Path) -> list[int]:
    """Where a line's first field differs from the line before's: where the worker's
    chunks start (and one inside the quoted field with a line break)."""
    data = path.read_bytes()
    return [cut for cut in line_starts(path)
            if data[cut:].split(b",", 1)[0] != data[:cut - 1].rsplit(b"\n", 1)[-1].split(b",", 1)[0]]


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each result of the other process was taken."""
    results: list[bool] = []
    take = fastcheck._take_parts

    def spy(check: JournalCheck, row: list[str], parts: Sequence[JournalPart | None]) -> bool:
        results.append(take(check, row, parts))
        return results[-1]

    monkeypatch.setattr(fastcheck, "_take_parts", spy)
    return results


def edit(path: Path, change: Callable[[str], str]) -> None:
    before = path.read_text(encoding="utf-8")
    after = change(before)
    assert after != before
    path.write_text(after, encoding="utf-8")


def row_line(path: Path, key: str, index: int = 0) -> str:
    return [line for line in path.read_text(encoding="utf-8").split("\n") if f",{key}," in line][index]


TAMPERING: dict[str, Callable[[Path], None]] = {
    "an amount": lambda path: edit(path, lambda t: t.replace(
        row_line(path, "more:14", 1), re.sub(r",(\d+\.\d\d),RUB,", ",999.99,RUB,", row_line(path, "more:14", 1)))),
    "a deleted row": lambda path: edit(path, lambda t: t.replace(row_line(path, "more:12", 1) + "\n", "")),
    "two rows of an entry swapped": lambda path: edit(path, lambda t: t.replace(
        row_line(path, "more:13", 0) + "\n" + row_line(path, "more:13", 1),
        row_line(path, "more:13", 1) + "\n" + row_line(path, "more:13", 0))),
    "rows of two entries swapped": lambda path: edit(path, lambda t: t.replace(
        row_line(path, "more:8", 1) + "\n" + row_line(path, "more:9", 0),
        row_line(path, "more:9", 0) + "\n" + row_line(path, "more:8", 1))),
    "the description with a line break": lambda path: edit(path, lambda t: t.replace(
        "line two, \"\"quoted", "line 2, \"\"quoted")),
    "a row too short at the end": lambda path: edit(path, lambda t: t + "1,2,3\n"),
    "a quote left open at the end": lambda path: edit(path, lambda t: t + '9,"open\n'),
}


def test_every_cut_gives_the_sequential_result(exported: Path, spied: list[bool]) -> None:
    path = exported / "journal.csv"
    sequential = outcome(exported)
    assert sequential[0] == []
    cuts = list(line_starts(path))
    for cut in cuts:
        assert outcome(exported, [cut]) == sequential, cut
    # Cuts at entries' first rows hand the rest over; the others (inside an entry or
    # a quoted field) are read through.
    assert spied
    assert all(spied)
    assert len(spied) < len(cuts)


def test_chunks_met_anywhere_give_the_sequential_result(exported: Path, spied: list[bool]) -> None:
    cuts = entry_starts(exported / "journal.csv")
    sequential = outcome(exported)
    for worker_from in range(len(cuts)):
        assert outcome(exported, cuts, worker_from) == sequential, worker_from
    assert spied.count(True) >= len(cuts) // 2


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_every_cut_of_a_changed_journal_gives_the_sequential_failures(exported: Path, tmp_path: Path,
                                                                      tampering: str) -> None:
    directory = tmp_path / "changed"
    shutil.copytree(exported, directory)
    path = directory / "journal.csv"
    TAMPERING[tampering](path)
    sequential = outcome(directory)
    assert sequential[0], "the change is detected"
    for cut in line_starts(path):
        assert outcome(directory, [cut]) == sequential, cut
    cuts = entry_starts(path)
    for worker_from in range(len(cuts)):
        assert outcome(directory, cuts, worker_from) == sequential, worker_from


def test_parts_that_do_not_fit_are_not_taken() -> None:
    def check(currency: str) -> JournalCheck:
        made = JournalCheck(lambda where, message: None, tree_size=8, root=b"", first=1, last=8, proof=[],
                            period_from=None, period_to=None)
        made.accounts["a"] = AccountTotals(currency, debit=5)
        made.expected = 5
        assert made.merger is not None
        made.merger.extend((i, i + 1, bytes(32)) for i in range(4))
        return made

    def part(first: int, end: int, accounts: dict[str, str]) -> JournalPart:
        merger = RangeMerger(8, start=first - 1)
        merger.extend((i, i + 1, bytes(32)) for i in range(first - 1, end - 1))
        return JournalPart(first, end, end - first, 2 * (end - first),
                           {code: (currency, 0, 5, 0, 0, 7) for code, currency in accounts.items()}, merger.pieces())

    parts = [part(5, 7, {"a": "CNY", "b": "RUB"}), part(7, 9, {"b": "RUB", "c": "CNY"})]
    other_currency = check("RUB")
    assert not fastcheck._take_parts(other_currency, ["5"], parts)
    kept = other_currency.accounts
    assert (other_currency.expected, list(kept), kept["a"].credit) == (5, ["a"], 0)
    elsewhere = check("CNY")
    elsewhere.expected = 6
    assert not fastcheck._take_parts(elsewhere, ["6"], parts)
    assert not fastcheck._take_parts(check("CNY"), ["5"], [parts[0], None])
    assert not fastcheck._take_parts(check("CNY"), ["5"], [parts[0], part(7, 9, {"b": "CNY"})])
    assert not fastcheck._take_parts(check("CNY"), ["5"], [parts[0], part(8, 9, {})])
    fits = check("CNY")
    assert fastcheck._take_parts(fits, ["5"], parts)
    assert (fits.expected, fits.entries, fits.postings, list(fits.accounts)) == (9, 4, 8, ["a", "b", "c"])
    assert (fits.accounts["a"].debit, fits.accounts["b"].credit, fits.accounts["b"].digest) == (5, 10, 14)
    assert fits.merger is not None
    assert fits.merger.position == 8


# End to end: the worker is a spawned process, as in production.


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small files go to the worker, in small chunks; this process waits, on
    reaching the second chunk, for the worker to take the rest (or to stop)."""
    monkeypatch.setattr(verify, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(verify, "CHUNK_BYTES", 2000)
    claim, chunks = verify._Worker.claim, verify._Worker.chunks
    started: list[Future[Any] | None] = []

    def start(self: verify._Worker, cuts: list[int], *args: Any) -> Future[Any] | None:
        started.append(chunks(self, cuts, *args))
        return started[-1]

    def patient(self: verify._Worker, chunk: int) -> bool:
        deadline = time.monotonic() + 120  # float-ok: seconds
        future = started[0]
        while chunk == 1 and future is not None and self.claims[1] > 1 and not future.done():
            assert time.monotonic() < deadline
            time.sleep(0.01)  # float-ok: seconds
        return claim(self, chunk)

    monkeypatch.setattr(verify._Worker, "chunks", start)
    monkeypatch.setattr(verify._Worker, "claim", patient)


def _same(parallel: Report, sequential: Report) -> None:
    assert [str(f) for f in parallel.failures] == [str(f) for f in sequential.failures]
    assert (parallel.more, parallel.entries, parallel.postings, parallel.root_hash) == (
        sequential.more, sequential.entries, sequential.postings, sequential.root_hash)


def test_a_worker_checks_the_journal_from_its_end(exported: Path, keys: Keys, request: pytest.FixtureRequest,
                                                 spied: list[bool]) -> None:
    sequential = verify_path(exported, keys.verifier)
    assert sequential.ok
    request.getfixturevalue("parallel")
    _same(verify_path(exported, keys.verifier), sequential)
    assert spied == [True]


@pytest.mark.parametrize("tampering", ["an amount", "a deleted row", "two rows of an entry swapped"])
def test_a_worker_that_finds_a_problem_leaves_its_chunk_to_the_main_process(
        exported: Path, keys: Keys, request: pytest.FixtureRequest, spied: list[bool], tmp_path: Path,
        tampering: str) -> None:
    directory = tmp_path / "changed"
    shutil.copytree(exported, directory)
    TAMPERING[tampering](directory / "journal.csv")
    sequential = verify_path(directory, keys.verifier)
    assert not sequential.ok
    request.getfixturevalue("parallel")
    _same(verify_path(directory, keys.verifier), sequential)
    assert False in spied


def test_when_the_worker_cannot_run_the_main_process_does_its_work(
        exported: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    sequential = verify_path(exported, keys.verifier)

    def broken(self: object, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_exception(BrokenProcessPool("the worker died"))
        return future

    monkeypatch.setattr(verify._Worker, "submit", broken)
    monkeypatch.setattr(verify, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(verify, "CHUNK_BYTES", 2000)
    _same(verify_path(exported, keys.verifier), sequential)
