"""Ledger operations on both databases: worked examples with exact balances."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from settlement.db import unit_of_work
from settlement.ledger import (
    AccountSpec,
    AccountType,
    EntrySpec,
    HoldStatus,
    Ledger,
    credit,
    debit,
)
from settlement.ledger.errors import (
    AccountConflict,
    AlreadyReversed,
    EntryNotReversible,
    ExceedsHoldAmount,
    HoldAlreadyResolved,
    HoldExpired,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAccount,
)
from tests.conftest import Database
from tests.ledger.factories import asset, open_accounts, wallet
from tests.ledger.invariants import counts, ledger_violations


def test_transfer_moves_money_and_balances(database: Database) -> None:
    open_accounts(database.factory, [asset("bank:RUB"), wallet("buyer:1")])
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        entry = ledger.post(EntrySpec("top-up-1", [debit("bank:RUB", 150_000, "RUB"),
                                                   credit("buyer:1", 150_000, "RUB")], description="top up"))
        assert [(p.side.value, p.amount) for p in entry.postings] == [("D", 150_000), ("C", 150_000)]
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        assert ledger.balance("bank:RUB").balance == 150_000
        assert ledger.balance("buyer:1").balance == 150_000
        assert ledger.get_entry(entry.id) == entry
        assert ledger_violations(session) == []


def test_multi_currency_entry_balances_per_currency(database: Database) -> None:
    open_accounts(database.factory, [asset("buyer:RUB"), asset("fx:liquidity:CNY", "CNY"),
                                     AccountSpec("fx:liquidity:RUB", "RUB", AccountType.LIABILITY),
                                     AccountSpec("seller:CNY", "CNY", AccountType.LIABILITY)])
    with unit_of_work(database.factory) as session:
        Ledger(session).post(EntrySpec("fx-1", [
            debit("buyer:RUB", 100_000, "RUB"), credit("fx:liquidity:RUB", 100_000, "RUB"),
            debit("fx:liquidity:CNY", 8_120, "CNY"), credit("seller:CNY", 8_120, "CNY")], kind="fx.conversion"))
        assert ledger_violations(session) == []
        assert Ledger(session).balance("seller:CNY").balance == 8_120


def test_account_creation_is_idempotent_by_code(database: Database) -> None:
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        first = ledger.create_account(wallet("w"))
        again = ledger.create_account(wallet("w"))
        assert again == first
        assert again.replayed
        assert not first.replayed
        with pytest.raises(AccountConflict):
            ledger.create_account(wallet("w", currency="CNY"))
        with pytest.raises(InvalidAccount):
            ledger.create_account(AccountSpec("both", "RUB", AccountType.ASSET, True, True))


def test_no_overdraft_and_credit_limit(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w", credit_limit=5_000)])
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        ledger.post(EntrySpec("k1", [debit("w", 5_000, "RUB"), credit("bank", 5_000, "RUB")]))
        assert ledger.balance("w").balance == -5_000
    before = _counts(database)
    with pytest.raises(InsufficientFunds) as refused, unit_of_work(database.factory) as session:
        Ledger(session).post(EntrySpec("k2", [debit("w", 1, "RUB"), credit("bank", 1, "RUB")]))
    assert refused.value.detail["account"] == "w"
    entries, postings, holds, refusals = _counts(database)
    assert (entries, postings, holds) == before[:3]
    assert refusals == before[3] + 1


def test_hold_partial_captures_then_void_of_the_rest(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("buyer")])
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        ledger.post(EntrySpec("fund", [debit("bank", 10_000, "RUB"), credit("buyer", 10_000, "RUB")]))
        hold = ledger.create_hold("auth", debit="buyer", credit="bank", amount=6_000, currency="RUB")
        assert ledger.balance("buyer").available == 4_000
        first = ledger.post_hold("cap-1", hold.hold.id, 2_000, keep_remainder=True)
        assert first.hold.status is HoldStatus.POSTED
        assert first.continuation is not None
        assert first.continuation.amount == 4_000
        second = ledger.post_hold("cap-2", first.continuation.id, 1_500, keep_remainder=True)
        assert second.continuation is not None
        voided = ledger.void_hold("void", second.continuation.id)
        assert voided.hold.status is HoldStatus.VOIDED
        buyer = ledger.balance("buyer")
        assert (buyer.debits_posted, buyer.credits_posted, buyer.debits_pending) == (3_500, 10_000, 0)
        with pytest.raises(HoldAlreadyResolved):
            ledger.void_hold("void-again", second.continuation.id)
        assert ledger_violations(session) == []


def test_hold_results_are_what_is_stored(database: Database) -> None:
    """Hold operations answer from the rows their statements returned, without reading
    them back: each answer must equal what a read right after it (or a replay) sees."""
    open_accounts(database.factory, [asset("bank"), wallet("buyer")])
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        ledger.post(EntrySpec("fund", [debit("bank", 10_000, "RUB"), credit("buyer", 10_000, "RUB")]))
        created = ledger.create_hold("auth", debit="buyer", credit="bank", amount=6_000, currency="RUB",
                                     expires_at=expires)
        assert created.hold == ledger.get_hold(created.hold.id)
        assert (created.hold.status, created.hold.amount, created.hold.entry_id) == (
            HoldStatus.PENDING, 6_000, created.entry.id)
        posted = ledger.post_hold("cap", created.hold.id, 2_500, keep_remainder=True)
        assert posted.continuation is not None
        assert posted.hold == ledger.get_hold(created.hold.id)
        assert (posted.hold.status, posted.hold.posted_amount, posted.hold.resolved_entry_id) == (
            HoldStatus.POSTED, 2_500, posted.entry.id)
        assert posted.continuation == ledger.get_hold(posted.continuation.id)
        assert (posted.continuation.amount, posted.continuation.parent_hold_id, posted.continuation.expires_at) == (
            3_500, created.hold.id, created.hold.expires_at)
        voided = ledger.void_hold("void", posted.continuation.id)
        assert voided.hold == ledger.get_hold(posted.continuation.id)
        assert voided.hold.status is HoldStatus.VOIDED
        assert voided.continuation is None
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        replayed = ledger.post_hold("cap", created.hold.id, 2_500, keep_remainder=True)
        assert replayed.replayed
        assert replayed.hold == posted.hold
        assert replayed.continuation is not None
        assert replayed.continuation.id == posted.continuation.id
        assert ledger.void_hold("void", posted.continuation.id).hold == voided.hold


def test_hold_cannot_exceed_or_be_posted_after_expiry(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("buyer")])
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session, clock=lambda: now[0])
        ledger.post(EntrySpec("fund", [debit("bank", 1_000, "RUB"), credit("buyer", 1_000, "RUB")]))
        hold = ledger.create_hold("auth", debit="buyer", credit="bank", amount=800, currency="RUB",
                                  expires_at=now[0] + dt.timedelta(minutes=10))
        with pytest.raises(InsufficientFunds):
            ledger.create_hold("auth-2", debit="buyer", credit="bank", amount=300, currency="RUB")
        with pytest.raises(ExceedsHoldAmount):
            ledger.post_hold("cap-big", hold.hold.id, 900)
    now[0] += dt.timedelta(minutes=11)
    with pytest.raises(HoldExpired), unit_of_work(database.factory) as session:
        Ledger(session, clock=lambda: now[0]).post_hold("cap", hold.hold.id)
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session, clock=lambda: now[0])
        assert ledger.expire_holds() == [hold.hold.id]
        assert ledger.get_hold(hold.hold.id).status is HoldStatus.EXPIRED
        assert ledger.balance("buyer").available == 1_000
        assert ledger.expire_holds() == []
    with pytest.raises(HoldExpired) as again, unit_of_work(database.factory) as session:
        Ledger(session, clock=lambda: now[0]).post_hold("cap", hold.hold.id)
    assert again.value.replayed  # the refusal was remembered under its key


def test_reversal_once(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        entry = ledger.post(EntrySpec("k", [debit("bank", 700, "RUB"), credit("w", 700, "RUB")]))
        reversal = ledger.reverse("undo", entry.id)
        assert reversal.reverses_entry_id == entry.id
        assert {(p.account_id, p.side.value) for p in reversal.postings} == {
            (entry.postings[0].account_id, "C"), (entry.postings[1].account_id, "D")}
        assert ledger.reverse("undo", entry.id) == reversal
        with pytest.raises(AlreadyReversed):
            ledger.reverse("undo-2", entry.id)
        hold = ledger.create_hold("h", debit="bank", credit="w", amount=5, currency="RUB")
        with pytest.raises(EntryNotReversible):
            ledger.reverse("undo-hold", hold.entry.id)
        assert ledger.balance("w").balance == 0


def test_idempotent_replay_and_conflict(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    spec = EntrySpec("same", [debit("bank", 100, "RUB"), credit("w", 100, "RUB")], metadata={"order": "A1"})
    with unit_of_work(database.factory) as session:
        original = Ledger(session).post(spec)
    with unit_of_work(database.factory) as session:
        replay = Ledger(session).post(spec)
    assert replay == original
    assert replay.replayed
    with pytest.raises(IdempotencyConflict), unit_of_work(database.factory) as session:
        Ledger(session).post(EntrySpec("same", [debit("bank", 101, "RUB"), credit("w", 101, "RUB")]))
    with unit_of_work(database.factory) as session:
        assert Ledger(session).balance("w").balance == 100


def test_refusal_is_remembered_and_replayed(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    spec = EntrySpec("spend", [debit("w", 100, "RUB"), credit("bank", 100, "RUB")])
    with pytest.raises(InsufficientFunds) as first, unit_of_work(database.factory) as session:
        Ledger(session).post(spec)
    assert not first.value.replayed
    with unit_of_work(database.factory) as session:  # funds arrive
        Ledger(session).post(EntrySpec("fund", [debit("bank", 500, "RUB"), credit("w", 500, "RUB")]))
    with pytest.raises(InsufficientFunds) as second, unit_of_work(database.factory) as session:
        Ledger(session).post(spec)
    assert second.value.replayed
    assert second.value.detail == first.value.detail
    with pytest.raises(IdempotencyConflict), unit_of_work(database.factory) as session:
        Ledger(session).post(EntrySpec("spend", [debit("w", 50, "RUB"), credit("bank", 50, "RUB")]))


def test_batch_is_all_or_nothing(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("a"), wallet("b")])
    good = [EntrySpec(f"g{i}", [debit("bank", 100, "RUB"), credit("a", 100, "RUB")]) for i in range(5)]
    bad = EntrySpec("bad", [debit("b", 1, "RUB"), credit("bank", 1, "RUB")])
    before = _counts(database)
    with pytest.raises(InsufficientFunds) as refused, unit_of_work(database.factory) as session:
        Ledger(session).post_batch([*good, bad])
    assert refused.value.detail["index"] == 5
    assert _counts(database) == before
    with unit_of_work(database.factory) as session:
        results = Ledger(session).post_batch(good)
        assert len(results) == 5
        assert not any(r.replayed for r in results)
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        again = ledger.post_batch([*good, EntrySpec("g5", [debit("bank", 1, "RUB"), credit("a", 1, "RUB")])])
        assert [r.replayed for r in again] == [True] * 5 + [False]
        assert again[:5] == results
        assert ledger.balance("a").balance == 501


def test_balance_as_of_a_past_time(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    marks = []
    for i in range(3):
        with unit_of_work(database.factory) as session:
            Ledger(session).post(EntrySpec(f"k{i}", [debit("bank", 100 * (i + 1), "RUB"),
                                                     credit("w", 100 * (i + 1), "RUB")]))
        time.sleep(0.01)
        marks.append(dt.datetime.now(dt.UTC))
        time.sleep(0.01)
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        before_all = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        assert ledger.balance("w", as_of=before_all).balance == 0
        assert [ledger.balance("w", as_of=m).balance for m in marks] == [100, 300, 600]
        assert ledger.balance("w").balance == 600


def test_account_lines_paginate_newest_first(database: Database) -> None:
    open_accounts(database.factory, [asset("bank"), wallet("w")])
    with unit_of_work(database.factory) as session:
        Ledger(session).post_batch([EntrySpec(f"k{i}", [debit("bank", i + 1, "RUB"), credit("w", i + 1, "RUB")])
                                    for i in range(7)])
    seen: list[int] = []
    cursor = None
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        while True:
            page = ledger.account_lines("w", cursor=cursor, limit=3)
            seen += [line.amount for line in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == [7, 6, 5, 4, 3, 2, 1]


def test_list_accounts_by_prefix_and_cursor(database: Database) -> None:
    open_accounts(database.factory, [asset(f"merchant:{i}:payable") for i in range(5)] + [asset("other")])
    with unit_of_work(database.factory) as session:
        ledger = Ledger(session)
        first = ledger.list_accounts(code_prefix="merchant:", limit=3)
        assert len(first.items) == 3
        assert first.next_cursor
        rest = ledger.list_accounts(code_prefix="merchant:", cursor=first.next_cursor, limit=3)
        assert [a.code for a in first.items + rest.items] == [f"merchant:{i}:payable" for i in range(5)]
        assert rest.next_cursor is None


def _counts(database: Database) -> tuple[int, int, int, int]:
    with database.factory() as session:
        return counts(session)
