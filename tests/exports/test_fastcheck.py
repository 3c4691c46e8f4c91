"""The fast paths decide nothing on their own: a journal or a statements file checked
through them gives what the general path alone gives (every entry, every line) (the same failures, the same
sums per account, added in the same order), for entries of any shape, accounts
in clashing currencies and texts written in ways the writers never write."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.exports.checks import JournalCheck
from settlement.exports.fastcheck import CsvJournal, verify_csv_journal
from settlement.exports.readers import read_csv
from settlement.exports.rows import JOURNAL_COLUMNS, STATEMENT_COLUMNS, format_amount
from settlement.exports.statement_checks import StatementCheck, verify_csv_statements
from settlement.journal import canonical, merkle

TIMES = [f"2026-01-0{day}T10:00:00.00000{n}Z" for day in range(1, 4) for n in range(4)]
CODES = ["bank", "wallet", "fees", "fx"]


@dataclass
class Posting:
    code: str
    currency: str
    amount: int
    debit: bool
    pending: bool


@dataclass
class Entry:
    recorded: int
    description: str
    metadata: dict[str, object]
    reverses: int | None
    postings: list[Posting]


def _pair(code: str, other: str, currency: str, amount: int, debit_first: bool, pending: bool) -> list[Posting]:
    return [Posting(code, currency, amount, debit_first, pending), Posting(other, currency, amount, not debit_first,
                                                                           pending)]


METADATA = [{}, {"order": 7}, {"z": [1, 2.5, None]}]  # float-ok: metadata is any JSON, numbers with a fraction too
POSTING = st.builds(Posting, st.sampled_from(CODES), st.sampled_from(["RUB", "CNY", "JPY"]),
                    st.integers(0, 10**7), st.booleans(), st.booleans())
PAIR = st.builds(_pair, st.sampled_from(CODES), st.sampled_from(CODES), st.sampled_from(["RUB", "CNY"]),
                 st.integers(1, 10**7), st.booleans(), st.booleans())
ENTRY = st.builds(Entry, st.integers(0, len(TIMES) - 1),
                  st.sampled_from(["order 1", "a, b", 'say "hi"', "two\nlines", "\u4e2d\u6587", ""]),
                  st.sampled_from(METADATA), st.none() | st.integers(1, 3),
                  PAIR | st.lists(POSTING, max_size=4))
#: Ways of writing a field that the writers never use (field index, old text -> new text).
Rewrite = tuple[int, int, tuple[int, str, str]]
REWRITES = st.sampled_from([(13, ".", ".0"), (14, ".", ".0"), (13, "", "+"), (10, "", "0"), (11, "", "0"),
                            (1, "", "0"), (16, "false", "False"), (7, "{}", "{ }"), (6, "order", "Order"),
                            (13, "1", "7"), (15, "RUB", "rub"), (12, "wallet", ""), (13, "", "\u0661"),
                            (0, "", "0"), (4, "Z", "z")])


def _journal(entries: list[Entry], rewrites: list[Rewrite]) -> tuple[str, list[bytes]]:
    rows: list[list[str]] = []
    leaves = []
    posting_id = 0
    for seq, entry in enumerate(sorted(entries, key=lambda e: e.recorded), 1):
        postings = []
        for p in entry.postings:
            posting_id += 1
            postings.append([posting_id, CODES.index(p.code) + 1, p.code, "D" if p.debit else "C", p.amount,
                             p.currency, p.pending])
        leaf = canonical.leaf_hash(canonical.encode_fields(
            seq, f"key:{seq}", "payment", TIMES[0], TIMES[entry.recorded], entry.description, entry.metadata,
            entry.reverses, None, postings))
        leaves.append(leaf)
        head = [str(seq), str(seq), f"key:{seq}", "payment", TIMES[0], TIMES[entry.recorded], entry.description,
                json.dumps(entry.metadata), str(entry.reverses or ""), ""]
        for p in postings or [None]:
            if p is None:
                rows.append([*head, "", "", "", "", "", "", "", leaf.hex()])
                continue
            amount = format_amount(p[4], p[5])
            rows.append([*head, str(p[0]), str(p[1]), p[2], amount if p[3] == "D" else "",
                         amount if p[3] == "C" else "", p[5], "true" if p[6] else "false", leaf.hex()])
    for row_index, _, (field, old, new) in rewrites:
        if rows:
            row = rows[row_index % len(rows)]
            row[field] = new + row[field] if not old else row[field].replace(old, new, 1)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JOURNAL_COLUMNS)
    writer.writerows(rows)
    return out.getvalue(), leaves


def _outcome(path: Path, leaves: list[bytes], period: tuple[int | None, int | None], fast: bool) -> object:
    failures: list[tuple[str, str]] = []

    def fail(where: str, message: str) -> None:
        failures.append((where, message))

    start, end = (TIMES[i] if i is not None else None for i in period)
    check = JournalCheck(fail, tree_size=len(leaves), root=merkle.root_of(leaves), first=1, last=len(leaves),
                         proof=[], period_from=start, period_to=end)
    if fast:
        verify_csv_journal(path, check, fail)
    else:
        with pytest.MonkeyPatch.context() as patch:  # every entry through the general path
            patch.setattr(CsvJournal, "entry", lambda self, rows: False)
            verify_csv_journal(path, check, fail)
    check.finish(path.name)
    return (failures, check.entries, check.postings,
            [(code, t.currency, t.debit, t.credit, t.before_debit, t.before_credit, t.digest)
             for code, t in check.accounts.items()])


@settings(max_examples=150)
@given(st.lists(ENTRY, max_size=8),
       st.lists(st.tuples(st.integers(0, 40), st.just(0), REWRITES), max_size=2),
       st.tuples(st.none() | st.integers(0, len(TIMES) - 1), st.none() | st.integers(0, len(TIMES) - 1)))
def test_the_journal_fast_path_gives_the_general_paths_result(
        tmp_path_factory: pytest.TempPathFactory, entries: list[Entry], rewrites: list[Rewrite],
        period: tuple[int | None, int | None]) -> None:
    text, leaves = _journal(entries, rewrites)
    path = tmp_path_factory.mktemp("journal") / "journal.csv"
    path.write_text(text, encoding="utf-8")
    assert _outcome(path, leaves, period, fast=True) == _outcome(path, leaves, period, fast=False)


StatementLine = tuple[str, int, int, int, bool, int, str]
STATEMENT_LINE = st.tuples(st.sampled_from(["posting", "posting", "posting", "opening", "closing"]),
                           st.integers(0, 9), st.integers(0, 9), st.integers(-5000, 5000), st.booleans(),
                           st.integers(-2, 2), st.sampled_from(["", "0", "+", "-"]))


@settings(max_examples=150)
@given(st.lists(st.lists(STATEMENT_LINE, max_size=6), max_size=4))
def test_the_statements_fast_path_gives_the_general_paths_result(
        tmp_path_factory: pytest.TempPathFactory, accounts: list[list[StatementLine]]) -> None:
    rows: list[list[str]] = []
    for number, lines in enumerate(accounts):
        code, currency = f"acct:{number}", "RUB" if number % 2 else "CNY"
        running = 0
        rows.append([code, currency, "opening", "", "", "", "", "", "", "", format_amount(running, currency)])
        for kind, seq, posting, amount, debit, slip, prefix in lines:
            running += amount if debit else -amount
            text = prefix + format_amount(abs(amount), currency)
            rows.append([code, currency, kind, str(seq), str(seq), str(posting), TIMES[0], "x", text if debit else "",
                         "" if debit else text, format_amount(running + slip, currency)])
        rows.append([code, currency, "closing", "", "", "", "", "", "", "", format_amount(running, currency)])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([list(STATEMENT_COLUMNS), *rows])
    path = tmp_path_factory.mktemp("statements") / "statements.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    types = {f"acct:{n}": "asset" if n % 3 else "liability" for n in range(len(accounts))}

    def run(fast: bool) -> object:
        failures: list[tuple[str, str]] = []

        def fail(where: str, message: str) -> None:
            failures.append((where, message))

        checker = StatementCheck(fail, types, 1, 8)
        if fast:
            verify_csv_statements(path, checker, fail)
        else:
            for where, row in read_csv(path, "statements"):
                if isinstance(row, str):
                    fail(where, row)
                else:
                    checker.row(where, row)
            checker.finish(path.name)
        return failures, checker.summaries

    assert run(fast=True) == run(fast=False)
