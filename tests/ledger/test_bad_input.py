"""Bad input: each refused with its own code, and nothing written."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from settlement.db import unit_of_work
from settlement.errors import SettlementError
from settlement.ledger import EntrySpec, Ledger, PostingSpec, Side, credit, debit
from tests.conftest import Database
from tests.ledger.factories import asset, open_accounts, wallet
from tests.ledger.invariants import counts, ledger_violations


def _spec(amount: object, currency: str = "RUB", *, to: str = "w") -> EntrySpec:
    return EntrySpec("bad", [PostingSpec("bank", Side.DEBIT, amount, currency),  # type: ignore[arg-type]
                             PostingSpec(to, Side.CREDIT, amount, currency)])  # type: ignore[arg-type]


CASES: dict[str, tuple[Callable[[], EntrySpec], str]] = {
    "float amount": (lambda: _spec(100.0), "float_amount"),
    "three decimals for RUB (as a string)": (lambda: _spec("1.005"), "malformed_amount"),
    "unknown currency": (lambda: _spec(100, "XYZ"), "unknown_currency"),
    "zero amount": (lambda: _spec(0), "non_positive_amount"),
    "negative amount": (lambda: _spec(-5), "non_positive_amount"),
    "amount above 2^63-1": (lambda: _spec(2**63), "amount_out_of_range"),
    "posting to an account of another currency": (lambda: _spec(100, "CNY", to="cny"), "currency_mismatch"),
    "unknown account": (lambda: _spec(100, to="nobody"), "account_not_found"),
    "unbalanced": (lambda: EntrySpec("bad", [debit("bank", 100, "RUB"), credit("w", 99, "RUB")]),
                   "unbalanced_entry"),
    "one posting": (lambda: EntrySpec("bad", [debit("bank", 100, "RUB")]), "invalid_entry"),
    "reserved kind": (lambda: EntrySpec("bad", [debit("bank", 1, "RUB"), credit("w", 1, "RUB")], kind="hold"),
                      "invalid_entry"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_entry_is_refused_with_its_code_and_nothing_written(database: Database, case: str) -> None:
    make, code = CASES[case]
    open_accounts(database.factory, [asset("bank"), wallet("w"), asset("cny", "CNY")])
    with unit_of_work(database.factory) as session:  # some history that must survive
        Ledger(session).post(EntrySpec("ok", [debit("bank", 500, "RUB"), credit("w", 500, "RUB")]))
    with database.factory() as session:
        before = counts(session)
    with pytest.raises(SettlementError) as refused, unit_of_work(database.factory) as session:
        Ledger(session).post(make())
    assert refused.value.code == code, refused.value
    with database.factory() as session:
        after = counts(session)
        entries, postings, holds, refusals = after
        # Only business refusals (unknown account, wrong currency) are remembered.
        remembered = 1 if code in ("account_not_found", "currency_mismatch") else 0
        assert (entries, postings, holds) == before[:3]
        assert refusals == before[3] + remembered
        assert Ledger(session).balance("w").balance == 500
        assert ledger_violations(session) == []


def test_three_decimals_for_rub_at_the_edge(database: Database) -> None:
    """Amounts arrive as decimal strings at the edges; money.to_minor refuses them
    before anything reaches the ledger."""
    from settlement.money import TooManyDecimals, to_minor

    with pytest.raises(TooManyDecimals) as refused:
        to_minor("10.005", "RUB")
    assert refused.value.code == "too_many_decimals"


def test_hold_refusals_write_nothing(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    with database.factory() as session:
        before = counts(session)
    for kwargs, code in [({"amount": 10.5}, "float_amount"), ({"amount": 0}, "non_positive_amount"),
                         ({"amount": 10, "currency": "ZZZ"}, "unknown_currency"),
                         ({"amount": 10, "debit": "ghost"}, "account_not_found"),
                         ({"amount": 10}, "insufficient_funds")]:
        arguments = {"debit": "w", "credit": "bank", "currency": "RUB", **kwargs}
        with pytest.raises(SettlementError) as refused, unit_of_work(database.factory) as session:
            Ledger(session).create_hold(f"h-{code}", **arguments)  # type: ignore[arg-type]
        assert refused.value.code == code
    with database.factory() as session:
        assert counts(session)[:3] == before[:3]
