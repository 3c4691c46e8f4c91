"""Bad files through the registry and a run, on every rail's format and the 1C
statement: a wrong encoding, a short fixed-width line, a missing column, a
non-numeric amount, an empty file, 100 MB of garbage. A bad row is an error item
naming its line and why, and the file's good rows still match and book; a file that
is unusable as a whole fails its run with its error items and a clear summary. In
every case what an earlier file booked is left as it was."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.unionpay.zm_layout import BY_KEY
from settlement.reconciliation.models import FileKind
from tests.adapters.statements.factories import one_c_account_section, one_c_document, one_c_file
from tests.reconciliation.factories import CURRENCY, Harness, ops, write_file

D = dt.date(2026, 11, 16)


@dataclasses.dataclass(frozen=True)
class Booked:
    """What earlier files left: balances, expectation states and every posting."""

    balances: dict[str, int]
    states: dict[str, str]
    postings: list[Any]


def _booked(recon: Harness) -> Booked:
    return Booked(recon.balances(), recon.states(), recon.sql(
        "SELECT p.id, p.entry_id, a.code, p.side, p.amount, p.currency FROM ledger_postings p "
        "JOIN ledger_accounts a ON a.id = p.account_id ORDER BY p.id"))


def _book_an_earlier_file(recon: Harness) -> Booked:
    earlier = ops("mir", 3, start=900)
    recon.expect(*earlier)
    _, summary = recon.reconcile(write_file("mir", [op.record() for op in earlier]), name="earlier")
    assert (summary["outcomes"]["matched"], summary["matches_booked"]) == (3, 3)
    return _booked(recon)


def _assert_left_as_it_was(recon: Harness, before: Booked) -> None:
    now = _booked(recon)
    assert now.postings[:len(before.postings)] == before.postings
    assert {reference: now.states[reference] for reference in before.states} == before.states


def _errors(recon: Harness, name: str) -> list[tuple[int, str, str]]:
    return [(int(line), field, reason) for line, field, reason in recon.sql(
        "SELECT e.line_number, e.field, e.reason FROM recon_file_errors e JOIN recon_files f ON f.id = e.file_id "
        "WHERE f.filename = :n ORDER BY e.line_number, e.id", n=name)]


def _field(line: bytes, key: str, value: bytes) -> bytes:
    """A ZM line with field ``key`` overwritten by ``value`` (padded to its width)."""
    f = BY_KEY[key]
    return line[:f.start] + value.ljust(f.width) + line[f.end:]


def _column(line: bytes, index: int, value: bytes | None) -> bytes:
    """A delimited line with column ``index`` replaced by ``value`` (None: dropped)."""
    separator = b"|" if b"|" in line else b";"
    parts = line.split(separator)
    if value is None:
        del parts[index]
    else:
        parts[index] = value
    return separator.join(parts)


# (rail, how the second record's line is spoiled, the field named, words of the reason)
BAD_ROWS: dict[str, tuple[str, Callable[[bytes], bytes], str, str]] = {
    "zm-field-not-gbk": ("unionpay", lambda line: _field(line, "merReserved", b"\xff\xfe"), "merReserved",
                         "not valid GBK"),
    "zm-short-line": ("unionpay", lambda line: line[:100], "queryId", "record ends after 100 bytes"),
    "zm-amount-not-a-number": ("unionpay", lambda line: _field(line, "txnAmt", b"0000001OOO02"), "txnAmt",
                               "not a number"),
    "zm-nul-in-reference": ("unionpay", lambda line: _field(line, "orderId", b"un-pay-\x002"), "reference",
                            "NUL"),
    "alipay-not-utf8": ("alipay", lambda line: line.replace(b"CNY", b"CNY\xff", 1), "Currency", "not UTF-8"),
    "alipay-missing-column": ("alipay", lambda line: _column(line, 4, None), "Remarks", "missing column"),
    "alipay-amount-not-a-number": ("alipay", lambda line: _column(line, 2, b"1x0.02"), "Amount",
                                   "not a decimal amount"),
    "mir-not-ascii": ("mir", lambda line: _column(line, 11, "ми-pay-2".encode()), "REFERENCE", "not ASCII"),
    "mir-missing-column": ("mir", lambda line: _column(line, 9, None), "REFERENCE", "missing column"),
    "mir-amount-not-a-number": ("mir", lambda line: _column(line, 5, b"10x02"), "AMOUNT", "not an integer"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_a_bad_row_is_an_error_item_and_the_good_rows_still_book(recon: Harness, case: str) -> None:
    rail, spoil, field, reason = BAD_ROWS[case]
    before = _book_an_earlier_file(recon)
    a = ops(rail, 4)
    recon.expect(*a)
    lines = write_file(rail, [op.record() for op in a]).split(b"\n")
    header = 0 if rail == "unionpay" else 1
    lines[header + 1] = spoil(lines[header + 1])
    run_id, summary = recon.reconcile(b"\n".join(lines), rail=rail, name="bad")
    assert recon.scalar("SELECT status FROM recon_runs WHERE id = :r", r=run_id) == "completed"
    (error,) = _errors(recon, "bad")
    assert error[:2] == (header + 2, field)
    assert reason in error[2]
    good = [a[0], a[2], a[3]]
    assert (summary["file"]["status"], summary["file"]["records"], summary["file"]["errors"]) == ("loaded", 3, 1)
    assert (summary["outcomes"]["matched"], summary["matches_booked"]) == (3, 3)
    states = recon.states()
    assert [states[op.reference] for op in a] == ["settled:matched", "open", "settled:matched", "settled:matched"]
    receivable = f"rail:{rail}:receivable:{CURRENCY[rail]}"
    assert recon.balance(receivable) == before.balances.get(receivable, 0) - sum(op.amount for op in good)
    _assert_left_as_it_was(recon, before)


def test_a_1c_line_not_in_its_encoding_is_an_error_item_and_the_statement_still_books(recon: Harness) -> None:
    before = _book_an_earlier_file(recon)
    batch = ops("mir", 2)
    recon.expect(*batch)
    records = [op.record(settled=D) for op in batch]
    recon.reconcile(write_file("mir", records, settled=D), name="batch")
    amount = sum(r.net for r in records)
    document = one_c_document("7", f"{amount // 100}.{amount % 100:02d}", ДатаПоступило=D.strftime("%d.%m.%Y"))
    # Between the sections, a line with bytes cp1251 does not define (0x98).
    data = one_c_file([*one_c_account_section(), "SPOILED", *document]).replace(b"SPOILED", b"\x98\x98=\x98")
    bad_line = data.split(b"\r\n").index(b"\x98\x98=\x98") + 1
    clearing = recon.balance("bank:clearing:RUB")
    run_id, summary = recon.reconcile(data, rail=None, kind=FileKind.STATEMENT, name="bad")
    assert recon.scalar("SELECT status FROM recon_runs WHERE id = :r", r=run_id) == "completed"
    ((line, _, reason),) = _errors(recon, "bad")
    assert (line, reason) == (bad_line, "bytes that are not cp1251")
    assert (summary["file"]["records"], summary["file"]["errors"]) == (1, 1)
    assert (summary["outcomes"]["matched"], summary["matches_booked"]) == (1, 1)
    assert recon.balance("bank:account:RUB") == amount
    assert recon.balance("bank:clearing:RUB") == clearing - amount
    _assert_left_as_it_was(recon, before)


def _unusable(recon: Harness, data: bytes | Path, rail: str) -> tuple[dict[str, Any], list[tuple[int, str, str]]]:
    """Reconcile a file that cannot be used: its run fails, nothing booked changes."""
    before = _book_an_earlier_file(recon)
    kind = FileKind.STATEMENT if rail == "statement" else FileKind.SETTLEMENT
    run_id, summary = recon.reconcile(data, rail=None if rail == "statement" else rail, kind=kind, name="bad")
    run = recon.sql("SELECT status, error_code, error_message FROM recon_runs WHERE id = :r", r=run_id)[0]
    assert run[:2] == ("failed", "recon_file_unusable")
    assert summary["file"]["status"] == "unusable"
    errors = _errors(recon, "bad")
    assert summary["file"]["errors"] == len(errors)
    # The file's own item: where reading stopped and why, as the run says.
    (verdict,) = [(line, reason) for line, field, reason in errors if field == "file"]
    assert verdict[0] >= 1
    assert verdict[1] == summary["file"]["error_message"]
    assert run[2].endswith(verdict[1])
    assert f"line {verdict[0]}" in verdict[1]
    assert all(line >= 1 and field and reason for line, field, reason in errors)
    assert sum(summary["outcomes"].values()) == 0
    assert (summary["chunks_booked"], summary["entries"]) == (0, 0)
    assert _booked(recon) == before
    return summary, errors


@pytest.mark.parametrize("rail", ["mir", "unionpay", "alipay", "statement"])
def test_an_empty_file_fails_its_run_with_an_error_item(recon: Harness, rail: str) -> None:
    summary, errors = _unusable(recon, b"", rail)
    assert errors == [(1, "file", summary["file"]["error_message"])]
    assert "empty" in errors[0][2]


def test_a_1c_statement_in_neither_of_its_encodings_is_unusable(recon: Harness) -> None:
    data = one_c_file([*one_c_account_section(), *one_c_document("7", "10.00")], encoding="utf-8")
    _, errors = _unusable(recon, data, "statement")
    assert [(line, field) for line, field, _ in errors] == [(2, "file")]
    assert "neither as cp1251 (Windows) nor cp866 (DOS)" in errors[0][2]


@pytest.fixture(scope="module")
def garbage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """100 MiB of noise: one random MiB, repeated."""
    path = tmp_path_factory.mktemp("garbage") / "garbage.bin"
    block = random.Random(5).randbytes(1 << 20)
    with path.open("wb") as out:
        for _ in range(100):
            out.write(block)
    yield path
    path.unlink()


@pytest.mark.parametrize("rail", ["mir", "unionpay", "alipay", "statement"])
def test_100_mb_of_garbage_fails_its_run_at_its_start(recon: Harness, garbage: Path, rail: str) -> None:
    try:
        summary, errors = _unusable(recon, garbage, rail)
    finally:
        for (stored,) in recon.sql("SELECT stored_path FROM recon_files WHERE filename = 'bad'"):
            Path(stored).unlink(missing_ok=True)
    if rail == "unionpay":
        # Every noise line is a bad record, until too many in a row.
        assert len(errors) == 102
        assert all(field != "file" for _, field, _ in errors[:-1])
        assert "bad lines in a row" in errors[-1][2]
    else:
        # Not the format from its first line: nothing past it is read.
        assert [(line, field) for line, field, _ in errors] == [(1, "file")]
    assert summary["file"]["records"] == 0
