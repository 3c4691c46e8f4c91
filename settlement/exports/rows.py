"""What every export file holds, format by format, and the row types the writers
take and the readers give back.

Amounts in files are decimal strings in the currency's own unit (``1500.00`` RUB,
``1500`` JPY), never floats; inside they are ``int`` minor units. These helpers
convert on the hot path of exports and verification without going through
``Decimal`` for well-formed values, and fall back to :func:`settlement.money.to_minor`
(and its precise refusals) for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from settlement.errors import SettlementError
from settlement.money import exponent, to_minor

JOURNAL = "journal"
TRIAL_BALANCE = "trial_balance"
STATEMENTS = "statements"
FORMATS = ("csv", "jsonl", "xml")
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"

JOURNAL_COLUMNS = ("seq", "entry_id", "idempotency_key", "kind", "effective_at", "recorded_at", "description",
                   "metadata", "reverses_entry_id", "hold_id", "posting_id", "account_id", "account_code", "debit",
                   "credit", "currency", "pending", "leaf_hash")
TRIAL_BALANCE_COLUMNS = ("account_id", "account_code", "currency", "type", "opening_debit", "opening_credit",
                         "debit", "credit", "closing_debit", "closing_credit")
STATEMENT_COLUMNS = ("account_code", "currency", "line", "seq", "entry_id", "posting_id", "recorded_at",
                     "description", "debit", "credit", "balance")


def file_name(report: str, fmt: str) -> str:
    return f"{report}.{fmt}"


@dataclass(slots=True)
class JournalLine:
    """One row of the journal: a posting with its entry's facts (an entry with no
    postings has one row with the posting fields empty). ``metadata`` is the
    canonical JSON text; ``side`` is D or C."""

    seq: int
    entry_id: int
    idempotency_key: str
    kind: str
    effective_at: str
    recorded_at: str
    description: str
    metadata: str
    reverses_entry_id: int | None
    hold_id: int | None
    posting_id: int | None
    account_id: int | None
    account_code: str | None
    side: str | None
    amount: int | None
    currency: str | None
    pending: bool | None
    leaf_hash: str
    #: SAF-T only: the line's amount in the reporting currency and the rate used.
    reporting_amount: int | None = None
    exchange_rate: Decimal | None = None


#: An entry as the writers take it: (seq, entry_id, idempotency_key, kind, effective_at,
#: recorded_at, description, metadata as canonical JSON, reverses_entry_id, hold_id,
#: leaf hash hex).
EntryFields = tuple[int, int, str, str, str, str, str, str, int | None, int | None, str]
#: A posting as the writers take it: (posting_id, account_id, account_code, side,
#: amount, currency, pending, reporting amount, exchange rate); the last two are
#: the SAF-T conversion (None otherwise).
PostingFields = tuple[int, int, str, str, int, str, bool, int | None, Decimal | None]


@dataclass(slots=True)
class BalanceLine:
    """One account of the trial balance. Opening and closing are net balances
    (debits - credits) shown on the side where they are positive."""

    account_id: int
    account_code: str
    currency: str
    type: str
    opening: int
    debit: int
    credit: int
    closing: int


@dataclass(slots=True)
class StatementLine:
    """A line of an account statement: ``opening``, ``posting`` or ``closing``.
    ``balance`` is on the account's normal side (debit-normal: debits - credits)."""

    account_code: str
    currency: str
    line: str
    balance: int
    seq: int | None = None
    entry_id: int | None = None
    posting_id: int | None = None
    recorded_at: str | None = None
    description: str | None = None
    side: str | None = None
    amount: int | None = None


_POWERS: list[int] = [10**n for n in range(19)]


def format_amount(minor: int, currency: str) -> str:
    """Minor units -> decimal string with exactly the currency's places."""
    places = exponent(currency)
    if places == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), _POWERS[places])
    return f"{sign}{whole}.{fraction:0{places}d}"


#: Amounts exactly as the writers print them, per number of places.
_CANONICAL_AMOUNT = {places: re.compile(r"-?[0-9]{1,18}" + (rf"\.[0-9]{{{places}}}" if places else ""))
                     for places in range(5)}


def parse_amount(text: str, currency: str, *, field: str = "amount") -> int:
    """Decimal string -> minor units; refuses excess decimals, floats' exponents,
    anything not a plain decimal (the money module's codes)."""
    places = exponent(currency)
    pattern = _CANONICAL_AMOUNT.get(places)
    if pattern is not None and pattern.fullmatch(text):
        # The usual case: every digit of the minor units, and the point before the last ``places``.
        return int(text.replace(".", "", 1))
    whole, dot, fraction = text.partition(".")
    digits = whole[1:] if whole[:1] == "-" else whole
    if (digits.isdigit() and digits.isascii() and (not dot or (fraction.isdigit() and fraction.isascii()))
            and len(fraction) <= places and len(digits) <= 18):
        value = int(digits) * _POWERS[places] + (int(fraction) * _POWERS[places - len(fraction)] if fraction else 0)
        return -value if whole[:1] == "-" else value
    return to_minor(text, currency, field=field)


def currency_places(currency: str) -> int | None:
    """The currency's decimal places; None for a code that is not a known currency."""
    try:
        return exponent(currency)
    except SettlementError:
        return None

