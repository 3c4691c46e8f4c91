"""Random sequences of ledger operations against an independent model.

The model keeps every account's four counters and every hold's state, predicts
whether each operation must succeed or be refused (and with which code), and after
every step the database must agree with it, and the ledger's invariants must hold:
debits equal credits per currency, counters equal the sum of postings, no limited
account beyond its limit, replays identical, failed batches leave nothing behind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from settlement.db import unit_of_work
from settlement.errors import SettlementError
from settlement.ledger import AccountSpec, AccountType, EntryResult, EntrySpec, HoldResult, Ledger, credit, debit
from settlement.ledger.errors import LedgerError
from tests.conftest import Database
from tests.ledger.invariants import counts, ledger_violations

CURRENCIES = ("RUB", "CNY")


@dataclass
class ModelAccount:
    code: str
    currency: str
    debit_limited: bool
    credit_limited: bool
    limit: int
    dpo: int = 0
    cpo: int = 0
    dpe: int = 0
    cpe: int = 0

    def broken(self) -> bool:
        if self.debit_limited and self.dpe + self.dpo > self.cpo + self.limit:
            return True
        return self.credit_limited and self.cpe + self.cpo > self.dpo + self.limit


@dataclass
class ModelHold:
    id: int
    debit: str
    credit: str
    amount: int
    expires_at: dt.datetime
    status: str = "pending"


@dataclass
class Done:
    """A call that was made, to be made again with the same key."""

    call: Callable[[Ledger], Any]
    outcome: Any                 # the result, or the error code
    refused: bool = False


class LedgerMachine(RuleBasedStateMachine):
    """Examples share one database; each uses its own account codes and keys, and
    time only moves forward across examples (the hold sweeper is global)."""

    accounts = Bundle("accounts")
    entries = Bundle("entries")
    holds = Bundle("holds")

    clock = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

    def __init__(self, database: Database) -> None:
        super().__init__()
        self.db = database
        self.prefix = uuid.uuid4().hex[:8]
        self.now = LedgerMachine.clock + dt.timedelta(days=1)
        self.model: dict[str, ModelAccount] = {}
        self.model_holds: dict[int, ModelHold] = {}
        self.entry_accounts: dict[int, list[tuple[str, str, int]]] = {}
        self.reversed: set[int] = set()
        self.done: list[Done] = []
        self.keys = 0

    # -- helpers --------------------------------------------------------------------

    def key(self) -> str:
        self.keys += 1
        return f"{self.prefix}:{self.keys}"

    def run(self, call: Callable[[Ledger], Any]) -> Any:
        """Run ``call`` in a unit of work; return its result or the refusal."""
        try:
            with unit_of_work(self.db.factory) as session:
                return call(Ledger(session, clock=lambda: self.now))
        except LedgerError as error:
            return error
        except SettlementError as error:
            return error

    def apply(self, legs: list[tuple[str, str, int]], pending: bool = False,
              release: list[tuple[str, str, int]] | None = None) -> dict[str, ModelAccount]:
        """Model accounts after ``legs`` (account, side, amount) and releases, as copies."""
        changed = {code: ModelAccount(**vars(self.model[code])) for code, _, _ in legs + (release or [])}
        for code, side, amount in release or []:
            if side == "D":
                changed[code].dpe -= amount
            else:
                changed[code].cpe -= amount
        for code, side, amount in legs:
            account = changed[code]
            if pending:
                if side == "D":
                    account.dpe += amount
                else:
                    account.cpe += amount
            elif side == "D":
                account.dpo += amount
            else:
                account.cpo += amount
        return changed

    def expect(self, result: Any, refused: bool, code: str = "insufficient_funds") -> None:
        if refused:
            assert isinstance(result, SettlementError), f"expected {code}, got {result!r}"
            assert result.code == code, f"expected {code}, got {result.code}: {result}"
        else:
            assert not isinstance(result, SettlementError), f"unexpected refusal {result!r}"

    # -- rules ----------------------------------------------------------------------

    @initialize(target=accounts)
    def open_banks(self) -> Any:
        codes = []
        for currency in CURRENCIES:
            code = f"{self.prefix}:bank:{currency}"
            self.run(lambda ledger, c=code, cur=currency: ledger.create_account(
                AccountSpec(c, cur, AccountType.ASSET)))
            self.model[code] = ModelAccount(code, currency, False, False, 0)
            codes.append(code)
        return multiple(*codes)

    @rule(target=accounts, currency=st.sampled_from(CURRENCIES), kind=st.sampled_from(["free", "wallet", "capped"]),
          limit=st.integers(0, 2_000))
    def open_account(self, currency: str, kind: str, limit: int) -> str:
        code = f"{self.prefix}:acct:{len(self.model)}"
        debit_limited = kind == "wallet"
        credit_limited = kind == "capped"
        spec = AccountSpec(code, currency, AccountType.LIABILITY if debit_limited else AccountType.ASSET,
                           debits_must_not_exceed_credits=debit_limited,
                           credits_must_not_exceed_debits=credit_limited,
                           credit_limit=limit if kind != "free" else None)
        result = self.run(lambda ledger: ledger.create_account(spec))
        self.expect(result, False)
        self.model[code] = ModelAccount(code, currency, debit_limited, credit_limited, limit if kind != "free" else 0)
        # Fund it from the bank so transfers have something to move.
        bank = f"{self.prefix}:bank:{currency}"
        self.transfer_between(bank, code, 5_000)
        return code

    def transfer_between(self, source: str, target: str, amount: int) -> Any:
        src, dst = self.model[source], self.model[target]
        key = self.key()
        if src.currency != dst.currency:
            spec = EntrySpec(key, [debit(source, amount, src.currency), credit(target, amount, src.currency)])
            result = self.run(lambda ledger: ledger.post(spec))
            self.expect(result, True, "currency_mismatch")
            self.done.append(Done(lambda ledger: ledger.post(spec), result.code, True))
            return None
        spec = EntrySpec(key, [debit(source, amount, src.currency), credit(target, amount, src.currency)])
        legs = [(source, "D", amount), (target, "C", amount)]
        after = self.apply(legs)
        refused = any(a.broken() for a in after.values())
        result = self.run(lambda ledger: ledger.post(spec))
        self.expect(result, refused)
        if refused:
            self.done.append(Done(lambda ledger: ledger.post(spec), result.code, True))
            return None
        self.model.update(after)
        self.entry_accounts[result.id] = legs
        self.done.append(Done(lambda ledger: ledger.post(spec), result))
        return result

    @rule(target=entries, source=accounts, target_account=accounts, amount=st.integers(1, 4_000))
    def transfer(self, source: str, target_account: str, amount: int) -> Any:
        result = self.transfer_between(source, target_account, amount)
        return result.id if isinstance(result, EntryResult) else -1

    @rule(target=holds, source=accounts, target_account=accounts, amount=st.integers(1, 3_000),
          ttl=st.integers(1, 120))
    def create_hold(self, source: str, target_account: str, amount: int, ttl: int) -> int:
        src, dst = self.model[source], self.model[target_account]
        if src.currency != dst.currency:
            return -1
        expires_at = self.now + dt.timedelta(minutes=ttl)
        key = self.key()
        call = lambda ledger: ledger.create_hold(key, debit=source, credit=target_account, amount=amount,  # noqa: E731
                                                 currency=src.currency, expires_at=expires_at)
        after = self.apply([(source, "D", amount), (target_account, "C", amount)], pending=True)
        refused = any(a.broken() for a in after.values())
        result = self.run(call)
        self.expect(result, refused)
        if refused:
            self.done.append(Done(call, result.code, True))
            return -1
        self.model.update(after)
        self.model_holds[result.hold.id] = ModelHold(result.hold.id, source, target_account, amount, expires_at)
        self.done.append(Done(call, result))
        return int(result.hold.id)

    @rule(target=holds, hold_id=holds, fraction=st.integers(0, 120), keep=st.booleans())
    def post_hold(self, hold_id: int, fraction: int, keep: bool) -> int:
        if hold_id < 0:
            return -1
        hold = self.model_holds[hold_id]
        amount = max(1, hold.amount * fraction // 100)
        key = self.key()
        call = lambda ledger: ledger.post_hold(key, hold_id, amount, keep_remainder=keep)  # noqa: E731
        result = self.run(call)
        if hold.status != "pending":
            self.expect(result, True, "hold_already_resolved")
        elif hold.expires_at <= self.now:
            self.expect(result, True, "hold_expired")
        elif amount > hold.amount:
            self.expect(result, True, "exceeds_hold_amount")
        else:
            remainder = hold.amount - amount if keep else 0
            release = [(hold.debit, "D", hold.amount), (hold.credit, "C", hold.amount)]
            after = self.apply([(hold.debit, "D", amount), (hold.credit, "C", amount)], release=release)
            self.model.update(after)
            if remainder:
                self.model.update(self.apply([(hold.debit, "D", remainder), (hold.credit, "C", remainder)],
                                             pending=True))
            refused = any(self.model[c].broken() for c in (hold.debit, hold.credit))
            assert not refused, "posting a hold cannot break a limit the hold respected"
            self.expect(result, False)
            hold.status = "posted"
            self.done.append(Done(call, result))
            if remainder:
                assert isinstance(result, HoldResult)
                assert result.continuation is not None
                child = result.continuation
                self.model_holds[child.id] = ModelHold(child.id, hold.debit, hold.credit, remainder,
                                                       hold.expires_at)
                return int(child.id)
            return -1
        self.done.append(Done(call, result.code, True))
        return -1

    @rule(hold_id=holds)
    def void_hold(self, hold_id: int) -> None:
        if hold_id < 0:
            return
        hold = self.model_holds[hold_id]
        key = self.key()
        call = lambda ledger: ledger.void_hold(key, hold_id)  # noqa: E731
        result = self.run(call)
        if hold.status != "pending":
            self.expect(result, True, "hold_already_resolved")
            self.done.append(Done(call, result.code, True))
            return
        self.expect(result, False)
        self.model.update(self.apply([], release=[(hold.debit, "D", hold.amount), (hold.credit, "C", hold.amount)]))
        hold.status = "voided"
        self.done.append(Done(call, result))

    @rule(minutes=st.integers(1, 90))
    def time_passes_and_holds_expire(self, minutes: int) -> None:
        self.now += dt.timedelta(minutes=minutes)
        LedgerMachine.clock = max(LedgerMachine.clock, self.now)
        due = {h.id for h in self.model_holds.values() if h.status == "pending" and h.expires_at <= self.now}
        expired = self.run(lambda ledger: ledger.expire_holds(limit=100_000))
        assert set(expired) & set(self.model_holds) == due
        for hold_id in due:
            hold = self.model_holds[hold_id]
            self.model.update(self.apply([], release=[(hold.debit, "D", hold.amount),
                                                      (hold.credit, "C", hold.amount)]))
            hold.status = "expired"

    @rule(entry_id=entries)
    def reverse(self, entry_id: int) -> None:
        if entry_id < 0:
            return
        key = self.key()
        call = lambda ledger: ledger.reverse(key, entry_id)  # noqa: E731
        result = self.run(call)
        if entry_id in self.reversed:
            self.expect(result, True, "already_reversed")
            self.done.append(Done(call, result.code, True))
            return
        legs = [(code, "C" if side == "D" else "D", amount) for code, side, amount in self.entry_accounts[entry_id]]
        after = self.apply(legs)
        refused = any(a.broken() for a in after.values())
        self.expect(result, refused)
        if refused:
            self.done.append(Done(call, result.code, True))
            return
        self.model.update(after)
        self.reversed.add(entry_id)
        self.done.append(Done(call, result))

    @rule(index=st.integers(0, 10_000))
    def retry_with_the_same_key(self, index: int) -> None:
        if not self.done:
            return
        done = self.done[index % len(self.done)]
        result = self.run(done.call)
        if done.refused:
            assert isinstance(result, SettlementError)
            assert result.code == done.outcome
            assert result.replayed, "a remembered refusal was not marked as a replay"
        else:
            assert not isinstance(result, SettlementError), result
            assert result.replayed
            if isinstance(result, HoldResult):
                # The entry is identical; hold views report the hold's current state.
                assert result.entry == done.outcome.entry, "a replay returned a different entry"
                assert result.hold.id == done.outcome.hold.id
            else:
                assert result == done.outcome, "a replay returned a different result"

    @rule(pairs=st.lists(st.tuples(accounts, accounts, st.integers(1, 3_000)), min_size=1, max_size=6),
          poison=st.booleans())
    def batch(self, pairs: list[tuple[str, str, int]], poison: bool) -> None:
        specs, legs_list = [], []
        for source, target_account, amount in pairs:
            currency = self.model[source].currency
            if self.model[target_account].currency != currency:
                continue
            specs.append(EntrySpec(self.key(), [debit(source, amount, currency),
                                                credit(target_account, amount, currency)]))
            legs_list.append([(source, "D", amount), (target_account, "C", amount)])
        if poison:
            specs.append(EntrySpec(self.key(), [debit(f"{self.prefix}:ghost", 1, "RUB"),
                                                credit(f"{self.prefix}:bank:RUB", 1, "RUB")]))
        if not specs:
            return
        with self.db.factory() as session:
            before = counts(session)
        trial = dict(self.model)
        refused_at = None
        for index, legs in enumerate(legs_list):
            changed = {code: ModelAccount(**vars(trial[code])) for code, _, _ in legs}
            for code, side, amount in legs:
                if side == "D":
                    changed[code].dpo += amount
                else:
                    changed[code].cpo += amount
            if any(a.broken() for a in changed.values()):
                refused_at = index
                break
            trial.update(changed)
        result = self.run(lambda ledger: ledger.post_batch(specs))
        if refused_at is not None or poison:
            code = "insufficient_funds" if refused_at is not None else "account_not_found"
            self.expect(result, True, code)
            with self.db.factory() as session:
                assert counts(session) == before, "a failed batch left something behind"
            return
        self.expect(result, False)
        self.model = trial
        for entry, legs in zip(result, legs_list, strict=True):
            self.entry_accounts[entry.id] = legs

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def ledger_is_sound_and_matches_the_model(self) -> None:
        with self.db.factory() as session:
            assert ledger_violations(session) == []
            ledger = Ledger(session)
            for code, expected in self.model.items():
                got = ledger.balance(code)
                assert (got.debits_posted, got.credits_posted, got.debits_pending, got.credits_pending) == (
                    expected.dpo, expected.cpo, expected.dpe, expected.cpe), code


def _run(database: Database, examples: int, steps: int) -> None:
    run_state_machine_as_test(
        lambda: LedgerMachine(database),
        settings=settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_ledger_state_machine(database: Database) -> None:
    _run(database, examples=25, steps=30)
