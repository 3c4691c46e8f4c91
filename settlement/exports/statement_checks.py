"""The statements' checks of the offline verifier: inside the statements file (runs
alone, possibly in a second process), then against the trial balance and the journal."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from settlement.errors import SettlementError
from settlement.exports.checks import TYPES, Fail, JournalCheck, TrialBalanceCheck, money, posting_digest
from settlement.exports.readers import BadRow, CsvRecords, header_problem, statement_values
from settlement.exports.rows import STATEMENT_COLUMNS, StatementLine, currency_places
from settlement.ledger.models import AccountType


@dataclass(slots=True)
class StatementSummary:
    """What one account's statement says, for the cross-checks with the trial
    balance and the journal."""

    currency: str
    opening: int
    closing: int
    digest: int
    opened_at: str
    closed_at: str


@dataclass(slots=True)
class StatementCheck:
    """Inside the statements file: each account's lines open, follow in order with
    each balance following from the previous line, and close. It needs only the
    accounts' types (for the sign of their balances), so it can run on its own,
    in another process; :func:`cross_check` then compares its summaries with the
    trial balance and the journal."""

    fail: Fail
    types: dict[str, str]
    first: int
    last: int
    summaries: dict[str, StatementSummary] = field(default_factory=dict)
    code: str | None = None
    opened: tuple[str, int] = ("", 0)
    running: int = 0
    sign: int = 1
    digest: int = 0
    previous: tuple[int, int] = (0, 0)

    def row(self, where: str, line: StatementLine) -> None:
        if line.line == "opening":
            self._open(where, line)
            return
        if self.code is None or line.account_code != self.code:
            self.fail(where, "a statement line outside its account's opening and closing lines")
            return
        if line.line == "closing":
            self._close(where, line)
            return
        amount, seq, posting_id = line.amount, line.seq, line.posting_id
        assert amount is not None
        assert seq is not None
        assert posting_id is not None
        if (seq, posting_id) <= self.previous:
            self.fail(where, "statement lines are out of order")
        self.previous = (seq, posting_id)
        if not self.first <= seq <= self.last:
            self.fail(where, f"sequence number {seq} is outside the exported journal")
        debit = line.side == "D"
        self.running += self.sign * (amount if debit else -amount)
        if line.balance != self.running:
            self.fail(where, f"balance {money(line.balance, line.currency)} does not follow from the previous "
                             f"line (expected {money(self.running, line.currency)})")
            self.running = line.balance
        self.digest += posting_digest(seq, posting_id, debit, amount)

    def _open(self, where: str, line: StatementLine) -> None:
        if self.code is not None:
            self.fail(where, f"the statement of {self.code} has no closing line")
        code = line.account_code
        self.code, self.digest, self.previous, self.running = code, 0, (0, 0), line.balance
        self.opened = (where, line.balance)
        try:
            self.sign = 1 if AccountType(self.types.get(code, "")).debit_normal else -1
        except ValueError:
            self.sign = 1
        if code in self.summaries:
            self.fail(where, f"account {code} has two statements")

    def _close(self, where: str, line: StatementLine) -> None:
        code = self.code
        assert code is not None
        if line.balance != self.running:
            self.fail(where, f"closing balance {money(line.balance, line.currency)} does not follow from the "
                             f"lines (expected {money(self.running, line.currency)})")
        self.summaries.setdefault(code, StatementSummary(line.currency, self.opened[1], line.balance, self.digest,
                                                         self.opened[0], where))
        self.code = None

    def finish(self, where: str) -> None:
        if self.code is not None:
            self.fail(where, f"the statement of {self.code} has no closing line")


def cross_check(fail: Fail, where: str, summaries: dict[str, StatementSummary], balances: TrialBalanceCheck,
                journal: JournalCheck) -> None:
    """Statements against the trial balance (opening, closing) and the journal (the
    same postings, in the same order); every trial-balance account has a statement."""
    for code, summary in summaries.items():
        account = balances.accounts.get(code)
        c = summary.currency
        if account is None:
            fail(summary.opened_at, f"account {code} is not in the trial balance")
            continue
        sign = 1 if account.type not in TYPES or AccountType(account.type).debit_normal else -1
        if summary.opening != sign * account.opening:
            fail(summary.opened_at, f"opening balance {money(summary.opening, c)} differs from the trial balance "
                                    f"({money(sign * account.opening, c)})")
        if summary.closing != sign * account.closing:
            fail(summary.closed_at, f"closing balance {money(summary.closing, c)} differs from the trial balance "
                                    f"({money(sign * account.closing, c)})")
        totals = journal.accounts.get(code)
        if summary.digest != (totals.digest if totals else 0):
            fail(summary.closed_at, f"the statement lines of {code} are not the journal's postings of that account")
    for code in balances.accounts:
        if code not in summaries:
            fail(where, f"account {code} of the trial balance has no statement")


def verify_csv_statements(path: Path, checker: StatementCheck, fail: Fail) -> None:
    """Feed a CSV statements file to ``checker``: posting lines that are right update
    it here, straight from the CSV reader's lists (its state held in local names
    meanwhile); everything else (opening and closing lines, anything wrong) goes
    through its general path."""
    name = path.name
    columns = len(STATEMENT_COLUMNS)
    places_of: dict[str, int | None] = {}
    first, last = checker.first, checker.last
    code, running, sign = checker.code, checker.running, checker.sign
    digest, previous = checker.digest, checker.previous
    with path.open("r", encoding="utf-8", errors="replace", newline="") as handle:
        records = CsvRecords(handle)
        rows = iter(records)
        try:
            problem = header_problem(name, next(rows, None), STATEMENT_COLUMNS)
            if problem is not None:
                fail(*problem)
                return
            for number, row in enumerate(rows, 1):
                if len(row) == columns and row[0] == code and row[2] == "posting":
                    # A right posting line: what StatementCheck.row does with it.
                    _, currency, _, seq_text, entry_text, posting_text, _, _, debit, credit, balance = row
                    places = places_of[currency] if currency in places_of else _places(places_of, currency)
                    text = credit if not debit else debit if not credit else ""  # a debit or a credit
                    negative = balance[:1] == "-"  # balances may be negative
                    magnitude = balance[1:] if negative else balance
                    # Amounts as the writers print them (digits, the point, the currency's places) are
                    # read here; others (or a malformed line) go the general way, which reads or refuses them.
                    if (places and places + 1 < len(text) < places + 20 and text[-places - 1] == "."
                            and places + 1 < len(magnitude) < places + 20 and magnitude[-places - 1] == "."
                            and seq_text and entry_text and posting_text):
                        digits, stated_digits = text.replace(".", "", 1), magnitude.replace(".", "", 1)
                        numbers = digits + stated_digits + seq_text + entry_text + posting_text
                        if numbers.isdigit() and numbers.isascii():
                            seq, posting_id, amount = int(seq_text), int(posting_text), int(digits)
                            line_running = running + sign * (amount if debit else -amount)
                            if ((seq, posting_id) > previous and first <= seq <= last
                                    and (-int(stated_digits) if negative else int(stated_digits)) == line_running):
                                previous, running = (seq, posting_id), line_running
                                digest += hash((seq, posting_id, 1 if debit else 2, amount))  # posting_digest
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
                checker.running, checker.digest, checker.previous = running, digest, previous
                checker.row(where, line)
                code, running, sign, digest, previous = (checker.code, checker.running, checker.sign, checker.digest,
                                                         checker.previous)
        except csv.Error as exc:
            fail(f"{name} row {records.line_num}", f"is not valid CSV ({exc})")
        finally:
            checker.running, checker.digest, checker.previous = running, digest, previous
    checker.finish(name)


def _places(cache: dict[str, int | None], currency: str) -> int | None:
    places = cache[currency] = currency_places(currency)
    return places
