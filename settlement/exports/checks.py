"""The row-level checks of the offline verifier: the journal, the trial balance and
the statements, each fed one row at a time (memory: per account totals only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from settlement.errors import SettlementError
from settlement.exports.rows import BalanceLine, JournalLine, format_amount
from settlement.journal import canonical
from settlement.journal.merkle import MalformedRange, RangeMerger
from settlement.ledger.models import AccountType
from settlement.money import apply_rate

Fail = Callable[[str, str], None]


@dataclass(slots=True)
class AccountTotals:
    currency: str
    debit: int = 0
    credit: int = 0
    before_debit: int = 0
    before_credit: int = 0
    #: Sum of :func:`posting_digest` over the account's in-period posted postings, to
    #: match them with its statement lines (a sum, so parts of the journal checked
    #: apart add up).
    digest: int = 0


class JournalCheck:
    """Sequence numbers gapless from ``first`` to ``last``, rows of an entry
    consistent and in posting order, every entry balanced per currency, every entry's
    rows hashing to the leaf they carry, and the leaves (with the manifest's proof
    nodes) rebuilding the signed root."""

    def __init__(self, fail: Fail, *, tree_size: int, root: bytes, first: int, last: int,
                 proof: list[tuple[int, int, bytes]], period_from: str | None, period_to: str | None,
                 reporting_currency: str | None = None) -> None:
        self.fail = fail
        self.root, self.first, self.last = root, first, last
        self.period_from, self.period_to = period_from, period_to
        self.reporting_currency = reporting_currency
        self.merger: RangeMerger | None = RangeMerger(tree_size)
        self.after = [p for p in proof if p[0] >= last]
        self.expected = first
        self.group: list[tuple[str, JournalLine]] = []
        self.accounts: dict[str, AccountTotals] = {}
        self.entries = self.postings = 0
        self.reporting_debit = self.reporting_credit = 0
        self.rates: dict[str, str] = {}
        try:
            for piece in proof:
                if piece[1] <= first - 1:
                    self.merger.push(*piece)
        except MalformedRange as exc:
            fail("manifest.json", f"the journal proof is malformed: {exc}")
            self.merger = None

    def row(self, where: str, line: JournalLine) -> None:
        if self.group and line.seq == self.group[0][1].seq:
            self.group.append((where, line))
            return
        self.finish_entry()
        if line.seq != self.expected:
            if line.seq > self.expected:
                missing = f"{self.expected}" if line.seq == self.expected + 1 else f"{self.expected} to {line.seq - 1}"
                self.fail(where, f"sequence number {line.seq} follows {self.expected - 1}: {missing} missing")
            else:
                self.fail(where, f"sequence number {line.seq} comes after {self.expected - 1}: rows are out of "
                                 "order or repeated")
            self.merger = None
            if line.seq < self.expected:
                return
            self.expected = line.seq
        self.group = [(where, line)]

    def finish_entry(self) -> None:
        """Check the entry whose rows were given so far (the next row of another entry,
        or the end of the file, does it too)."""
        if not self.group:
            return
        group, self.group = self.group, []
        first_where, head = group[0]
        self.expected = head.seq + 1
        self.entries += 1
        postings = self._postings(group)
        leaf = self._leaf(first_where, head, postings)
        if leaf is not None and leaf.hex() != head.leaf_hash:
            rows = first_where if len(group) == 1 else f"{first_where} to {group[-1][0].rsplit(' ', 1)[-1]}"
            self.fail(first_where, f"entry {head.entry_id} (seq {head.seq}, {rows}) does not hash to its "
                                   "leaf_hash: a row of it was changed, removed or added")
        for where, line in group[1:]:
            if line.leaf_hash != head.leaf_hash:
                self.fail(where, "leaf_hash differs from the entry's first row")
        if self.merger is not None:
            if leaf is None:
                self.merger = None
            else:
                try:
                    self.merger.push(head.seq - 1, head.seq, leaf)
                except MalformedRange as exc:
                    self.fail(first_where, f"cannot place leaf {head.seq} in the tree: {exc}")
                    self.merger = None

    def _postings(self, group: list[tuple[str, JournalLine]]) -> list[list[Any]]:
        """The entry's postings, checking the rows agree, are in order and balance."""
        first_where, head = group[0]
        entry_fields = _entry_fields(head)
        postings: list[list[Any]] = []
        sums: dict[tuple[str, bool], int] = {}
        previous = 0
        for where, line in group:
            if _entry_fields(line) != entry_fields:
                self.fail(where, f"entry fields differ from {first_where} (same sequence number {head.seq})")
            if line.posting_id is None:
                if len(group) > 1:
                    self.fail(where, "a row without a posting in an entry that has postings")
                continue
            assert line.side is not None
            assert line.amount is not None
            assert line.currency is not None
            if line.posting_id <= previous:
                self.fail(where, f"posting {line.posting_id} comes after posting {previous}: rows are out of order")
            previous = line.posting_id
            postings.append([line.posting_id, line.account_id, line.account_code, line.side, line.amount,
                             line.currency, line.pending])
            layer = (line.currency, bool(line.pending))
            sums[layer] = sums.get(layer, 0) + (line.amount if line.side == "D" else -line.amount)
            self._account(where, line)
        self.postings += len(postings)
        for (currency, pending), difference in sums.items():
            if difference:
                self.fail(first_where, f"entry {head.entry_id} (seq {head.seq}) does not balance"
                                       f"{' (pending)' if pending else ''}: debits - credits = "
                                       f"{money(difference, currency)}")
        return postings

    def _leaf(self, where: str, head: JournalLine, postings: list[list[Any]]) -> bytes | None:
        """The leaf hash of the entry the rows describe (their shapes were checked as
        they were read, so they encode directly)."""
        try:
            # Any JSON text of the object will do: the canonical encoding re-serialises it.
            metadata = {} if head.metadata == "{}" else _parse_object(head.metadata)
            data = canonical.encode_fields(head.entry_id, head.idempotency_key, head.kind, head.effective_at,
                                           head.recorded_at, head.description, metadata, head.reverses_entry_id,
                                           head.hold_id, postings)
        except (SettlementError, ValueError) as exc:
            self.fail(where, f"entry {head.entry_id} cannot be encoded: {exc}")
            return None
        return canonical.leaf_hash(data)

    def _account(self, where: str, line: JournalLine) -> None:
        assert line.account_code is not None
        assert line.currency is not None
        assert line.amount is not None
        totals = self.accounts.get(line.account_code)
        if totals is None:
            totals = self.accounts[line.account_code] = AccountTotals(line.currency)
        elif totals.currency != line.currency:
            self.fail(where, f"account {line.account_code} has postings in {totals.currency} and {line.currency}")
        if line.exchange_rate is not None and self.reporting_currency is not None:
            self._reporting(where, line)
        if line.pending:
            return
        debit = line.side == "D"
        if self.period_from is not None and line.recorded_at < self.period_from:
            if debit:
                totals.before_debit += line.amount
            else:
                totals.before_credit += line.amount
            return
        if self.period_to is not None and line.recorded_at >= self.period_to:
            return
        if debit:
            totals.debit += line.amount
        else:
            totals.credit += line.amount
        totals.digest += posting_digest(line.seq, line.posting_id or 0, debit, line.amount)

    def _reporting(self, where: str, line: JournalLine) -> None:
        assert line.exchange_rate is not None
        assert line.currency is not None
        assert line.amount is not None
        assert self.reporting_currency is not None
        expected = apply_rate(line.amount, line.exchange_rate, line.currency, self.reporting_currency)
        if line.reporting_amount != expected:
            self.fail(where, "Amount is not CurrencyAmount x ExchangeRate (expected "
                             f"{money(expected, self.reporting_currency)})")
        if line.side == "D":
            self.reporting_debit += line.reporting_amount or 0
        else:
            self.reporting_credit += line.reporting_amount or 0
        rate = str(line.exchange_rate)
        if self.rates.setdefault(line.currency, rate) != rate:
            self.fail(where, f"ExchangeRate for {line.currency} differs from earlier lines")

    def finish(self, where: str) -> None:
        self.finish_entry()
        if self.expected != self.last + 1:
            self.fail(where, f"the journal ends at sequence number {self.expected - 1}, the manifest says "
                             f"{self.last}")
            return
        if self.merger is None:
            self.fail(where, "the journal rows could not be placed in the Merkle tree (see above), so they do "
                             "not rebuild the checkpoint's root")
            return
        try:
            for piece in self.after:
                self.merger.push(*piece)
            root = self.merger.root()
        except MalformedRange as exc:
            self.fail(where, f"the rows and the manifest's proof do not make a tree: {exc}")
            return
        if root != self.root:
            self.fail(where, "the journal rows do not rebuild the signed checkpoint's root hash")


def money(minor: int, currency: str) -> str:
    try:
        return f"{format_amount(minor, currency)} {currency}"
    except SettlementError:
        return f"{minor} minor units of {currency!r}"


def _entry_fields(line: JournalLine) -> tuple[object, ...]:
    return (line.entry_id, line.idempotency_key, line.kind, line.effective_at, line.recorded_at, line.description,
            line.metadata, line.reverses_entry_id, line.hold_id, line.leaf_hash)


def _parse_object(text: str) -> dict[str, object]:
    import json

    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("metadata is not a JSON object")
    return value


@dataclass(slots=True)
class TrialBalanceCheck:
    """Each account's movements equal the journal's, closing = opening + debits -
    credits, each currency sums to zero; when the export starts at the first
    sequence number, openings equal the journal rows before the period."""

    fail: Fail
    journal: JournalCheck
    accounts: dict[str, BalanceLine] = field(default_factory=dict)
    sums: dict[str, list[int]] = field(default_factory=dict)

    def row(self, where: str, line: BalanceLine) -> None:
        code = line.account_code
        if code in self.accounts:
            self.fail(where, f"account {code} appears twice")
            return
        self.accounts[code] = line
        try:
            AccountType(line.type)
        except ValueError:
            self.fail(where, f"type {line.type!r} is not an account type")
        totals = self.journal.accounts.get(code)
        debit, credit = (totals.debit, totals.credit) if totals else (0, 0)
        c = line.currency
        if (line.debit, line.credit) != (debit, credit):
            self.fail(where, f"account {code}: debit {money(line.debit, c)} credit {money(line.credit, c)}, but "
                             f"the journal's postings in the period sum to debit {money(debit, c)} credit "
                             f"{money(credit, c)}")
        if totals is not None and totals.currency != line.currency:
            self.fail(where, f"account {code} is in {totals.currency} in the journal, {line.currency} here")
        if line.closing != line.opening + line.debit - line.credit:
            self.fail(where, f"account {code}: closing is not opening + debit - credit")
        if self.journal.first == 1:
            before = (totals.before_debit - totals.before_credit) if totals else 0
            if line.opening != before:
                self.fail(where, f"account {code}: opening {money(line.opening, c)} but the journal before the "
                                 f"period sums to {money(before, c)}")
        sums = self.sums.setdefault(line.currency, [0, 0, 0, 0])
        for index, value in enumerate((line.opening, line.debit, line.credit, line.closing)):
            sums[index] += value

    def finish(self, where: str) -> None:
        for code, totals in self.journal.accounts.items():
            if code not in self.accounts and (totals.debit or totals.credit):
                self.fail(where, f"account {code} has postings in the period but no row")
        for currency, (opening, debit, credit, closing) in sorted(self.sums.items()):
            if opening or closing or debit != credit:
                self.fail(where, f"{currency} does not balance: openings sum to {money(opening, currency)}, "
                                 f"closings to {money(closing, currency)}, debits {money(debit, currency)} vs "
                                 f"credits {money(credit, currency)}")


TYPES = frozenset(t.value for t in AccountType)


def posting_digest(seq: int, posting_id: int, debit: bool, amount: int) -> int:
    """A posting's part of its account's digest: the sum of these over an account's
    postings is the same for its journal rows and its statement lines when both hold
    the same postings. Both are in (seq, posting id) order (the statements' check
    requires it), so the same postings are also the same sequence. Only integers go
    in, whose hashes Python does not randomise, so two processes agree."""
    return hash((seq, posting_id, 1 if debit else 2, amount))
