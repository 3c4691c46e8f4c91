"""``settlement ledger``: try the ledger by hand.

Amounts are decimal strings in the currency's major unit (``1500.00`` RUB); every
write takes an idempotency key (``--key``; a fresh one is generated and printed
when omitted, so the command can be retried with it).
"""

from __future__ import annotations

import datetime as dt
import uuid

import typer
from rich.table import Table

from settlement.cli.common import console, state
from settlement.db import unit_of_work
from settlement.ledger import AccountSpec, AccountType, EntryResult, EntrySpec, HoldResult, Ledger, credit, debit
from settlement.ledger.errors import InvalidEntry
from settlement.money import format_minor, to_minor

app = typer.Typer(help="Accounts, transfers, holds and balances.", no_args_is_help=True)
account_app = typer.Typer(help="Ledger accounts.", no_args_is_help=True)
hold_app = typer.Typer(help="Holds (two-phase transfers).", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(hold_app, name="hold")


def _key(key: str | None) -> str:
    return key or f"cli:{uuid.uuid4()}"


def _when(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEntry(f"{text!r} is not an ISO 8601 date-time", field="as_of") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@account_app.command("create")
def account_create(
    ctx: typer.Context,
    code: str = typer.Argument(..., help="Unique code, e.g. merchant:42:payable:CNY"),
    currency: str = typer.Option(..., "--currency", "-c", help="ISO 4217 code"),
    account_type: AccountType = typer.Option(AccountType.ASSET, "--type", "-t"),
    no_overdraft: bool = typer.Option(False, "--no-overdraft", help="debits must not exceed credits"),
    no_overcredit: bool = typer.Option(False, "--no-overcredit", help="credits must not exceed debits"),
    credit_limit: str | None = typer.Option(None, "--credit-limit", help="allowance beyond the limit, e.g. 100.00"),
) -> None:
    """Create an account (or show it, if it exists with the same attributes)."""
    limit = to_minor(credit_limit, currency, field="credit_limit") if credit_limit is not None else None
    with unit_of_work(state(ctx).factory) as session:
        account = Ledger(session).create_account(AccountSpec(
            code, currency, account_type, debits_must_not_exceed_credits=no_overdraft,
            credits_must_not_exceed_debits=no_overcredit, credit_limit=limit))
    verb = "exists" if account.replayed else "created"
    console.print(f"account {account.id} {account.code} ({account.currency}, {account.type.value}) {verb}")


@account_app.command("list")
def account_list(
    ctx: typer.Context,
    prefix: str | None = typer.Option(None, "--prefix", help="only codes starting with this"),
    currency: str | None = typer.Option(None, "--currency", "-c"),
    limit: int = typer.Option(100, "--limit"),
    cursor: str | None = typer.Option(None, "--cursor", help="next page, as printed by the previous one"),
) -> None:
    """List accounts with their balances."""
    with unit_of_work(state(ctx).factory) as session:
        page = Ledger(session).list_accounts(cursor=cursor, limit=limit, currency=currency, code_prefix=prefix)
    table = Table("id", "code", "currency", "type", "balance", "pending debits", "pending credits")
    for a in page.items:
        table.add_row(str(a.id), a.code, a.currency, a.type.value, format_minor(a.balance, a.currency),
                      format_minor(a.debits_pending, a.currency), format_minor(a.credits_pending, a.currency))
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


def _print_entry(entry: EntryResult, key: str) -> None:
    replay = " (replayed: already applied with this key)" if entry.replayed else ""
    console.print(f"entry {entry.id} ({entry.kind}) key={key}{replay}", markup=False)
    for p in entry.postings:
        layer = " pending" if p.pending else ""
        console.print(f"  {p.side.value} account {p.account_id} {format_minor(p.amount, p.currency)} "
                      f"{p.currency}{layer}", markup=False)


@app.command("transfer")
def transfer(
    ctx: typer.Context,
    source: str = typer.Option(..., "--from", help="account code debited"),
    target: str = typer.Option(..., "--to", help="account code credited"),
    amount: str = typer.Option(..., "--amount", "-a", help="decimal amount, e.g. 1500.00"),
    currency: str = typer.Option(..., "--currency", "-c"),
    key: str | None = typer.Option(None, "--key", "-k", help="idempotency key"),
    description: str = typer.Option("", "--description", "-d"),
) -> None:
    """Post a transfer: debit --from, credit --to."""
    minor = to_minor(amount, currency, positive=True)
    key = _key(key)
    with unit_of_work(state(ctx).factory) as session:
        entry = Ledger(session).post(EntrySpec(key, [debit(source, minor, currency), credit(target, minor, currency)],
                                               description=description))
    _print_entry(entry, key)


def _print_hold(result: HoldResult, key: str) -> None:
    hold = result.hold
    replay = " (replayed)" if result.replayed else ""
    console.print(f"hold {hold.id} {hold.status.value}: {format_minor(hold.amount, hold.currency)} {hold.currency}, "
                  f"posted {format_minor(hold.posted_amount, hold.currency)} (entry {result.entry.id}, "
                  f"key={key}){replay}")
    if result.continuation is not None:
        rest = result.continuation
        console.print(f"  rest stays on hold {rest.id}: {format_minor(rest.amount, rest.currency)} {rest.currency}")


@hold_app.command("create")
def hold_create(
    ctx: typer.Context,
    source: str = typer.Option(..., "--from", help="account code whose funds are reserved"),
    target: str = typer.Option(..., "--to", help="account code that will be credited"),
    amount: str = typer.Option(..., "--amount", "-a"),
    currency: str = typer.Option(..., "--currency", "-c"),
    expires_in: int | None = typer.Option(None, "--expires-in", help="seconds until the hold expires"),
    key: str | None = typer.Option(None, "--key", "-k"),
) -> None:
    """Reserve funds (an authorization): they count against limits until posted or voided."""
    minor = to_minor(amount, currency, positive=True)
    key = _key(key)
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in) if expires_in else None
    with unit_of_work(state(ctx).factory) as session:
        result = Ledger(session).create_hold(key, debit=source, credit=target, amount=minor, currency=currency,
                                             expires_at=expires_at)
    _print_hold(result, key)


@hold_app.command("post")
def hold_post(
    ctx: typer.Context,
    hold_id: int = typer.Argument(...),
    amount: str | None = typer.Option(None, "--amount", "-a", help="part to post (default: all)"),
    keep_remainder: bool = typer.Option(False, "--keep-remainder", help="keep the rest on hold for later captures"),
    key: str | None = typer.Option(None, "--key", "-k"),
) -> None:
    """Post (capture) a hold, fully or partially."""
    key = _key(key)
    with unit_of_work(state(ctx).factory) as session:
        ledger = Ledger(session)
        minor = None
        if amount is not None:
            minor = to_minor(amount, ledger.get_hold(hold_id).currency, positive=True)
        result = ledger.post_hold(key, hold_id, minor, keep_remainder=keep_remainder)
    _print_hold(result, key)


@hold_app.command("void")
def hold_void(ctx: typer.Context, hold_id: int = typer.Argument(...),
              key: str | None = typer.Option(None, "--key", "-k")) -> None:
    """Release a hold without posting it."""
    key = _key(key)
    with unit_of_work(state(ctx).factory) as session:
        result = Ledger(session).void_hold(key, hold_id)
    _print_hold(result, key)


@hold_app.command("expire")
def hold_expire(ctx: typer.Context) -> None:
    """Expire every pending hold past its expiry (what the scheduled sweeper does)."""
    with unit_of_work(state(ctx).factory) as session:
        expired = Ledger(session).expire_holds()
    console.print(f"expired {len(expired)} hold(s)")


@app.command("reverse")
def reverse(ctx: typer.Context, entry_id: int = typer.Argument(...),
            key: str | None = typer.Option(None, "--key", "-k")) -> None:
    """Reverse a posted entry (once)."""
    key = _key(key)
    with unit_of_work(state(ctx).factory) as session:
        entry = Ledger(session).reverse(key, entry_id)
    _print_entry(entry, key)


@app.command("balance")
def balance(
    ctx: typer.Context,
    account: str = typer.Argument(..., help="account code or id"),
    as_of: str | None = typer.Option(None, "--as-of", help="ISO 8601 time, e.g. 2026-11-21T12:00:00+00:00"),
) -> None:
    """An account's balance now, or as recorded at a past time."""
    ref: int | str = int(account) if account.isdigit() else account
    with unit_of_work(state(ctx).factory) as session:
        result = Ledger(session).balance(ref, as_of=_when(as_of) if as_of else None)
    c = result.currency
    when = f" as of {result.as_of.isoformat()}" if result.as_of else ""
    console.print(f"{result.code} ({c}, {result.type.value}){when}")
    table = Table("balance", "available", "debits posted", "credits posted", "debits pending", "credits pending")
    table.add_row(*(format_minor(v, c) for v in (result.balance, result.available, result.debits_posted,
                                                 result.credits_posted, result.debits_pending,
                                                 result.credits_pending)))
    console.print(table)


@app.command("entries")
def entries(
    ctx: typer.Context,
    account: str = typer.Argument(..., help="account code or id"),
    limit: int = typer.Option(20, "--limit"),
    cursor: str | None = typer.Option(None, "--cursor"),
) -> None:
    """An account's postings, newest first."""
    ref: int | str = int(account) if account.isdigit() else account
    with unit_of_work(state(ctx).factory) as session:
        ledger = Ledger(session)
        sign = 1 if ledger.get_account(ref).type.debit_normal else -1
        page = ledger.account_lines(ref, cursor=cursor, limit=limit)
    table = Table("entry", "kind", "recorded at", "side", "amount", "posted balance after", "description")
    for line in page.items:
        after = sign * (line.debits_posted_after - line.credits_posted_after)
        table.add_row(str(line.entry_id), line.kind, line.recorded_at.isoformat(timespec="seconds"),
                      line.side.value + (" (pending)" if line.pending else ""),
                      format_minor(line.amount, line.currency), format_minor(after, line.currency),
                      line.description)
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")
