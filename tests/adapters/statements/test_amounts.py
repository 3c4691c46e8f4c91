"""Text amounts to minor units: exact, currency-aware, never through floats."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.statements import AmountError, currency_exponent, format_amount, parse_amount

CURRENCIES = ["RUB", "CNY", "USD", "JPY", "KRW", "BHD", "KWD", "CLF"]
MAX_MINOR = 10**18 - 1


def test_exponents_follow_iso_4217() -> None:
    assert [currency_exponent(c) for c in CURRENCIES] == [2, 2, 2, 0, 0, 3, 3, 4]


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("1234.56", "RUB", 123456), ("1234.5", "RUB", 123450), ("1234", "RUB", 123400),
    ("0.01", "CNY", 1), ("0", "RUB", 0), ("007.10", "RUB", 710), ("1500", "JPY", 1500),
    ("1.234", "BHD", 1234), ("999999999999999999.99", "RUB", 99999999999999999999),
])
def test_examples(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(("text", "currency"), [
    ("1.234", "RUB"), ("1.5", "JPY"), ("1,50", "RUB"), ("1 000.00", "RUB"), ("1e3", "RUB"),
    ("NaN", "RUB"), ("Infinity", "RUB"), ("", "RUB"), (".5", "RUB"), ("5.", "RUB"), ("+5", "RUB"),
    ("\u0661\u0662\u0663", "RUB"), ("\uff11\uff12", "RUB"),  # Arabic-Indic, fullwidth
    ("-1.00", "RUB"), ("1.00", "rub"), ("1.00", "ZZZ"), ("1.00", ""),
])
def test_refusals(text: str, currency: str) -> None:
    with pytest.raises(AmountError):
        parse_amount(text, currency)


def test_signed_amounts_only_when_asked() -> None:
    assert parse_amount("-12.30", "RUB", signed=True) == -1230


@given(st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR), st.sampled_from(CURRENCIES))
def test_format_then_parse_is_identity(minor: int, currency: str) -> None:
    assert parse_amount(format_amount(minor, currency), currency, signed=True) == minor


@given(st.decimals(min_value=0, max_value=Decimal("99999999999999.99"), places=2))
def test_rubles_are_exact_kopecks(value: Decimal) -> None:
    text = f"{value:f}"
    minor = parse_amount(text, "RUB")
    assert isinstance(minor, int)
    assert Decimal(minor) == value * 100


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=9))
def test_more_decimals_than_the_currency_has_are_refused(whole: int, extra: int) -> None:
    with pytest.raises(AmountError, match="more than 2 decimals"):
        parse_amount(f"{whole}.{extra:03d}", "RUB")


@given(st.text(alphabet="0123456789.,- e", max_size=12))
def test_any_text_parses_exactly_or_is_refused(text: str) -> None:
    try:
        minor = parse_amount(text, "CNY")
    except AmountError:
        return
    assert Decimal(minor) == Decimal(text) * 100
