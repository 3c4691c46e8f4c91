"""Money at the edges and inside.

Inside the service an amount is an ``int`` of minor units plus an ISO 4217 code.
At the edges (API, files, CLI) it is a decimal string such as ``"1500.00"``. This
module converts between the two, using each currency's own exponent from
py-moneyed's ISO 4217 data (RUB 2, JPY 0, KWD 3...), and allocates totals into
parts that always sum back to the total.

Rules:

* floats are refused everywhere (``FloatAmount``), because a float cannot hold most
  decimal amounts exactly;
* a value with more decimal places than the currency allows is refused
  (``TooManyDecimals``), never rounded silently;
* minor-unit values must fit PostgreSQL ``BIGINT`` (``AmountOutOfRange``);
* unknown currency codes are refused (``UnknownCurrency``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import moneyed

from settlement.errors import SettlementError, register

MAX_MINOR = 2**63 - 1
MIN_MINOR = -(2**63)


@register
class MoneyError(SettlementError):
    code = "money_error"
    status = 422
    title = "Invalid money value"


@register
class InvalidAmount(MoneyError):
    """The amount is not acceptable. Subclasses say exactly why."""

    code = "invalid_amount"
    title = "Invalid amount"


@register
class FloatAmount(InvalidAmount):
    code = "float_amount"
    title = "Amounts must not be floating-point numbers"


@register
class MalformedAmount(InvalidAmount):
    code = "malformed_amount"
    title = "Amount is not a decimal number"


@register
class TooManyDecimals(InvalidAmount):
    code = "too_many_decimals"
    title = "Amount has more decimal places than its currency"


@register
class AmountOutOfRange(InvalidAmount):
    code = "amount_out_of_range"
    title = "Amount does not fit a 64-bit integer of minor units"


@register
class NonPositiveAmount(InvalidAmount):
    code = "non_positive_amount"
    title = "Amount must be greater than zero"


@register
class UnknownCurrency(MoneyError):
    code = "unknown_currency"
    title = "Unknown currency"


@functools.cache
def exponent(currency: str) -> int:
    """Number of decimal places of ``currency`` (ISO 4217 minor unit)."""
    well_formed = isinstance(currency, str) and len(currency) == 3 and currency.isalpha()
    if not well_formed or not currency.isupper():
        raise UnknownCurrency(f"{currency!r} is not an ISO 4217 currency code", currency=str(currency))
    try:
        sub_unit = moneyed.get_currency(currency).sub_unit
    except moneyed.CurrencyDoesNotExist:
        raise UnknownCurrency(f"unknown currency {currency!r}", currency=currency) from None
    places = len(str(sub_unit)) - 1
    if sub_unit != 10**places:
        raise UnknownCurrency(f"currency {currency!r} has no decimal minor unit", currency=currency)
    return places


def check_currency(currency: object) -> str:
    """Return ``currency`` if it is a known ISO 4217 code, else raise UnknownCurrency."""
    if not isinstance(currency, str):
        raise UnknownCurrency(f"{currency!r} is not a currency code", currency=repr(currency))
    exponent(currency)
    return currency


def check_minor(amount: object, *, positive: bool = True, field: str = "amount") -> int:
    """Validate an amount already in minor units: an ``int`` (not ``bool``, not
    ``float``) within BIGINT, and greater than zero when ``positive``."""
    if isinstance(amount, float):
        raise FloatAmount(f"{field} must be an integer of minor units, not a float", field=field)
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise MalformedAmount(f"{field} must be an integer of minor units", field=field)
    if amount > MAX_MINOR or amount < MIN_MINOR:
        raise AmountOutOfRange(f"{field} {amount} does not fit a 64-bit integer", field=field)
    if positive and amount <= 0:
        raise NonPositiveAmount(f"{field} must be greater than zero, got {amount}", field=field)
    return amount


def to_minor(value: str | Decimal | int, currency: str, *, positive: bool = False,
             field: str = "amount") -> int:
    """Convert a decimal amount in major units (``"1500.00"`` RUB) to minor units
    (``150000``). Strings and Decimals are read exactly; ints are whole major units.
    Refuses floats, non-numbers, NaN/infinity, excess decimals and BIGINT overflow.
    """
    places = exponent(currency)
    if isinstance(value, float):
        raise FloatAmount(f"{field} must be a decimal string, not a float", field=field)
    if isinstance(value, bool):
        raise MalformedAmount(f"{field} must be a decimal string", field=field)
    if isinstance(value, str):
        text = value.strip()
        if not text or text != value or "_" in text or text.lower().lstrip("+-") in ("nan", "inf", "infinity",
                                                                                        "snan"):
            raise MalformedAmount(f"{field} {value!r} is not a decimal number", field=field)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise MalformedAmount(f"{field} {value!r} is not a decimal number", field=field) from None
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    else:
        raise MalformedAmount(f"{field} must be a decimal string", field=field)
    if not number.is_finite():
        raise MalformedAmount(f"{field} {value!r} is not a finite number", field=field)
    exp = number.as_tuple().exponent
    assert isinstance(exp, int)
    if -exp > places:
        raise TooManyDecimals(f"{field} {value} has more than {places} decimal places for {currency}",
                              field=field, currency=currency, places=places)
    minor = int(number.scaleb(places))
    return check_minor(minor, positive=positive, field=field) if positive else _in_range(minor, field)


def _in_range(minor: int, field: str) -> int:
    if minor > MAX_MINOR or minor < MIN_MINOR:
        raise AmountOutOfRange(f"{field} does not fit a 64-bit integer of minor units", field=field)
    return minor


def to_decimal(minor: int, currency: str) -> Decimal:
    """Minor units -> Decimal in major units with exactly the currency's places."""
    places = exponent(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def format_minor(minor: int, currency: str) -> str:
    """Minor units -> the edge representation: ``"1500.00"`` for 150000 RUB."""
    return str(to_decimal(minor, currency))


def from_money(money: moneyed.Money) -> tuple[int, str]:
    """py-moneyed ``Money`` -> (minor units, currency code), refusing excess decimals."""
    code = str(money.currency.code)
    return to_minor(money.amount, code), code


def to_money(minor: int, currency: str) -> moneyed.Money:
    """(minor units, currency) -> py-moneyed ``Money``."""
    return moneyed.Money(to_decimal(minor, currency), currency)


def allocate(total: int, ratios: Mapping[str, Decimal | int], remainder_to: str) -> dict[str, int]:
    """Split ``total`` minor units into named parts proportional to ``ratios``.

    Each part is rounded down (towards zero); what is left over goes to the part
    named ``remainder_to``, so the parts always sum to ``total`` exactly. Ratios are
    non-negative Decimals or ints (not floats) and must not all be zero.
    """
    if isinstance(total, bool) or not isinstance(total, int):
        raise MalformedAmount("total must be an integer of minor units", field="total")
    if remainder_to not in ratios:
        raise InvalidAmount(f"remainder party {remainder_to!r} is not among the parts", field="remainder_to")
    weights: dict[str, Decimal] = {}
    for name, ratio in ratios.items():
        if isinstance(ratio, float):
            raise FloatAmount(f"ratio for {name!r} must not be a float", field=name)
        weight = Decimal(ratio)
        if weight < 0 or not weight.is_finite():
            raise InvalidAmount(f"ratio for {name!r} must be a finite non-negative number", field=name)
        weights[name] = weight
    whole = sum(weights.values(), Decimal(0))
    if whole == 0:
        raise InvalidAmount("ratios must not all be zero", field="ratios")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    parts = {name: sign * int(Decimal(magnitude) * w // whole) for name, w in weights.items()}
    parts[remainder_to] += total - sum(parts.values())
    return parts


def apply_rate(minor: int, rate: Decimal, from_currency: str, to_currency: str,
               rounding: str = ROUND_HALF_EVEN) -> int:
    """Convert ``minor`` units of ``from_currency`` at ``rate`` (units of
    ``to_currency`` per unit of ``from_currency``) to minor units of ``to_currency``,
    rounding once, explicitly, with ``rounding``."""
    given: object = rate  # callers outside the type checker may still pass a float
    if not isinstance(given, Decimal):
        raise FloatAmount("FX rate must be a Decimal", field="rate")
    shift = exponent(to_currency) - exponent(from_currency)
    converted = (Decimal(minor) * rate).scaleb(shift).quantize(Decimal(1), rounding=rounding)
    return _in_range(int(converted), "converted amount")
