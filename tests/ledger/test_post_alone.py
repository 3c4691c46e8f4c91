"""One entry in a transaction of its own (``post_alone``) and the one-statement write
behind it on PostgreSQL (``ledger_post_entry``): the same results, replays and
refusals as ``Ledger.post`` in a unit of work, on both databases."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from settlement.db import unit_of_work
from settlement.ledger import EntrySpec, Ledger, credit, debit, post_alone
from settlement.ledger.errors import (
    AccountNotFound,
    CurrencyMismatch,
    IdempotencyConflict,
    InsufficientFunds,
)
from settlement.money import AmountOutOfRange
from tests.conftest import Database
from tests.ledger.factories import asset, open_accounts, wallet
from tests.ledger.invariants import counts, ledger_violations


def _stored(database: Database, entry_id: int) -> object:
    with database.factory() as session:
        return Ledger(session).get_entry(entry_id)


def test_post_alone_writes_what_is_stored_and_replays_it(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w"), asset("cny", "CNY"), wallet("wc", "CNY")])
    spec = EntrySpec("alone", [debit("bank", 100, "RUB"), debit("bank", 50, "RUB"), credit("w", 120, "RUB"),
                               credit("w", 30, "RUB"), debit("cny", 7, "CNY"), credit("wc", 7, "CNY")],
                     description="two currencies", metadata={"order": "A1"})
    result = post_alone(database.factory, spec)
    assert not result.replayed
    assert result == _stored(database, result.id)
    # Counters after each posting, in order, when one account takes two postings.
    assert [(p.debits_posted_after, p.credits_posted_after) for p in result.postings[:4]] == [
        (100, 0), (150, 0), (0, 120), (0, 150)]

    replay = post_alone(database.factory, spec)
    assert replay.replayed
    assert replay == result
    with unit_of_work(database.factory) as session:
        assert Ledger(session).post(spec) == result
    with pytest.raises(IdempotencyConflict):
        post_alone(database.factory, EntrySpec("alone", [debit("bank", 1, "RUB"), credit("w", 1, "RUB")]))
    with database.factory() as session:
        assert counts(session)[:2] == (1, 6)
        assert Ledger(session).balance("w").balance == 150
        assert ledger_violations(session) == []


def test_accounts_by_id_and_by_code_in_one_entry(database: Database) -> None:
    bank, w = open_accounts(database.factory, [asset("bank"), wallet("w")])
    result = post_alone(database.factory, EntrySpec("mixed", [debit(bank.id, 10, "RUB"), debit("bank", 5, "RUB"),
                                                              credit(w.id, 15, "RUB")]))
    assert [p.account_id for p in result.postings] == [bank.id, bank.id, w.id]
    assert [p.debits_posted_after for p in result.postings[:2]] == [10, 15]
    assert result == _stored(database, result.id)


def test_refusal_is_recorded_and_replayed_like_ledger_post(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    spec = EntrySpec("spend", [debit("w", 100, "RUB"), credit("bank", 100, "RUB")])
    with pytest.raises(InsufficientFunds) as first:
        post_alone(database.factory, spec)
    assert not first.value.replayed
    assert first.value.detail == {"account": "w", "rule": "debits_must_not_exceed_credits", "index": 0}
    with database.factory() as session:
        assert counts(session) == (0, 0, 0, 1)
    post_alone(database.factory, EntrySpec("fund", [debit("bank", 500, "RUB"), credit("w", 500, "RUB")]))
    # Funded now, but the key's answer was a refusal and stays one.
    with pytest.raises(InsufficientFunds) as second:
        post_alone(database.factory, spec)
    assert second.value.replayed
    assert second.value.detail == first.value.detail
    with pytest.raises(InsufficientFunds) as third, unit_of_work(database.factory) as session:
        Ledger(session).post(spec)
    assert third.value.replayed
    with pytest.raises(IdempotencyConflict):
        post_alone(database.factory, EntrySpec("spend", [debit("w", 50, "RUB"), credit("bank", 50, "RUB")]))
    with database.factory() as session:
        assert counts(session) == (1, 2, 0, 1)
        assert Ledger(session).balance("w").balance == 500


@pytest.mark.parametrize(("postings", "error", "field"), [
    ([debit("bank", 5, "RUB"), credit("nobody", 5, "RUB")], AccountNotFound, "account"),
    ([debit("bank", 5, "RUB"), credit(10_000, 5, "RUB")], AccountNotFound, "account"),
    ([debit("bank", 5, "CNY"), credit("cny", 5, "CNY")], CurrencyMismatch, "account_currency"),
])
def test_unknown_account_or_currency_writes_nothing_but_the_refusal(
        database: Database, postings: list[object], error: type[Exception], field: str) -> None:
    open_accounts(database.factory, [asset("bank"), asset("cny", "CNY")])
    spec = EntrySpec("bad", postings)  # type: ignore[arg-type]
    with pytest.raises(error) as refused:
        post_alone(database.factory, spec)
    assert field in refused.value.detail  # type: ignore[attr-defined]
    with database.factory() as session:
        assert counts(session) == (0, 0, 0, 1)
        assert all(row[0] == 0 for row in session.execute(text(
            "SELECT debits_posted + credits_posted + debits_pending + credits_pending FROM ledger_accounts")))
    with pytest.raises(error) as again:
        post_alone(database.factory, spec)
    assert again.value.replayed  # type: ignore[attr-defined]


def test_a_counter_that_would_overflow_is_refused_and_writes_nothing(database: Database) -> None:
    open_accounts(database.factory, [asset("a"), asset("b")])
    top = 2**63 - 1
    post_alone(database.factory, EntrySpec("big", [debit("a", top, "RUB"), credit("b", top, "RUB")]))
    with pytest.raises(AmountOutOfRange) as refused:
        post_alone(database.factory, EntrySpec("more", [debit("a", 1, "RUB"), credit("b", 1, "RUB")]))
    assert refused.value.detail["account"] == "a"
    with database.factory() as session:
        assert counts(session) == (1, 2, 0, 0)
        assert ledger_violations(session) == []


def test_a_connection_lost_fails_one_call_and_the_pool_recovers(pg_database: Database) -> None:
    open_accounts(pg_database.factory, [asset("bank"), wallet("w")])
    spec = EntrySpec("first", [debit("bank", 5, "RUB"), credit("w", 5, "RUB")])
    post_alone(pg_database.factory, spec)
    with psycopg.connect(pg_database.url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    again = EntrySpec("second", [debit("bank", 7, "RUB"), credit("w", 7, "RUB")])
    with pytest.raises(psycopg.OperationalError):
        post_alone(pg_database.factory, again)
    written = post_alone(pg_database.factory, again)
    assert not written.replayed
    with pg_database.factory() as session:
        assert Ledger(session).balance("w").balance == 12
        assert counts(session)[:2] == (2, 4)


def test_codes_with_array_syntax_characters_reach_their_accounts(database: Database) -> None:
    """Codes travel inside array literals on PostgreSQL: quotes, backslashes, commas,
    braces and the word NULL must arrive as written."""
    codes = ['a"b', "c\\d", "e,f", "{g}", "NULL", "h i", "счёт:1"]
    open_accounts(database.factory, [asset(code) for code in codes])
    legs = [debit(code, 10 + n, "RUB") for n, code in enumerate(codes[:-1])]
    legs.append(credit(codes[-1], sum(10 + n for n in range(len(codes) - 1)), "RUB"))
    result = post_alone(database.factory, EntrySpec("odd codes", legs))
    with database.factory() as session:
        ledger = Ledger(session)
        for n, code in enumerate(codes[:-1]):
            assert ledger.balance(code).debits_posted == 10 + n, code
        assert ledger.balance(codes[-1]).credits_posted == sum(10 + n for n in range(len(codes) - 1))
    assert result == _stored(database, result.id)
