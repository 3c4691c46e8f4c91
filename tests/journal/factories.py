"""Journal test factories: a small ledger with every kind of entry, and keys made
at test time (never committed)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work
from settlement.journal.jobs import checkpoint_now, seal_pending
from settlement.journal.keys import PublicKey, SigningKey, keygen, load_signing_key, read_public_key
from settlement.journal.store import CheckpointRow
from settlement.ledger import AccountSpec, AccountType, EntrySpec, Ledger, credit, debit

ORIGIN = "test.settlement.journal"


@dataclass(frozen=True)
class Keys:
    private: Path
    public: Path
    settings_key: SigningKey
    verifier: PublicKey


def make_keys(directory: Path, name: str = "journal.pem") -> Keys:
    private, public = keygen(directory / name)
    settings = Settings(journal_signing_key_file=private, journal_origin=ORIGIN)
    return Keys(private, public, load_signing_key(settings), read_public_key(public, ORIGIN))


def settings_for(url: str, keys: Keys | None, data_dir: Path) -> Settings:
    return Settings(database_url=url, journal_signing_key_file=keys.private if keys else None,
                    journal_signing_key=None, journal_origin=ORIGIN, data_dir=data_dir, journal_seal_batch=50,
                    journal_seal_wait_seconds=1)


def open_book(factory: SessionFactory) -> None:
    """Accounts in two currencies, some without overdraft."""
    with unit_of_work(factory) as session:
        ledger = Ledger(session)
        for currency in ("RUB", "CNY"):
            ledger.create_account(AccountSpec(f"bank:{currency}", currency, AccountType.ASSET))
            ledger.create_account(AccountSpec(f"fx:liquidity:{currency}", currency, AccountType.LIABILITY))
            for n in range(3):
                ledger.create_account(AccountSpec(f"wallet:{n}:{currency}", currency, AccountType.LIABILITY,
                                                  debits_must_not_exceed_credits=True))
        ledger.create_account(AccountSpec("income:fees:RUB", "RUB", AccountType.INCOME))


def transfer(key: str, source: str, target: str, amount: int, currency: str = "RUB", **extra: object) -> EntrySpec:
    return EntrySpec(key, [debit(source, amount, currency), credit(target, amount, currency)], **extra)  # type: ignore[arg-type]


def post_variety(factory: SessionFactory, prefix: str = "v") -> list[int]:
    """Entries of every shape: transfers in two currencies, a split with a fee, a
    conversion, metadata and awkward text, a hold posted in part, a hold voided (an
    entry without postings), a reversal. Returns the entry ids."""
    ids: list[int] = []
    with unit_of_work(factory) as session:
        ledger = Ledger(session)
        for n in range(3):
            ids.append(ledger.post(transfer(f"{prefix}:topup:{n}", "bank:RUB", f"wallet:{n}:RUB", 100_000 + n)).id)
            ids.append(ledger.post(transfer(f"{prefix}:topup-cny:{n}", "bank:CNY", f"wallet:{n}:CNY", 5_000 + n,
                                            "CNY")).id)
        split = EntrySpec(f"{prefix}:split", [debit("wallet:0:RUB", 10_000, "RUB"),
                                              credit("wallet:1:RUB", 9_700, "RUB"),
                                              credit("income:fees:RUB", 300, "RUB")],
                          kind="payment.capture", description="order 42\nline two, \"quoted\"\t\u0001 \u4e2d\u6587",
                          metadata={"order": 42, "z": [1, 2.5, None], "\u00e9": "caf\u00e9"},
                          effective_at=dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC))
        ids.append(ledger.post(split).id)
        conversion = EntrySpec(f"{prefix}:fx", [debit("wallet:2:RUB", 12_000, "RUB"),
                                                credit("fx:liquidity:RUB", 12_000, "RUB"),
                                                debit("fx:liquidity:CNY", 1_000, "CNY"),
                                                credit("wallet:2:CNY", 1_000, "CNY")], kind="fx.conversion",
                               metadata={"rate": "12.00", "quote": "q-1"})
        ids.append(ledger.post(conversion).id)
        hold = ledger.create_hold(f"{prefix}:auth", debit="wallet:1:RUB", credit="bank:RUB", amount=5_000,
                                  currency="RUB")
        ids.append(hold.entry.id)
        posted = ledger.post_hold(f"{prefix}:capture", hold.hold.id, 3_000, keep_remainder=True)
        ids.append(posted.entry.id)
        assert posted.continuation is not None
        ids.append(ledger.void_hold(f"{prefix}:void", posted.continuation.id).entry.id)
        ids.append(ledger.reverse(f"{prefix}:reverse", ids[1], description="mistake").id)
    return ids


def post_many(factory: SessionFactory, count: int, prefix: str, batch: int = 0) -> None:
    """``count`` transfers between the RUB wallets' bank and wallets."""
    with unit_of_work(factory) as session:
        ledger = Ledger(session)
        specs = [transfer(f"{prefix}:{n}", "bank:RUB", f"wallet:{n % 3}:RUB", 100 + n) for n in range(count)]
        if batch:
            for start in range(0, count, batch):
                ledger.post_batch(specs[start:start + batch])
        else:
            for spec in specs:
                ledger.post(spec)


def seal_all(factory: SessionFactory, batch: int = 1000) -> int:
    return seal_pending(factory, batch=batch).tree_size


def checkpoint(factory: SessionFactory, keys: Keys) -> CheckpointRow:
    latest = checkpoint_now(factory, keys.settings_key, batch=1000)
    assert latest is not None
    return latest
