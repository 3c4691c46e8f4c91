"""Alipay's wire vocabulary: amounts, times, currencies and the rail's commercial terms.

Alipay writes amounts as decimal strings in the currency's major unit ("12.34" yuan)
and times as ``YYYY-MM-DD HH:MM:SS`` in Beijing time (UTC+8, no daylight saving).
Everything here converts exactly between those strings and the SPI's integer minor
units and aware datetimes; nothing goes through ``float``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from adapters.base import FeeSchedule, SettlementCalendar

RAIL = "alipay"

#: The wallet's home currency: buyers always pay in it.
HOME_CURRENCY = "CNY"

#: ISO 4217 exponents of the currencies Alipay's cross-border acquiring prices in
#: (its forex rate file lists these). Kept here so the file parser needs no lookup
#: library in its hot loop.
EXPONENTS: dict[str, int] = {
    "CNY": 2, "RUB": 2, "USD": 2, "EUR": 2, "HKD": 2, "GBP": 2, "CHF": 2, "SGD": 2,
    "AUD": 2, "CAD": 2, "NZD": 2, "SEK": 2, "NOK": 2, "DKK": 2, "THB": 2,
    "JPY": 0, "KRW": 0,
}

#: What this rail accepts in AuthorizeRequest.currency: CNY trades and forex trades
#: priced in RUB, USD, EUR or HKD (the buyer pays the CNY equivalent).
CURRENCIES: frozenset[str] = frozenset({"CNY", "RUB", "USD", "EUR", "HKD"})

#: Merchant discount rate of domestic CNY trades.
DOMESTIC_FEES = FeeSchedule(rate=Decimal("0.006"))
#: Cross-border (forex) trades carry Alipay's higher cross-border rate.
CROSS_BORDER_FEES = FeeSchedule(rate=Decimal("0.012"))

#: Alipay settles T+1 in business days; a record two business days late is missing.
CALENDAR = SettlementCalendar(lag_days=1, business_days_only=True, sla_days=2)

BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_AMOUNT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,9})?")
_RATE = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,12})?")


class AmountError(ValueError):
    """A decimal string that is not an exact amount of the currency."""


def fee_schedule_for(currency: str) -> FeeSchedule:
    """The fee schedule of a trade priced in ``currency``: domestic for CNY, cross-border
    for every forex currency."""
    return DOMESTIC_FEES if currency == HOME_CURRENCY else CROSS_BORDER_FEES


def exponent(currency: str) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise AmountError(f"unknown currency {currency!r}") from None


def to_major(minor: int, currency: str) -> str:
    """``1234`` fen -> ``"12.34"``: the exact major-unit string Alipay expects."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"amounts are int minor units, not {type(minor).__name__}")
    places = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10 ** places)
    return f"{sign}{whole}.{frac:0{places}d}" if places else f"{sign}{whole}"


def to_minor(text: str, currency: str) -> int:
    """``"12.34"`` -> ``1234``. Refuses anything but a plain decimal string, and more
    decimal places than the currency has (never rounds)."""
    if not _AMOUNT.fullmatch(text):
        raise AmountError(f"not a decimal amount: {text[:40]!r}")
    places = exponent(currency)
    _, _, frac = text.partition(".")
    if len(frac) > places:
        raise AmountError(f"{text!r} has more than {places} decimal places for {currency}")
    return int(Decimal(text).scaleb(places))


def parse_rate(text: str) -> Decimal:
    """A positive exchange rate written as a plain decimal string."""
    if not _RATE.fullmatch(text):
        raise AmountError(f"not a decimal rate: {text[:40]!r}")
    rate = Decimal(text)
    if rate <= 0:
        raise AmountError(f"rate must be positive: {text!r}")
    return rate


def format_rate(rate: Decimal) -> str:
    """At least eight decimals, as Alipay prints rates, and never an exponent."""
    if not rate.is_finite() or rate <= 0:
        raise AmountError(f"not a rate: {rate}")
    exponent = rate.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -8:
        rate = rate.quantize(Decimal("1.00000000"))
    return format(rate, "f")


def convert(minor: int, currency: str, rate: Decimal, into: str) -> int:
    """``minor`` of ``currency`` at ``rate`` (units of ``into`` per unit of ``currency``),
    rounded half up to the minor unit of ``into``."""
    major = Decimal(minor).scaleb(-exponent(currency)) * rate
    try:
        return int(major.scaleb(exponent(into)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation as exc:
        raise AmountError(f"cannot convert {minor} {currency} at {rate}") from exc


def beijing_now() -> dt.datetime:
    return dt.datetime.now(BEIJING)


def format_time(moment: dt.datetime) -> str:
    """An aware datetime as Alipay writes it: Beijing wall-clock time."""
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_time(text: str) -> dt.datetime:
    """``YYYY-MM-DD HH:MM:SS`` in Beijing time, as an aware datetime."""
    if len(text) != 19:
        raise ValueError(f"not an Alipay timestamp: {text[:40]!r}")
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING)
