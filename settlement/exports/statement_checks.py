"""The statements' checks of the offline verifier: inside the statements file (runs
alone, possibly in a second process), then against the trial balance and the journal."""

from __future__ import annotations

from dataclasses import dataclass, field

from settlement.exports.checks import TYPES, Fail, JournalCheck, TrialBalanceCheck, money, posting_digest
from settlement.exports.rows import StatementLine
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
        self.digest = posting_digest(self.digest, posting_id, debit, amount)

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
