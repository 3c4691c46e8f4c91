"""Money conversions and allocation."""

from __future__ import annotations

from decimal import Decimal

import moneyed
import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement import money
from settlement.money import (
    AmountOutOfRange,
    FloatAmount,
    MalformedAmount,
    NonPositiveAmount,
    TooManyDecimals,
    UnknownCurrency,
)


@pytest.mark.parametrize(("currency", "places"), [("RUB", 2), ("CNY", 2), ("USD", 2), ("JPY", 0), ("KWD", 3)])
def test_exponent_comes_from_the_currency(currency: str, places: int) -> None:
    assert money.exponent(currency) == places


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("1500.00", "RUB", 150000), ("0.01", "CNY", 1), ("1500", "JPY", 1500), ("1.234", "KWD", 1234),
    ("-12.5", "USD", -1250), ("12.50", "USD", 1250),
])
def test_to_minor_reads_decimal_strings_exactly(text: str, currency: str, minor: int) -> None:
    assert money.to_minor(text, currency) == minor


def test_refusals_have_precise_codes() -> None:
    with pytest.raises(FloatAmount) as float_error:
        money.to_minor(1.5, "RUB")  # type: ignore[arg-type]
    assert float_error.value.code == "float_amount"
    with pytest.raises(TooManyDecimals) as decimals:
        money.to_minor("1.001", "RUB")
    assert decimals.value.code == "too_many_decimals"
    with pytest.raises(TooManyDecimals):
        money.to_minor("1.500", "RUB")  # a written third decimal is refused even when it is zero
    with pytest.raises(TooManyDecimals):
        money.to_minor("1.5", "JPY")
    with pytest.raises(UnknownCurrency) as unknown:
        money.to_minor("1.00", "XYZ")
    assert unknown.value.code == "unknown_currency"
    with pytest.raises(UnknownCurrency):
        money.exponent("rub")
    with pytest.raises(AmountOutOfRange) as too_big:
        money.to_minor("92233720368547758.08", "RUB")
    assert too_big.value.code == "amount_out_of_range"
    with pytest.raises(NonPositiveAmount):
        money.to_minor("0.00", "RUB", positive=True)
    for bad in ("", " 1.00", "1,00", "NaN", "Infinity", "1e", "abc", "1_000"):
        with pytest.raises(MalformedAmount):
            money.to_minor(bad, "RUB")


def test_largest_bigint_is_accepted() -> None:
    assert money.to_minor("92233720368547758.07", "RUB") == 2**63 - 1
    assert money.check_minor(2**63 - 1) == 2**63 - 1
    with pytest.raises(AmountOutOfRange):
        money.check_minor(2**63)


def test_check_minor_refuses_bool_and_float() -> None:
    with pytest.raises(FloatAmount):
        money.check_minor(100.0)
    with pytest.raises(MalformedAmount):
        money.check_minor(True)
    with pytest.raises(NonPositiveAmount):
        money.check_minor(0)


def test_money_round_trip_with_py_moneyed() -> None:
    amount = moneyed.Money(Decimal("1234.56"), "CNY")
    assert money.from_money(amount) == (123456, "CNY")
    assert money.to_money(123456, "CNY") == amount
    with pytest.raises(TooManyDecimals):
        money.from_money(moneyed.Money(Decimal("1.001"), "CNY"))


def test_format_minor_uses_the_currency_places() -> None:
    assert money.format_minor(150000, "RUB") == "1500.00"
    assert money.format_minor(5, "JPY") == "5"
    assert money.format_minor(-1, "KWD") == "-0.001"


def test_allocate_gives_the_remainder_to_the_named_party() -> None:
    parts = money.allocate(1000, {"seller": Decimal("0.9"), "marketplace": Decimal("0.1")}, "marketplace")
    assert parts == {"seller": 900, "marketplace": 100}
    parts = money.allocate(1001, {"a": 1, "b": 1, "c": 1}, "c")
    assert parts == {"a": 333, "b": 333, "c": 335}
    with pytest.raises(FloatAmount):
        money.allocate(100, {"a": 0.5}, "a")  # type: ignore[dict-item]


@given(total=st.integers(min_value=-(10**15), max_value=10**15),
       weights=st.lists(st.decimals(min_value=0, max_value=1000, places=4), min_size=1, max_size=6),
       pick=st.integers(min_value=0, max_value=5))
def test_allocation_always_sums_to_the_total(total: int, weights: list[Decimal], pick: int) -> None:
    if sum(weights) == 0:
        weights[0] = Decimal(1)
    ratios = {f"p{i}": w for i, w in enumerate(weights)}
    remainder_to = f"p{pick % len(weights)}"
    parts = money.allocate(total, ratios, remainder_to)
    assert sum(parts.values()) == total
    for name, part in parts.items():
        if name != remainder_to:
            assert abs(part) <= abs(total)


@given(minor=st.integers(min_value=-(2**63), max_value=2**63 - 1),
       currency=st.sampled_from(["RUB", "CNY", "JPY", "KWD", "USD"]))
def test_decimal_round_trip(minor: int, currency: str) -> None:
    assert money.to_minor(money.format_minor(minor, currency), currency) == minor


def test_apply_rate_rounds_once_and_handles_exponents() -> None:
    assert money.apply_rate(10000, Decimal("0.0812"), "RUB", "CNY") == 812
    assert money.apply_rate(10000, Decimal("1.5"), "USD", "JPY") == 150
    assert money.apply_rate(1, Decimal("0.5"), "RUB", "CNY") == 0  # half even
    with pytest.raises(FloatAmount):
        money.apply_rate(100, 0.5, "RUB", "CNY")  # type: ignore[arg-type]
