"""Exports of a period or as of a time, in every format, verify offline; the trial
balance and the statements say what the ledger says."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from settlement.exports.verify import verify_path
from settlement.ledger import Ledger
from tests.conftest import Database
from tests.exports.conftest import Exporter, fill
from tests.journal.factories import Keys, post_many, seal_all


def _ok(directory: Path, keys: Keys) -> None:
    report = verify_path(directory, keys.verifier)
    assert report.failures == []
    assert report.ok


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xml"])
def test_everything_as_of_now_verifies(book: Database, keys: Keys, exporter: Callable[[Database], Exporter],
                                       fmt: str) -> None:
    result = exporter(book)(fmt)
    with book.factory() as session:
        entries = session.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one()
        postings = session.execute(text("SELECT count(*) FROM ledger_postings")).scalar_one()
    assert (result.first_seq, result.last_seq, result.entries, result.postings) == (1, entries, entries, postings)
    assert sorted(p.name for p in result.directory.iterdir()) == sorted(
        [f"journal.{fmt}", f"trial_balance.{fmt}", f"statements.{fmt}", "manifest.json", "manifest.json.sig"])
    _ok(result.directory, keys)


def test_a_period_exports_its_entries_and_balances(book: Database, keys: Keys,
                                                   exporter: Callable[[Database], Exporter]) -> None:
    with book.factory() as session:
        stamps = session.execute(text("SELECT recorded_at FROM ledger_entries ORDER BY id")).scalars().all()
    start, end = stamps[5], stamps[-10]
    post_many(book.factory, 4, "after")  # recorded after the period
    result = exporter(book)("csv", period_from=start, period_to=end)
    _ok(result.directory, keys)
    with (result.directory / "journal.csv").open(newline="") as handle:
        journal = list(csv.DictReader(handle))
    exported = {int(r["entry_id"]) for r in journal}
    with book.factory() as session:
        in_period = set(session.execute(text(
            "SELECT id FROM ledger_entries WHERE recorded_at >= :a AND recorded_at < :b"), {"a": start, "b": end}
        ).scalars())
        assert in_period <= exported
        ledger = Ledger(session)
        with (result.directory / "trial_balance.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                # Closing = the ledger's own balance as recorded just before the end.
                before_end = ledger.balance(row["account_code"], as_of=end - dt.timedelta(microseconds=1))
                net = before_end.debits_posted - before_end.credits_posted
                closing = _minor(row["closing_debit"]) - _minor(row["closing_credit"])
                assert closing == net, row["account_code"]
    manifest = json.loads((result.directory / "manifest.json").read_text())
    assert manifest["period"]["basis"] == "recorded_at"
    assert manifest["journal"]["proof"], "leaves outside the period are covered by proof nodes"


def _minor(text_amount: str) -> int:
    whole, _, cents = text_amount.partition(".")
    return int(whole) * 100 + int(cents or 0)


def test_an_empty_period_still_proves_against_the_checkpoint(book: Database, keys: Keys,
                                                             exporter: Callable[[Database], Exporter]) -> None:
    far = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    result = exporter(book)("jsonl", period_from=far, period_to=far + dt.timedelta(days=1))
    assert (result.entries, result.postings) == (0, 0)
    _ok(result.directory, keys)


def test_sqlite_exports_verify_too(sqlite_database: Database, keys: Keys,
                                   exporter: Callable[[Database], Exporter]) -> None:
    fill(sqlite_database)
    seal_all(sqlite_database.factory)
    for fmt in ("csv", "xml"):
        _ok(exporter(sqlite_database)(fmt).directory, keys)


def test_statements_checked_in_a_second_process_report_the_same(book: Database, keys: Keys,
                                                                exporter: Callable[[Database], Exporter],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from settlement.exports import verify

    monkeypatch.setattr(verify, "PARALLEL_BYTES", 0)
    directory = exporter(book)("csv").directory
    _ok(directory, keys)
    statements = directory / "statements.csv"
    lines = statements.read_text().split("\n")
    number = next(n for n, line in enumerate(lines) if ",posting," in line)
    lines[number] = lines[number].rsplit(",", 1)[0] + ",123456.78"
    statements.write_text("\n".join(lines))
    report = verify_path(directory, keys.verifier)
    assert f"statements.csv row {number}" in [f.where for f in report.failures]
