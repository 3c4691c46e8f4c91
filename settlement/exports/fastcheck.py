"""The offline verifier's fast paths for CSV journals and statements, the largest
files it reads.

An entry's rows are checked straight from the CSV reader's lists, without building a
row object per posting. An entry that passes every check here updates the
:class:`~settlement.exports.checks.JournalCheck` exactly as its general path would;
an entry that does not (anything malformed, unbalanced, out of place or not hashing
to its leaf) is handed to the general path, which names the row and the problem.
So this module decides nothing on its own: it only makes the common case cheap.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from settlement.errors import SettlementError
from settlement.exports.checks import AccountTotals, Fail, JournalCheck, posting_digest
from settlement.exports.readers import LEAF_PATTERN, TIME_PATTERN, BadRow, journal_csv, statement_values
from settlement.exports.rows import JOURNAL_COLUMNS, STATEMENT_COLUMNS, parse_amount
from settlement.exports.statement_checks import StatementCheck
from settlement.journal.canonical import encode_fields
from settlement.journal.merkle import MalformedRange

_PENDING = {"true": True, "false": False}


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() and text.isascii() else None


def csv_entry(check: JournalCheck, rows: list[list[str]]) -> bool:
    """Check one entry's rows; True when they are right and ``check`` was updated."""
    head = rows[0]
    ids = _ids(check, head)
    postings = _postings(check, rows) if ids is not None else None
    if ids is None or postings is None:
        return False
    seq, entry_id, reverses, hold = ids
    try:
        metadata = {} if head[7] == "{}" else json.loads(head[7])
        data = encode_fields(entry_id, head[2], head[3], head[4], head[5], head[6], metadata, reverses, hold,
                             postings) if isinstance(metadata, dict) else b""
    except (ValueError, SettlementError):
        return False
    leaf = hashlib.sha256(b"\x00" + data).digest()
    if not data or leaf.hex() != head[17]:
        return False
    _commit(check, seq, leaf, head[5], postings)
    return True


def _ids(check: JournalCheck, head: list[str]) -> tuple[int, int, int | None, int | None] | None:
    """(seq, entry id, reverses_entry_id, hold_id) of an entry in its place with
    well-formed times and leaf hash; None otherwise."""
    seq, entry_id = _number(head[0]), _number(head[1])
    reverses = _number(head[8]) if head[8] else None
    hold = _number(head[9]) if head[9] else None
    if (check.group or check.merger is None or seq is None or entry_id is None or seq != check.expected
            or (head[8] and reverses is None) or (head[9] and hold is None)
            or not (TIME_PATTERN.fullmatch(head[4]) and TIME_PATTERN.fullmatch(head[5])
                    and LEAF_PATTERN.fullmatch(head[17]))):
        return None
    return seq, entry_id, reverses, hold


def _postings(check: JournalCheck, rows: list[list[str]]) -> list[list[Any]] | None:  # noqa: PLR0911 - one exit per check
    """The entry's postings in canonical form, or None if any row is not right:
    every row repeats the entry's fields, postings are in id order and balance per
    currency and layer, amounts are positive in their currency's places."""
    head = rows[0]
    entry_fields, leaf_text = head[:10], head[17]
    postings: list[list[Any]] = []
    sums: dict[tuple[str, bool], int] = {}
    previous = 0
    for row in rows:
        if row[:10] != entry_fields or row[17] != leaf_text:
            return None
        if not row[10]:
            return None if len(rows) > 1 or any(row[11:17]) else []
        posting_text, account_text, code, debit, credit, currency, pending_text = row[10:17]
        pending = _PENDING.get(pending_text)
        if (not (posting_text.isdigit() and account_text.isdigit() and (posting_text + account_text).isascii())
                or pending is None or not code or bool(debit) == bool(credit)):
            return None
        posting_id = int(posting_text)
        if posting_id <= previous:
            return None
        previous = posting_id
        try:
            amount = parse_amount(debit or credit, currency)
        except SettlementError:
            return None
        if amount <= 0:
            return None
        totals = check.accounts.get(code)
        if totals is not None and totals.currency != currency:
            return None
        side = "D" if debit else "C"
        postings.append([posting_id, int(account_text), code, side, amount, currency, pending])
        layer = (currency, pending)
        sums[layer] = sums.get(layer, 0) + (amount if debit else -amount)
    return None if any(sums.values()) else postings


def _commit(check: JournalCheck, seq: int, leaf: bytes, recorded_at: str, postings: list[list[Any]]) -> None:
    """What JournalCheck's general path does for a right entry."""
    check.expected = seq + 1
    check.entries += 1
    check.postings += len(postings)
    before = check.period_from is not None and recorded_at < check.period_from
    after = check.period_to is not None and recorded_at >= check.period_to
    for posting_id, _, code, side, amount, currency, pending in postings:
        totals = check.accounts.get(code)
        if totals is None:
            totals = check.accounts[code] = AccountTotals(currency)
        if pending or after:
            continue
        debit = side == "D"
        if before:
            if debit:
                totals.before_debit += amount
            else:
                totals.before_credit += amount
            continue
        if debit:
            totals.debit += amount
        else:
            totals.credit += amount
        totals.digest = posting_digest(totals.digest, posting_id, debit, amount)
    assert check.merger is not None
    try:
        check.merger.push(seq - 1, seq, leaf)
    except MalformedRange as exc:
        check.fail(f"sequence number {seq}", f"cannot place leaf {seq} in the tree: {exc}")
        check.merger = None


def verify_csv_journal(path: Path, check: JournalCheck, fail: Fail) -> None:
    """Feed a CSV journal to ``check``, entry by entry, through the fast path when
    the entry allows it and the general path otherwise."""
    name = path.name
    columns = len(JOURNAL_COLUMNS)

    def flush(group: list[list[str]], start: int) -> None:
        if csv_entry(check, group):
            return
        for offset, row in enumerate(group):
            where = f"{name} row {start + offset}"
            try:
                line = journal_csv(row)
            except (BadRow, SettlementError) as exc:
                fail(where, str(exc))
                continue
            check.row(where, line)
        check.finish_entry()

    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        group: list[list[str]] = []
        start = 0
        try:
            header = next(reader, None)
            if header is None or tuple(header) != JOURNAL_COLUMNS:
                fail(f"{name} header", f"the header is not {','.join(JOURNAL_COLUMNS)}")
                return
            for number, row in enumerate(reader, 1):
                if len(row) != columns:
                    if group:
                        flush(group, start)
                        group = []
                    fail(f"{name} row {number}", f"has {len(row)} fields, not {columns}")
                    continue
                if group and row[0] == group[0][0]:
                    group.append(row)
                    continue
                if group:
                    flush(group, start)
                group, start = [row], number
        except csv.Error as exc:
            fail(f"{name} row {reader.line_num}", f"is not valid CSV ({exc})")
        if group:
            flush(group, start)


def verify_csv_statements(path: Path, checker: StatementCheck, fail: Fail) -> None:
    """Feed a CSV statements file to ``checker``: posting lines that are right update
    it here; everything else (opening and closing lines, anything wrong) goes through
    its general path."""
    name = path.name
    columns = len(STATEMENT_COLUMNS)
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None or tuple(header) != STATEMENT_COLUMNS:
                fail(f"{name} header", f"the header is not {','.join(STATEMENT_COLUMNS)}")
                return
            for number, row in enumerate(reader, 1):
                if len(row) == columns and row[2] == "posting" and row[0] == checker.code \
                        and _statement_posting(checker, row):
                    continue
                where = f"{name} row {number}"
                if len(row) != columns:
                    fail(where, f"has {len(row)} fields, not {columns}")
                    continue
                try:
                    line = statement_values(row)
                except (BadRow, SettlementError) as exc:
                    fail(where, str(exc))
                    continue
                checker.row(where, line)
        except csv.Error as exc:
            fail(f"{name} row {reader.line_num}", f"is not valid CSV ({exc})")
    checker.finish(name)


def _statement_posting(checker: StatementCheck, row: list[str]) -> bool:
    """A right posting line, applied to ``checker`` as its general path would."""
    _, currency, _, seq_text, entry_text, posting_text, _, _, debit, credit, balance = row
    if (not (seq_text.isdigit() and entry_text.isdigit() and posting_text.isdigit()
             and (seq_text + entry_text + posting_text).isascii()) or bool(debit) == bool(credit)):
        return False
    try:
        amount = parse_amount(debit or credit, currency)
        stated = parse_amount(balance, currency)
    except SettlementError:
        return False
    seq, posting_id = int(seq_text), int(posting_text)
    running = checker.running + checker.sign * (amount if debit else -amount)
    if (seq, posting_id) <= checker.previous or not checker.first <= seq <= checker.last or stated != running:
        return False
    checker.previous = (seq, posting_id)
    checker.running = running
    checker.digest = posting_digest(checker.digest, posting_id, bool(debit), amount)
    return True
