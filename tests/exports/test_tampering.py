"""Acceptance: export a period, verify it, then change one byte, one amount, delete a
row, reorder two rows, swap the key. Each is detected, and a message names the file
and the row."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from settlement.exports.verify import Report, verify_path
from tests.conftest import Database
from tests.exports.conftest import Exporter
from tests.journal.factories import Keys, make_keys

FORMATS = ["csv", "jsonl", "xml"]


def rows_of_entry(path: Path, fmt: str, key: str) -> list[tuple[int, str]]:
    """(text line index, how the verifier names the row) of each row of entry ``key``."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found = []
    if fmt == "csv":
        parsed = list(csv.reader(path.open(newline="", encoding="utf-8")))
        numbers = [n for n, row in enumerate(parsed[1:], 1) if row[2] == key]
        indexes = [i for i, line in enumerate(lines) if f",{key}," in line]  # these rows are one line each
        assert len(indexes) == len(numbers)
        found += [(index, f"journal.csv row {number}") for index, number in zip(indexes, numbers, strict=True)]
    elif fmt == "jsonl":
        for index, line in enumerate(lines):
            if line and json.loads(line)["idempotency_key"] == key:
                found.append((index, f"journal.jsonl line {index + 1}"))
    else:
        transaction = 0
        for index, line in enumerate(lines):
            if line.startswith("<Transaction>"):
                transaction += 1
                number, current = 0, f"<SourceID>{key}</SourceID>" in line
            elif line.startswith("<Line>") and current:
                number += 1
                found.append((index, f"journal.xml Transaction {transaction} Line {number}"))
    assert found, key
    return found


def edit(path: Path, change: Callable[[list[str]], None]) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    change(lines)
    path.write_text("\n".join(lines), encoding="utf-8")


def names(report: Report, file: str, row: str | None = None) -> bool:
    """Whether a failure names ``file`` (and ``row``: exactly, or inside a span
    such as ``journal.csv row 4 to 5``)."""
    for failure in report.failures:
        text = str(failure)
        if file not in text:
            continue
        if row is None or row in text:
            return True
        span = re.search(re.escape(row.rsplit(" ", 1)[0]) + r" (\d+) to (\d+)", text)
        if span and int(span.group(1)) <= int(row.rsplit(" ", 1)[1]) <= int(span.group(2)):
            return True
    return False


@pytest.fixture
def exported(book: Database, keys: Keys, exporter: Callable[[Database], Exporter],
             request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Path]:
    """A fresh copy of a verified export of a period, in the test's format."""
    with book.factory() as session:
        from sqlalchemy import text

        stamps = session.execute(text("SELECT recorded_at FROM ledger_entries ORDER BY id")).scalars().all()
    result = exporter(book)(request.param, period_from=stamps[2])
    assert verify_path(result.directory, keys.verifier).ok
    copies = iter(range(100))

    def copy() -> Path:
        target = tmp_path / f"copy-{next(copies)}"
        shutil.copytree(result.directory, target)
        return target

    return copy


def journal(directory: Path) -> tuple[Path, str]:
    path = next(directory.glob("journal.*"))
    return path, path.suffix[1:]


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_one_changed_byte(exported: Callable[[], Path], keys: Keys) -> None:
    directory = exported()
    path, fmt = journal(directory)
    index, row = rows_of_entry(path, fmt, "many:7")[0]

    def one_byte(lines: list[str]) -> None:
        position = lines[index].index("bank:RUB") + 1  # the account code, in every format
        lines[index] = lines[index][:position] + "o" + lines[index][position + 1:]

    edit(path, one_byte)
    report = verify_path(directory, keys.verifier)
    assert not report.ok
    assert names(report, path.name)  # the file's SHA-256
    assert names(report, path.name, row), [str(f) for f in report.failures]


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_one_changed_amount(exported: Callable[[], Path], keys: Keys) -> None:
    directory = exported()
    path, fmt = journal(directory)
    index, row = rows_of_entry(path, fmt, "many:11")[1]
    pattern = {"csv": r",(\d+\.\d\d),RUB,", "jsonl": r'"credit":"(\d+\.\d\d)"', "xml": r"<CurrencyAmount>([\d.]+)<"}
    edit(path, lambda lines: lines.__setitem__(index, re.sub(pattern[fmt], lambda m: m.group(0).replace(
        m.group(1), "999.99"), lines[index], count=1)))
    report = verify_path(directory, keys.verifier)
    assert names(report, path.name, row), [str(f) for f in report.failures]
    assert any("does not balance" in f.message for f in report.failures)
    assert names(report, f"trial_balance.{fmt}")  # the journal no longer sums to the trial balance


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_a_deleted_row(exported: Callable[[], Path], keys: Keys) -> None:
    directory = exported()
    path, fmt = journal(directory)
    (index, first), (_, second) = rows_of_entry(path, fmt, "many:13")[:2]
    edit(path, lambda lines: lines.pop(index + 1))
    report = verify_path(directory, keys.verifier)
    assert not report.ok
    assert names(report, path.name, first), [str(f) for f in report.failures]
    del second


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_two_reordered_rows(exported: Callable[[], Path], keys: Keys) -> None:
    directory = exported()
    path, fmt = journal(directory)
    (index, _), (_, second_row) = rows_of_entry(path, fmt, "many:17")[:2]

    def swap(lines: list[str]) -> None:
        lines[index], lines[index + 1] = lines[index + 1], lines[index]

    edit(path, swap)
    report = verify_path(directory, keys.verifier)
    assert not report.ok
    messages = [str(f) for f in report.failures]
    assert any("out of order" in m for m in messages), messages
    assert names(report, path.name, second_row), messages


def test_rows_of_two_entries_swapped(book: Database, keys: Keys, exporter: Callable[[Database], Exporter]) -> None:
    directory = exporter(book)("csv").directory
    path = directory / "journal.csv"
    last_of_first = rows_of_entry(path, "csv", "many:20")[-1]
    first_of_next = rows_of_entry(path, "csv", "many:21")[0]
    assert first_of_next[0] == last_of_first[0] + 1

    def swap(lines: list[str]) -> None:
        i = last_of_first[0]
        lines[i], lines[i + 1] = lines[i + 1], lines[i]

    edit(path, swap)
    report = verify_path(directory, keys.verifier)
    # The second of the swapped rows is where the sequence goes backwards.
    moved = f"journal.csv row {int(last_of_first[1].rsplit(' ', 1)[1]) + 1}"
    assert any(f.where == moved and "out of order" in f.message for f in report.failures), [
        str(f) for f in report.failures]


@pytest.mark.parametrize("exported", FORMATS, indirect=True)
def test_a_swapped_key(exported: Callable[[], Path], keys: Keys, tmp_path: Path) -> None:
    directory = exported()
    other = make_keys(tmp_path / "other")
    report = verify_path(directory, other.verifier)
    assert names(report, "manifest.json.sig")
    assert any("does not verify with the public key given" in f.message for f in report.failures)
    assert any("checkpoint" in f.where and "not signed by key" in f.message for f in report.failures)
    # A manifest re-signed with another key fails with the right key just the same.
    import base64

    data = (directory / "manifest.json").read_bytes()
    (directory / "manifest.json.sig").write_text(base64.b64encode(other.settings_key.sign(data)).decode())
    report = verify_path(directory, keys.verifier)
    assert [f.where for f in report.failures] == ["manifest.json.sig"]


@pytest.mark.parametrize("exported", ["csv"], indirect=True)
def test_other_files_name_their_rows(exported: Callable[[], Path], keys: Keys) -> None:
    directory = exported()
    statements = directory / "statements.csv"
    rows = list(csv.reader(statements.open(newline="")))
    number = next(n for n, row in enumerate(rows[1:], 1) if row[2] == "posting" and row[8])
    rows[number][8] = "0.01"  # a debit
    with statements.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    trial = directory / "trial_balance.csv"
    balance_rows = list(csv.reader(trial.open(newline="")))
    balance_rows[2][6] = "1.23"
    with trial.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(balance_rows)
    report = verify_path(directory, keys.verifier)
    wheres = [f.where for f in report.failures]
    assert f"statements.csv row {number}" in wheres, wheres
    assert "trial_balance.csv row 2" in wheres, wheres


@pytest.mark.parametrize("exported", ["jsonl"], indirect=True)
def test_manifest_edits_and_extra_or_missing_files(exported: Callable[[], Path], keys: Keys) -> None:
    directory = exported()
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["journal"]["entries"] += 1
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "extra.txt").write_text("hello")
    (directory / "statements.jsonl").unlink()
    report = verify_path(directory, keys.verifier)
    wheres = {f.where for f in report.failures}
    assert {"manifest.json.sig", "extra.txt", "statements.jsonl"} <= wheres, wheres
