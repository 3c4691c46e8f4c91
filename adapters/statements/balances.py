"""Check that a statement adds up: opening booked balance + booked movements =
closing booked balance, per account, statement and currency.

:class:`BalanceCheck` watches the item stream as it passes (memory grows with the
number of statements, not of lines)::

    check = BalanceCheck()
    for item in check.watch(parse_statement(stream)):
        ...
    for result in check.results():
        if not result.ok: ...

Rules:

* The opening balance is ``OPBD``, or ``PRCD`` (previously closed booked) when the
  statement gives no ``OPBD``; the closing balance is ``CLBD``.
* Only ``BOOK`` lines count; pending and informational lines are left out, as the
  bank leaves them out of booked balances.
* A statement with any error item cannot be confirmed: ``ok`` is false and
  ``errors`` counts them, since a skipped entry may be exactly the difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from adapters.statements.base import (
    CLOSING_BOOKED,
    OPENING_BOOKED,
    PREVIOUSLY_CLOSED_BOOKED,
    EntryStatus,
    StatementBalance,
    StatementItem,
    StatementLine,
    StatementLineError,
)


@dataclass(frozen=True, slots=True)
class BalanceResult:
    """One statement's balances against its booked movements (signed minor units)."""

    account: str
    statement_id: str
    currency: str
    opening: int | None
    closing: int | None
    movements: int
    lines: int
    errors: int

    @property
    def difference(self) -> int | None:
        """closing - (opening + movements); ``None`` when a balance is missing."""
        if self.opening is None or self.closing is None:
            return None
        return self.closing - (self.opening + self.movements)

    @property
    def ok(self) -> bool:
        return self.difference == 0 and self.errors == 0


class _Tally:
    __slots__ = ("balances", "lines", "movements")

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.movements = 0
        self.lines = 0


class BalanceCheck:
    """Accumulates balances and booked movements from a stream of statement items."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str, str], _Tally] = {}
        self._errors: dict[str, int] = {}

    def add(self, item: StatementItem) -> None:
        if isinstance(item, StatementLineError):
            self._errors[item.statement_id] = self._errors.get(item.statement_id, 0) + 1
            return
        tally = self._tallies.setdefault((item.account, item.statement_id, item.currency), _Tally())
        if isinstance(item, StatementBalance):
            tally.balances.setdefault(item.type_code, item.amount)
        elif isinstance(item, StatementLine) and item.status is EntryStatus.BOOKED:
            tally.movements += item.signed_amount
            tally.lines += 1

    def watch(self, items: Iterable[StatementItem]) -> Iterator[StatementItem]:
        """Pass ``items`` through unchanged, tallying each."""
        for item in items:
            self.add(item)
            yield item

    def results(self) -> list[BalanceResult]:
        out = []
        for (account, statement_id, currency), tally in self._tallies.items():
            opening = tally.balances.get(OPENING_BOOKED, tally.balances.get(PREVIOUSLY_CLOSED_BOOKED))
            out.append(BalanceResult(
                account=account, statement_id=statement_id, currency=currency, opening=opening,
                closing=tally.balances.get(CLOSING_BOOKED), movements=tally.movements,
                lines=tally.lines, errors=self._errors.get(statement_id, 0)))
        return out
