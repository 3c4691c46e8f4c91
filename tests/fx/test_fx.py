"""FX: rate sources, pair lookup (direct, inverse, cross), quotes and their expiry,
conversion rounding."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.db import unit_of_work
from settlement.fx import service
from settlement.fx.conversion import FxTerms, client_rate, convert
from settlement.fx.errors import InvalidRate, QuoteExpired, QuoteMismatch, RateUnavailable, SourceNotConfigured
from settlement.fx.sources import FileRateSource, RailRateSource, source_from_setting
from settlement.money import UnknownCurrency
from tests.conftest import Database


def test_rates_file(tmp_path: Path) -> None:
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"published_at": "2026-05-01T10:00:00+08:00",
                                "rates": {"RUB/CNY": "0.0785", "USD/CNY": 7.1234}}))
    quotes = {f"{q.base}/{q.quote}": q for q in FileRateSource(path).fetch()}
    assert quotes["RUB/CNY"].rate == Decimal("0.0785")
    assert quotes["USD/CNY"].rate == Decimal("7.1234")  # a JSON number is read exactly, as a Decimal
    assert quotes["RUB/CNY"].published_at == dt.datetime(2026, 5, 1, 2, 0, tzinfo=dt.UTC)
    for bad, error in (({"rates": {"RUB/CNY": "-1"}}, InvalidRate), ({"rates": {"RUBCNY": "1"}}, InvalidRate),
                       ({"rates": {"RUB/XXQ": "1"}}, UnknownCurrency), ({"rates": {"RUB/RUB": "1"}}, InvalidRate),
                       ({"rates": {"RUB/CNY": "abc"}}, InvalidRate), ({"nothing": 1}, InvalidRate)):
        path.write_text(json.dumps(bad))
        with pytest.raises(error):
            FileRateSource(path).fetch()
    with pytest.raises(SourceNotConfigured):
        source_from_setting("")


def test_alipay_simulator_rates(simulators: dict[str, object], rails: object) -> None:
    source = RailRateSource("alipay", rails.get("alipay"))  # type: ignore[attr-defined]
    rates = {f"{q.base}/{q.quote}": q.rate for q in source.fetch()}
    assert rates["RUB/CNY"] == Decimal("0.078500")


def test_pair_lookup_and_quotes(pg_database: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    with unit_of_work(pg_database.factory) as session:
        from settlement.fx.sources import RateQuote

        service.store_snapshot(session, "test", [RateQuote("RUB", "CNY", Decimal("0.0785"), now),
                                                 RateQuote("USD", "CNY", Decimal("7.1234"), now)])
        assert service.pair_rate(session, "RUB", "CNY").rate == Decimal("0.078500000000")
        # Inverse: 1 / 0.0785, half-even to 12 places.
        assert service.pair_rate(session, "CNY", "RUB").rate == Decimal("12.738853503185")
        # Cross through CNY: 0.0785 / 7.1234.
        assert service.pair_rate(session, "RUB", "USD").rate == (Decimal("0.0785") / Decimal("7.1234")).quantize(
            Decimal("1e-12"))
        with pytest.raises(RateUnavailable):
            service.pair_rate(session, "RUB", "JPY")
        quote = service.create_quote(session, "RUB", "CNY", spread=Decimal("0.005"), ttl_seconds=60, now=now)
        assert quote.rate == Decimal("0.078107500000")
        assert service.usable_quote(session, quote.id, "RUB", "CNY", now).id == quote.id
        with pytest.raises(QuoteExpired):
            service.usable_quote(session, quote.id, "RUB", "CNY", now + dt.timedelta(seconds=60))
        with pytest.raises(QuoteMismatch):
            service.usable_quote(session, quote.id, "CNY", "RUB", now)


@given(sell=st.integers(0, 10**12), mid=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(500), places=6),
       spread=st.decimals(min_value=Decimal(0), max_value=Decimal("0.1"), places=4))
def test_conversion_never_pays_more_than_the_rate(sell: int, mid: Decimal, spread: Decimal) -> None:
    rate = client_rate(mid, spread)
    result = convert(sell, FxTerms("RUB", "CNY", mid, rate, 1, "t"))
    assert result.buy <= sell * rate < result.buy + 1  # rounded down, once
    assert result.mid <= sell * mid < result.mid + 1
    assert result.spread >= 0
