"""Where FX rates come from. A source is anything with ``name`` and ``fetch()``; the
service stores what it returns as snapshots.

Sources are named in ``SETTLEMENT_FX_RATES_SOURCE``:

* ``file:/path/rates.json``: a JSON document ``{"published_at": "2026-05-01T10:00:00+08:00",
  "rates": {"RUB/CNY": "0.078500", "USD/CNY": "7.1234"}}`` (rates as decimal strings;
  ``published_at`` optional, default the file's modification time);
* ``rail:<name>``: a configured rail that publishes reference rates through a
  ``forex_rates()`` method returning ``{"RUB/CNY": Decimal(...)}`` (the Alipay rail's
  ``forex_rate_file``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from settlement.db.types import utcnow
from settlement.fx.errors import InvalidRate, SourceNotConfigured, SourceUnavailable
from settlement.money import check_currency


@dataclass(frozen=True)
class RateQuote:
    """``rate`` units of ``quote`` per unit of ``base``, as published at ``published_at``."""

    base: str
    quote: str
    rate: Decimal
    published_at: dt.datetime


class RateSource(Protocol):
    name: str

    def fetch(self) -> list[RateQuote]:
        """Every rate the source offers now. Raises SourceUnavailable or InvalidRate."""
        ...


def parse_pair(pair: str, rate: object, published_at: dt.datetime) -> RateQuote:
    """``"RUB/CNY"`` and a decimal string (or an exact JSON number) -> RateQuote."""
    base, sep, quote = pair.partition("/")
    if not sep:
        raise InvalidRate(f"rate key {pair!r} is not BASE/QUOTE", pair=pair)
    check_currency(base)
    check_currency(quote)
    if base == quote:
        raise InvalidRate(f"rate {pair} converts a currency into itself", pair=pair)
    if isinstance(rate, float | bool) or not isinstance(rate, str | Decimal | int):
        raise InvalidRate(f"rate {pair} must be a decimal string", pair=pair)
    try:
        value = Decimal(rate)
    except InvalidOperation:
        raise InvalidRate(f"rate {pair} = {rate!r} is not a decimal number", pair=pair) from None
    if not value.is_finite() or value <= 0:
        raise InvalidRate(f"rate {pair} = {rate!r} must be a positive number", pair=pair)
    return RateQuote(base, quote, value, published_at)


class FileRateSource:
    """Rates from a JSON file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path.name}"

    def fetch(self) -> list[RateQuote]:
        try:
            text = self.path.read_text(encoding="utf-8")
            stamp = dt.datetime.fromtimestamp(self.path.stat().st_mtime, dt.UTC)
        except OSError as exc:
            raise SourceUnavailable(f"cannot read the rates file {self.path}: {exc.strerror}") from None
        try:
            # Numbers are read as Decimals, so "0.0785" and 0.0785 mean exactly the same.
            document: Any = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise InvalidRate(f"rates file {self.path} is not JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("rates"), dict):
            raise InvalidRate(f'rates file {self.path} must be {{"rates": {{"RUB/CNY": "0.0785"}}}}')
        published = document.get("published_at")
        if published is not None:
            try:
                stamp = dt.datetime.fromisoformat(str(published))
            except ValueError:
                raise InvalidRate(f"published_at {published!r} is not an ISO 8601 time") from None
            if stamp.tzinfo is None:
                raise InvalidRate("published_at needs a time zone")
        return [parse_pair(str(pair), rate, stamp) for pair, rate in document["rates"].items()]


class RailRateSource:
    """Reference rates a rail publishes (``forex_rates()``), stamped with the fetch time."""

    def __init__(self, rail_name: str, rail: object, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.name = f"rail:{rail_name}"
        self._rail = rail
        self._clock = clock

    def fetch(self) -> list[RateQuote]:
        method = getattr(self._rail, "forex_rates", None)
        if not callable(method):
            raise SourceUnavailable(f"{self.name} publishes no forex rates")
        from adapters.base import RailError

        try:
            rates: Mapping[str, Decimal] = method()
        except RailError as exc:
            raise SourceUnavailable(f"{self.name}: {exc.message}") from None
        now = self._clock()
        return [parse_pair(pair, rate, now) for pair, rate in rates.items()]


def source_from_setting(value: str, rail_lookup: Callable[[str], object] | None = None) -> RateSource:
    """Build the source named by ``SETTLEMENT_FX_RATES_SOURCE``."""
    kind, _, target = value.partition(":")
    if kind == "file" and target:
        return FileRateSource(Path(target))
    if kind == "rail" and target and rail_lookup is not None:
        return RailRateSource(target, rail_lookup(target))
    raise SourceNotConfigured("set SETTLEMENT_FX_RATES_SOURCE to file:/path/rates.json or rail:<name>",
                              setting=value)
