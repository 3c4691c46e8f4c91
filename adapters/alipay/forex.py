"""Alipay's reference exchange rates: the cross-border ``forex_rate_file``.

The file is fetched from the gateway with the legacy ("mapi") request style:
``service=forex_rate_file``, ``partner`` (the 2088... partner id), ``sign_type`` and
``sign``, the signature taken over the sorted parameters without ``sign`` and
``sign_type``. The answer is plain text without a header, one currency per line::

    20160504|100030|EUR|7.491500|

that is: publication date (YYYYMMDD), time (HHMMSS, Beijing), currency, and the rate
in CNY per unit of that currency. Alipay publishes new rates once a day between 9:00
and 11:00 Beijing time; they are reference rates, not what a given trade gets.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from adapters.base import Malformed, RailError

from .codec import BEIJING, RAIL, AmountError, parse_rate
from .signing import SIGN_TYPE, notification_content, sign
from .transport import Gateway

_LINE = re.compile(r"([0-9]{8})\|([0-9]{6})\|([A-Z]{3})\|([^|]*)\|?")


@dataclass(frozen=True)
class ForexRate:
    """One line of the rate file: ``rate`` CNY per unit of ``currency``."""

    currency: str
    rate: Decimal
    published_at: dt.datetime


def rate_file_request(gateway: Gateway, partner_id: str) -> dict[str, str]:
    """The signed parameters of a ``forex_rate_file`` request."""
    params = {"service": "forex_rate_file", "partner": partner_id, "_input_charset": "utf-8",
              "sign_type": SIGN_TYPE}
    # The legacy gateway signs like a notification: without sign and sign_type.
    params["sign"] = sign(notification_content(params), gateway.private_key)
    return params


def parse_rate_file(text: str) -> list[ForexRate]:
    """Every line of a rate file; a line that is not ``date|time|currency|rate|`` makes
    the whole file unusable (a rate table with holes would silently price wrongly)."""
    if text.startswith("File download failed"):
        raise RailError(f"Alipay refused the rate file: {text[:200]}", rail=RAIL)
    rates: list[ForexRate] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line.strip())
        if match is None:
            raise Malformed(f"rate file line {number} is not date|time|currency|rate|: {line[:60]!r}", rail=RAIL)
        day, clock, currency, rate_text = match.groups()
        try:
            published = dt.datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)
            rate = parse_rate(rate_text)
        except (ValueError, AmountError) as exc:
            raise Malformed(f"rate file line {number}: {exc}", rail=RAIL) from exc
        rates.append(ForexRate(currency=currency, rate=rate, published_at=published))
    if not rates:
        raise Malformed("the rate file is empty", rail=RAIL)
    return rates


def fetch_rate_file(gateway: Gateway, partner_id: str) -> list[ForexRate]:
    if not partner_id:
        raise Malformed("the forex rate file needs the partner_id configuration key", rail=RAIL)
    return parse_rate_file(gateway.post(rate_file_request(gateway, partner_id), moves_money=False,
                                        method="GET"))


def format_rate_file(rates: dict[str, Decimal], published_at: dt.datetime) -> str:
    """The rate file for ``rates`` (currency -> CNY per unit), as the gateway serves it."""
    stamp = published_at.astimezone(BEIJING).strftime("%Y%m%d|%H%M%S")
    return "".join(f"{stamp}|{currency}|{rate:f}|\n" for currency, rate in sorted(rates.items()))
