"""The offline verifier's fast path for CSV journals, the largest file it reads
(the statements' is in :mod:`settlement.exports.statement_checks`).

An entry's rows are checked straight from the CSV reader's lists, without building a
row object per posting. An entry that passes every check here updates the
:class:`~settlement.exports.checks.JournalCheck` exactly as its general path would;
an entry that does not (anything malformed, unbalanced, out of place or not hashing
to its leaf) is handed to the general path, which names the row and the problem.
So this module decides nothing on its own: it only makes the common case cheap.

A big journal is read in two parts at once: another process checks the rows from a
byte offset where an entry starts (:func:`check_journal_tail`) while this one reads
up to it, then takes that process's sums in place of reading the rest. It does so
only when every row of the tail passed the fast path and the cut is where this
process's own reading finds a record and an entry starting; otherwise it reads on
past the cut as if there were none, so the failures are the same either way.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import json
import sys
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from settlement.errors import SettlementError
from settlement.exports.checks import AccountTotals, Fail, JournalCheck
from settlement.exports.readers import TIME_PATTERN, BadRow, CsvRecords, header_problem, journal_csv, open_text
from settlement.exports.rows import JOURNAL_COLUMNS, currency_places, parse_amount
from settlement.journal.canonical import VERSION, canonical_json
from settlement.journal.merkle import MalformedRange, RangeMerger

_TIME = TIME_PATTERN.fullmatch
_SHA256 = hashlib.sha256
_QUOTE = json.encoder.encode_basestring_ascii  # as the canonical encoder quotes strings
_LEAF_PREFIX = b"\x00" + bytes([VERSION])  # RFC 9162 leaf, then the canonical encoding's version
_DEBIT, _CREDIT = _QUOTE("D"), _QUOTE("C")
_JOURNAL_WIDTH = len(JOURNAL_COLUMNS)
#: An entry's rows; what the check takes of a posting (id, account code, currency,
#: amount, debit, pending, the account's totals if known before the entry).
Rows = list[list[str]]
_Posting = tuple[int, str, str, int, bool, bool, AccountTotals | None]


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() and text.isascii() else None


def _id_or_empty(text: str) -> bool:
    return not text or (text.isdigit() and text.isascii())


class CsvJournal:
    """The fast path over one :class:`JournalCheck`: :meth:`entry` checks an entry's
    CSV rows and, when they are right, updates the check as its general path would.

    It writes the entry's canonical bytes straight from the row's texts (strings
    quoted as the canonical encoder quotes them, ids as written, amounts and the
    metadata object re-serialised): a text that differs from what the encoder makes
    of the values (an id written with a leading zero, say) gives another leaf hash,
    and so goes to the general path, never through."""

    __slots__ = ("_effective", "_places", "_quoted", "check")

    def __init__(self, check: JournalCheck) -> None:
        self.check = check
        self._effective = ("", "")  # the last effective_at found canonical, and quoted (entries often share it)
        self._places: dict[str, int | None] = {}
        self._quoted: dict[str, str] = {}  # account codes and currencies, quoted

    def entry(self, rows: Rows) -> bool:
        """Check one entry's rows; True when they are right and the check was updated."""
        check, head = self.check, rows[0]
        seq = check.expected
        entry_text, effective, recorded, reverses, hold = head[1], head[4], head[5], head[8], head[9]
        if (check.group or check.merger is None or head[0] != str(seq)
                or not (entry_text.isdigit() and entry_text.isascii()) or not _TIME(recorded)
                or ((reverses or hold) and not (_id_or_empty(reverses) and _id_or_empty(hold)))):
            return False
        if effective != self._effective[0]:
            if not _TIME(effective):
                return False
            self._effective = (effective, _QUOTE(effective))
        metadata = head[7]
        if metadata != "{}":
            # Any JSON text of the object will do: the canonical encoding re-serialises it.
            try:
                value = json.loads(metadata)
                metadata = canonical_json(value) if isinstance(value, dict) else ""
            except (ValueError, SettlementError):
                metadata = ""
            if not metadata:
                return False
        prefix = (f"[{entry_text},{_QUOTE(head[2])},{_QUOTE(head[3])},{self._effective[1]},{_QUOTE(recorded)},"
                  f"{_QUOTE(head[6])},{metadata},{reverses or 'null'},{hold or 'null'},[")
        if len(rows) == 2:
            return self._pair(rows, seq, prefix)
        return self._general(rows, seq, prefix)

    def _general(self, rows: Rows, seq: int, prefix: str) -> bool:
        """Any entry: its postings checked, the entry hashed and added up."""
        checked = self._postings(rows)
        if checked is None:
            return False
        postings, items = checked
        leaf = _SHA256(_LEAF_PREFIX + (prefix + postings + "]]").encode("ascii")).digest()
        if leaf.hex() != rows[0][17]:
            return False
        self._commit(seq, leaf, rows[0][5], items)
        return True

    def _postings(self, rows: Rows) -> tuple[str, list[_Posting]] | None:  # noqa: PLR0911, PLR0912 - one exit per check
        """The entry's postings in canonical form, and what the check needs of each;
        None if any row is not right: every row repeats the entry's fields, postings
        are in id order and balance per currency and layer, amounts are positive in
        their currency's places, and an account keeps one currency."""
        head = rows[0]
        entry_fields, leaf_text = head[:10], head[17]
        accounts, quoted = self.check.accounts, self._quoted
        parts: list[str] = []
        items: list[_Posting] = []
        new: dict[str, str] = {}
        previous = balance = 0
        layer: str | None = None
        layer_pending = mixed = False
        for row in rows:
            if row is not head and (row[:10] != entry_fields or row[17] != leaf_text):
                return None
            posting_text, account_text, code, debit, credit, currency, pending_text = row[10:17]
            pending = pending_text == "true"
            if not (posting_text.isdigit() and account_text.isdigit() and (posting_text + account_text).isascii()
                    and code and (pending or pending_text == "false")):
                # An entry without postings (a hold's void or expiry) is one row with none of their fields.
                return None if posting_text or len(rows) > 1 or any(row[11:17]) else ("", [])
            posting_id = int(posting_text)
            if posting_id <= previous or bool(debit) == bool(credit):
                return None
            previous = posting_id
            amount = self._read_amount(debit or credit, currency)
            if amount is None or amount <= 0:
                return None
            totals = accounts.get(code)
            if totals is None:
                if new.setdefault(code, currency) != currency:
                    return None
            elif totals.currency != currency:
                return None
            parts.append(f"[{posting_text},{account_text},{quoted.get(code) or self._quote(code)},"
                         f"{_DEBIT if debit else _CREDIT},{amount},{quoted.get(currency) or self._quote(currency)},"
                         f"{pending_text}]")
            items.append((posting_id, code, currency, amount, bool(debit), pending, totals))
            if layer is None:
                layer, layer_pending = currency, pending
            elif currency != layer or pending is not layer_pending:
                mixed = True
            balance += amount if debit else -amount
        if mixed:
            sums: dict[tuple[str, bool], int] = {}
            for _, _, layer, amount, is_debit, layer_pending, _ in items:
                key = (layer, layer_pending)
                sums[key] = sums.get(key, 0) + (amount if is_debit else -amount)
            if any(sums.values()):
                return None
        elif balance:
            return None
        return ",".join(parts), items

    def _pair(self, rows: Rows, seq: int, prefix: str) -> bool:  # noqa: PLR0911 - one exit per check
        """The usual entry, two postings in one currency and layer, a debit and a
        credit written alike: they balance, so there is one amount to read; checked,
        hashed and added up without the general path's lists (other pairs go the
        general way). ``prefix`` is the entry's canonical text up to its postings."""
        head, other = rows
        posting_text, account_text, code, debit, credit, currency, pending_text = head[10:17]
        other_posting, other_account, other_code, other_debit, other_credit, other_currency, other_pending = \
            other[10:17]
        if (other_currency != currency or other_pending != pending_text or other_debit != credit
                or other_credit != debit or bool(debit) == bool(credit)):
            return self._general(rows, seq, prefix)
        pending = pending_text == "true"
        if (other[:10] != head[:10] or other[17] != head[17] or not (pending or pending_text == "false")
                or not (posting_text.isdigit() and account_text.isdigit() and other_posting.isdigit()
                        and other_account.isdigit() and code and other_code
                        and (posting_text + account_text + other_posting + other_account).isascii())):
            return False
        posting_id, other_id = int(posting_text), int(other_posting)
        if not 0 < posting_id < other_id:
            return False
        amount = self._read_amount(debit or credit, currency)
        if amount is None or amount <= 0:
            return False
        check = self.check
        accounts, quoted = check.accounts, self._quoted
        totals, other_totals = accounts.get(code), accounts.get(other_code)
        if (totals is not None and totals.currency != currency) or (
                other_totals is not None and other_totals.currency != currency):
            return False
        currency_json = quoted.get(currency) or self._quote(currency)
        first_side, other_side = (_DEBIT, _CREDIT) if debit else (_CREDIT, _DEBIT)
        canonical = (f"{prefix}[{posting_text},{account_text},{quoted.get(code) or self._quote(code)},{first_side},"
                     f"{amount},{currency_json},{pending_text}],[{other_posting},{other_account},"
                     f"{quoted.get(other_code) or self._quote(other_code)},{other_side},{amount},{currency_json},"
                     f"{pending_text}]]]")
        leaf = _SHA256(_LEAF_PREFIX + canonical.encode("ascii")).digest()
        if leaf.hex() != head[17]:
            return False
        if totals is None:  # accounts are added in the order the rows name them
            totals = accounts[code] = AccountTotals(currency)
        if other_totals is None:
            other_totals = accounts.get(other_code) or accounts.setdefault(other_code, AccountTotals(currency))
        first, second = (posting_id, totals), (other_id, other_totals)
        self._commit_pair(seq, leaf, head[5], debit=first if debit else second, credit=second if debit else first,
                          amount=amount, pending=pending)
        return True

    def _commit_pair(self, seq: int, leaf: bytes, recorded_at: str, *, debit: tuple[int, AccountTotals],
                     credit: tuple[int, AccountTotals], amount: int, pending: bool) -> None:
        """:meth:`_commit` for a pair: the debit's and the credit's posting id and
        account totals."""
        check = self.check
        check.expected = seq + 1
        check.entries += 1
        check.postings += 2
        (debit_id, debits), (credit_id, credits) = debit, credit
        # As JournalCheck._account does: pending aside, before the period, else after it, else in it.
        if pending:
            pass
        elif check.period_from is not None and recorded_at < check.period_from:
            debits.before_debit += amount
            credits.before_credit += amount
        elif check.period_to is None or recorded_at < check.period_to:
            debits.debit += amount
            debits.digest += hash((seq, debit_id, 1, amount))  # checks.posting_digest, inlined
            credits.credit += amount
            credits.digest += hash((seq, credit_id, 2, amount))
        _place_leaf(check, seq, leaf)

    def _read_amount(self, text: str, currency: str) -> int | None:
        """An amount as the writers print it (digits, the point, the currency's
        places) read directly; anything else by :meth:`_amount`'s full rules."""
        places = self._places.get(currency)
        if places and places + 1 < len(text) < places + 20 and text[-places - 1] == ".":
            digits = text.replace(".", "", 1)
            if digits.isdigit() and digits.isascii():
                return int(digits)
        return self._amount(text, currency)

    def _amount(self, text: str, currency: str) -> int | None:
        """``text`` in minor units of ``currency`` by the full rules (None where they
        refuse it); remembers the currency's places for the quick reading above."""
        if currency not in self._places:
            self._places[currency] = currency_places(currency)
        try:
            return parse_amount(text, currency)
        except SettlementError:
            return None

    def _quote(self, text: str) -> str:
        quoted = self._quoted[text] = _QUOTE(text)
        return quoted

    def _commit(self, seq: int, leaf: bytes, recorded_at: str, items: list[_Posting]) -> None:
        """What JournalCheck's general path does for a right entry."""
        check = self.check
        check.expected = seq + 1
        check.entries += 1
        check.postings += len(items)
        # As JournalCheck._account does: before the period, else after it, else in it.
        before = check.period_from is not None and recorded_at < check.period_from
        after = not before and check.period_to is not None and recorded_at >= check.period_to
        accounts = check.accounts
        for posting_id, code, currency, amount, debit, pending, known in items:
            totals = known or accounts.get(code)
            if totals is None:
                totals = accounts[code] = AccountTotals(currency)
            if pending or after:
                continue
            if before:
                if debit:
                    totals.before_debit += amount
                else:
                    totals.before_credit += amount
            elif debit:
                totals.debit += amount
                totals.digest += hash((seq, posting_id, 1, amount))  # checks.posting_digest, inlined
            else:
                totals.credit += amount
                totals.digest += hash((seq, posting_id, 2, amount))
        _place_leaf(check, seq, leaf)



def _place_leaf(check: JournalCheck, seq: int, leaf: bytes) -> None:
    """Add a right entry's leaf to the Merkle tree being rebuilt (as the general path does)."""
    assert check.merger is not None
    try:
        check.merger.push(seq - 1, seq, leaf)
    except MalformedRange as exc:
        check.fail(f"sequence number {seq}", f"cannot place leaf {seq} in the tree: {exc}")
        check.merger = None

#: An account's sums from a part of the journal: currency, debit, credit, debit and
#: credit before the period, digest (see :class:`AccountTotals`).
Sums = tuple[str, int, int, int, int, int]


@dataclass(slots=True)
class JournalPart:
    """What the journal's rows from one cut to the next (or the end) add to a
    :class:`JournalCheck`, all of them right: the first row's sequence number, the
    one after the last, the counts, the accounts' sums (in the order the rows name
    them) and the Merkle nodes of the leaves."""

    first: int
    expected: int
    entries: int
    postings: int
    accounts: dict[str, Sums]
    pieces: list[tuple[int, int, bytes]]


@dataclass(slots=True)
class Split:
    """A journal cut into chunks at ``cuts`` (the first chunk starts at the first
    cut; the rows before it are this process's). The other process checks chunks
    from the last one back; ``claim(k)`` is called on reaching chunk ``k``: True if
    it is still this process's to read, False if the other process has it (and so
    every chunk after it). ``parts()`` waits for the other process and gives what it
    found in its chunks (None for a chunk with anything not right)."""

    cuts: list[int]
    claim: Callable[[int], bool]
    parts: Callable[[], dict[int, JournalPart | None]]


def entry_start(path: Path, near: int, window: int = 1 << 16) -> int | None:
    """The offset of the first line at or after ``near`` whose first field (``seq``)
    differs from the previous line's: where an entry starts, unless a quoted field
    spans those lines (:func:`verify_csv_journal` then finds the cut unclean)."""
    with path.open("rb") as handle:
        handle.seek(near)
        lines = handle.read(window).split(b"\n")
    position, previous = near + len(lines[0]) + 1, None
    for line in lines[1:-1]:  # whole lines only
        seq = line.split(b",", 1)[0]
        if previous is not None and seq != previous and seq.isdigit():
            return position
        previous = seq
        position += len(line) + 1
    return None


def check_journal_part(path: str, start: int, end: int | None, *, tree_size: int, period_from: str | None,
                       period_to: str | None) -> JournalPart | None:
    """The fast path over the journal's rows from byte ``start`` to ``end`` (run in
    a worker process). None as soon as any row is not right, or the bytes do not
    end with a whole record: the process reading the journal from its start then
    checks these rows itself, and names them."""
    problems: list[str] = []
    with open_text(Path(path), start, end) as lines:
        records = iter(CsvRecords(lines))
        try:
            rows = [next(records, [])]
            first = _number(rows[0][0]) if len(rows[0]) == _JOURNAL_WIDTH else None
            if first is None:
                return None
            check = JournalCheck(lambda where, message: problems.append(message), tree_size=tree_size, root=b"",
                                 first=first, last=first, proof=[], period_from=period_from, period_to=period_to)
            check.merger = RangeMerger(tree_size, start=first - 1)
            right = _all_right(records, rows, CsvJournal(check).entry)
        except csv.Error:  # a quoted field left open where the bytes end, say
            return None
    if not right or problems or check.merger is None:
        return None
    accounts = {code: (t.currency, t.debit, t.credit, t.before_debit, t.before_credit, t.digest)
                for code, t in check.accounts.items()}
    return JournalPart(first, check.expected, check.entries, check.postings, accounts, check.merger.pieces())


def _all_right(reader: Iterator[list[str]], rows: Rows, entry: Callable[[Rows], bool]) -> bool:
    """Feed the entries to the fast path (``rows`` holds the first row read) until
    the end, or the first row that is not right."""
    seq_text = rows[0][0]
    for row in reader:
        if len(row) != _JOURNAL_WIDTH:
            return False
        if row[0] == seq_text:
            rows.append(row)
            continue
        if not entry(rows):
            return False
        rows, seq_text = [row], row[0]
    return entry(rows)


class _Cut:
    """A journal's lines read chunk by chunk: the same lines as one reading. On
    reaching a chunk the other process has, ``before`` is how many lines the
    ``records`` had taken, and ``chunk`` which chunk it is."""

    def __init__(self, path: Path, split: Split) -> None:
        self.path, self.split = path, split
        self.before, self.chunk = sys.maxsize, 0
        self.records: CsvRecords | None = None

    def chunks(self) -> Generator[io.TextIOWrapper, None, None]:
        """The chunks' texts, one by one: the next is asked for once the reader has
        taken every line of the one before."""
        cuts = self.split.cuts
        with open_text(self.path, 0, cuts[0]) as text:
            yield text
        for chunk, start in enumerate(cuts):
            if not self.split.claim(chunk) and self.records is not None:
                self.before, self.chunk = self.records.line_num, chunk
            with open_text(self.path, start, cuts[chunk + 1] if chunk + 1 < len(cuts) else None) as text:
                yield text

    def handed_over(self, check: JournalCheck, row: list[str]) -> bool:
        """At the first entry read past the start of a chunk the other process has
        (``row``, its first row): whether the rest is the other process's. It is if
        this entry starts right at the cut (one line: no line break inside its
        fields) and :func:`_take_parts` takes the parts from there on."""
        assert self.records is not None
        clean = self.records.line_num == self.before + 1 and not any("\n" in f or "\r" in f for f in row)
        self.before = sys.maxsize
        if not clean:
            return False
        parts = self.split.parts()
        return _take_parts(check, row, [parts.get(chunk) for chunk in range(self.chunk, len(self.split.cuts))])


def verify_csv_journal(path: Path, check: JournalCheck, fail: Fail, split: Split | None = None) -> None:
    """Feed a CSV journal to ``check``, entry by entry, through the fast path when
    the entry allows it and the general path otherwise. With a ``split``, the rows
    of the chunks the other process checked are its when the cut is clean and its
    results fit (:func:`_take_parts`); otherwise they are read here like the others."""
    name = path.name
    entry = CsvJournal(check).entry

    def flush(group: Rows, start: int) -> None:
        if entry(group):
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

    cut = _Cut(path, split) if split is not None and split.cuts else None
    with contextlib.ExitStack() as stack:
        if cut is None:
            lines: Iterator[str] = stack.enter_context(path.open("r", encoding="utf-8", errors="replace",
                                                                 newline=""))
        else:
            lines = itertools.chain.from_iterable(stack.enter_context(contextlib.closing(cut.chunks())))
        records = CsvRecords(lines)
        if cut is not None:
            cut.records = records
        rows = iter(records)
        group: Rows = []
        group_seq: str | None = None
        start = 0
        try:
            problem = header_problem(name, next(rows, None), JOURNAL_COLUMNS)
            if problem is not None:
                fail(*problem)
                return
            for number, row in enumerate(rows, 1):
                if len(row) != _JOURNAL_WIDTH:
                    if group:
                        flush(group, start)
                        group, group_seq = [], None
                    fail(f"{name} row {number}", f"has {len(row)} fields, not {_JOURNAL_WIDTH}")
                    continue
                if row[0] == group_seq:
                    group.append(row)
                    continue
                if group:
                    flush(group, start)
                if cut is not None and records.line_num > cut.before and cut.handed_over(check, row):
                    group = []
                    break
                group, group_seq, start = [row], row[0], number
        except csv.Error as exc:
            fail(f"{name} row {records.line_num}", f"is not valid CSV ({exc})")
        if group:
            flush(group, start)


def _take_parts(check: JournalCheck, row: list[str], parts: Sequence[JournalPart | None]) -> bool:
    """Add the other process's parts for the rest of the journal (from ``row`` on)
    to ``check`` if they fit: every one is there, each starts at the sequence number
    (and Merkle position) the one before ends at, the first where the check is, and
    each account keeps one currency. Otherwise leave ``check`` as it is (and the
    caller reads on)."""
    merger, accounts = check.merger, check.accounts
    if check.group or not parts or row[0] != str(check.expected) or (
            merger is not None and merger.position != check.expected - 1):
        return False
    expected = check.expected
    currencies: dict[str, str] = {}
    for part in parts:
        if part is None or part.first != expected:
            return False
        for code, sums in part.accounts.items():
            mine = accounts.get(code)
            if (mine.currency if mine is not None else currencies.setdefault(code, sums[0])) != sums[0]:
                return False
        expected = part.expected
    for part in parts:
        assert part is not None
        for code, (currency, debit, credit, before_debit, before_credit, digest) in part.accounts.items():
            mine = accounts.get(code)
            if mine is None:
                mine = accounts[code] = AccountTotals(currency)
            mine.debit += debit
            mine.credit += credit
            mine.before_debit += before_debit
            mine.before_credit += before_credit
            mine.digest += digest
        check.expected = part.expected
        check.entries += part.entries
        check.postings += part.postings
        if merger is not None:
            merger.extend(part.pieces)
    return True
