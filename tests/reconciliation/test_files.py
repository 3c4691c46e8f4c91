"""The file registry and loading: the same bytes are applied once; bad lines become
error items while good lines still count; an unusable file fails its run with a clear
summary and changes nothing already booked; a load cut short resumes."""

from __future__ import annotations

import io

import pytest

from settlement.db import unit_of_work
from settlement.reconciliation import runner
from settlement.reconciliation.errors import FileAlreadyReconciled, UnknownRail, WrongFileKind
from settlement.reconciliation.models import FileKind
from settlement.reconciliation.service import files, loading, runs
from tests.reconciliation.factories import Harness, ops, settings_for, write_file


def test_the_same_file_again_changes_nothing(recon: Harness) -> None:
    a = ops("mir", 3)
    recon.expect(*a)
    data = write_file("mir", [op.record() for op in a])
    run_id, _ = recon.reconcile(data, name="register.csv")
    before = (recon.balances(), recon.sql("SELECT count(*) FROM recon_file_items"), recon.entries())
    file_id, created = recon.register(data, name="renamed-copy.csv")
    assert not created
    assert recon.sql("SELECT count(*), min(filename) FROM recon_files") == [(1, "register.csv")]
    with pytest.raises(FileAlreadyReconciled) as refused, unit_of_work(recon.factory) as session:
        runs.create_run(session, file_id=file_id, dry_run=False, actor="cli:tester")
    assert refused.value.detail["run_id"] == run_id
    # Loading it again is a no-op too.
    runner.load_file(recon.factory, recon.settings, file_id)
    assert (recon.balances(), recon.sql("SELECT count(*) FROM recon_file_items"), recon.entries()) == before


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def test_bad_lines_become_error_items_and_good_lines_still_count(recon: Harness) -> None:
    a = ops("mir", 6)
    recon.expect(*a)
    lines = _lines(write_file("mir", [op.record() for op in a]))
    lines[2] = lines[2].replace(b";10002;", b";10x02;")                     # AMOUNT not a number
    lines[4] = lines[4].replace(b"18.11.2026", b"31.02.2026", 1)             # no such date
    lines[5] = lines[5].replace(b";;;", b";;2200000000000004;", 1)           # an unmasked card number
    _, summary = recon.reconcile(b"\n".join(lines))
    errors = recon.sql("SELECT line_number, field, reason, raw FROM recon_file_errors ORDER BY line_number")
    assert [(line, field) for line, field, _, _ in errors] == [
        (3, "AMOUNT"), (5, "TRANSACTION_DATE"), (6, "MASKED_PAN")]
    assert errors[2][2] == "an unmasked card number"
    assert "2200000000000004" not in errors[2][3]
    assert summary["file"]["records"] == 3
    assert summary["file"]["errors"] == 3
    assert summary["outcomes"]["matched"] == 3
    assert recon.balance("rail:mir:receivable:RUB") == -(a[0].amount + a[2].amount + a[5].amount)


def test_a_register_cut_short_reports_its_missing_trailer(recon: Harness) -> None:
    a = ops("mir", 2)
    recon.expect(*a)
    data = write_file("mir", [op.record() for op in a])
    cut = data[:data.rindex(b"TOTAL")]
    _, summary = recon.reconcile(cut)
    assert summary["outcomes"]["matched"] == 2
    (reason,) = recon.sql("SELECT reason FROM recon_file_errors")
    assert "no trailer" in reason[0]


MIR_HEADER = (b"RECORD_TYPE;RRN;ORIGINAL_RRN;AUTH_CODE;MASKED_PAN;AMOUNT;CURRENCY;TRANSACTION_DATE;SETTLEMENT_DATE;"
              b"FEE;NET;REFERENCE\n")


@pytest.mark.parametrize(("rail", "data", "where", "items"), [
    ("mir", b"", "empty", [(1, "file")]),
    ("mir", b"%PDF-1.7 this is not a register\n" * 3, "line 1", [(1, "file")]),
    # The register gives up on the 101st bad line in a row, which the file item names.
    ("mir", MIR_HEADER + b"PAYMENT;garbage\n" * 150, "bad lines in a row",
     [(n, "ORIGINAL_RRN") for n in range(2, 102)] + [(102, "file")]),
    # Its one line is bad (80 bytes, NULs among them) and no line is a record.
    ("unionpay", b"\x00\xff" * 40 + b"\n", "ZM", [(1, "merCatCode"), (1, "file")]),
    ("alipay", b"Partner_transaction_id|Transaction_id\n", "header", [(1, "file")]),
])
def test_an_unusable_file_fails_its_run_and_changes_nothing(recon: Harness, rail: str, data: bytes, where: str,
                                                           items: list[tuple[int, str]]) -> None:
    good = ops("mir", 2)
    recon.expect(*good)
    recon.reconcile(write_file("mir", [op.record() for op in good]), name="good")
    before = (recon.balances(), recon.entries(), recon.states())
    run_id, summary = recon.reconcile(data, rail=rail, name="bad")
    (status, code, message) = recon.sql("SELECT status, error_code, error_message FROM recon_runs WHERE id = :r",
                                        r=run_id)[0]
    assert (status, code) == ("failed", "recon_file_unusable")
    assert where in message
    assert summary["file"]["status"] == "unusable"
    assert summary["file"]["error_message"]
    errors = recon.sql("SELECT e.line_number, e.field, e.reason, e.raw FROM recon_file_errors e "
                       "JOIN recon_files f ON f.id = e.file_id WHERE f.filename = 'bad' ORDER BY e.line_number, e.id")
    assert [(line, field) for line, field, _, _ in errors] == items
    assert summary["file"]["errors"] == len(items)
    assert all(reason for _, _, reason, _ in errors)
    # The file's own item says what the run's message says.
    assert [reason for _, field, reason, _ in errors if field == "file"] == [summary["file"]["error_message"]]
    assert not any("\x00" in raw for _, _, _, raw in errors)
    assert (recon.balances(), recon.entries(),
            recon.states()) == before


@pytest.mark.parametrize("chunk", [2, 50_000])
def test_good_rows_before_a_file_breaks_stay_recorded_and_are_not_reconciled(recon: Harness, chunk: int) -> None:
    # The file fails as a whole, so no run reconciles it; what it held is kept for
    # inspection, the same whatever the chunk size.
    recon.settings = settings_for(recon.settings.database_url, recon.settings.data_dir, recon_load_chunk=chunk)
    a = ops("mir", 3)
    recon.expect(*a)
    lines = write_file("mir", [op.record() for op in a]).split(b"\n")
    data = b"\n".join(lines[:4]) + b"\n" + b"PAYMENT;garbage\n" * 150
    run_id, summary = recon.reconcile(data)
    assert recon.scalar("SELECT status FROM recon_runs WHERE id = :r", r=run_id) == "failed"
    assert (summary["file"]["status"], summary["file"]["records"], summary["file"]["errors"]) == ("unusable", 3, 101)
    assert recon.sql("SELECT line_number, reference FROM recon_file_items ORDER BY line_number") == [
        (2, a[0].reference), (3, a[1].reference), (4, a[2].reference)]
    assert recon.sql("SELECT min(line_number), max(line_number) FROM recon_file_errors WHERE field <> 'file'") == [
        (5, 104)]
    assert recon.sql("SELECT line_number FROM recon_file_errors WHERE field = 'file'") == [(105,)]
    assert sum(summary["outcomes"].values()) == 0
    assert set(recon.states().values()) == {"open"}
    assert recon.entries() == 0


def test_a_load_cut_short_resumes_after_its_checkpoint(recon: Harness) -> None:
    a = ops("mir", 9)
    data = write_file("mir", [op.record() for op in a])
    file_id, _ = recon.register(data)
    with unit_of_work(recon.factory) as session:
        stored = files.get_file(session, file_id)
    # What a loader killed after its first committed chunk of four items leaves behind.
    with files.open_items(stored, recon.settings) as (_, items), unit_of_work(recon.factory) as session:
        loading.write_chunk(session, file_id, [next(items) for _ in range(4)])
    loaded = runner.load_file(recon.factory, recon.settings, file_id)
    assert (loaded.status, loaded.record_count, loaded.error_count) == ("loaded", 9, 0)
    assert recon.sql("SELECT count(*), count(DISTINCT line_number) FROM recon_file_items") == [(9, 9)]


def test_registration_refuses_what_it_cannot_place(recon: Harness) -> None:
    with unit_of_work(recon.factory) as session:
        with pytest.raises(UnknownRail):
            files.register_file(session, recon.settings, kind=FileKind.SETTLEMENT, rail="visa",
                                source=io.BytesIO(b"x"), filename="f", actor="cli:t")
        with pytest.raises(WrongFileKind):
            files.register_file(session, recon.settings, kind=FileKind.SETTLEMENT, rail=None,
                                source=io.BytesIO(b"x"), filename="f", actor="cli:t")
        with pytest.raises(WrongFileKind):
            files.register_file(session, recon.settings, kind=FileKind.STATEMENT, rail="mir",
                                source=io.BytesIO(b"x"), filename="f", actor="cli:t")
    assert recon.sql("SELECT count(*) FROM recon_files") == [(0,)]
