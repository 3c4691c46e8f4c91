"""Commercial terms and card rules of the Mir rail, shared by the adapter and the
simulator: currency, merchant discount, settlement calendar and the Mir BIN range."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from adapters.base import FeeSchedule, SettlementCalendar, luhn_valid

RAIL = "mir"

#: Mir settles in roubles only; ISO 4217 numeric code 643 travels in field 49.
CURRENCY = "RUB"
CURRENCY_NUMERIC = "643"

#: 1.5 % merchant discount, no fixed part; a refund gives no fee back.
FEE_SCHEDULE = FeeSchedule(rate=Decimal("0.015"))

#: T+1 business days; a record still absent two business days later is missing.
CALENDAR = SettlementCalendar(lag_days=1, business_days_only=True, sla_days=2)

#: Moscow has kept UTC+3 all year since 2014; ISO 8583 "local" fields 12 and 13 and
#: the register's transaction dates use it.
MOSCOW = dt.timezone(dt.timedelta(hours=3), "MSK")

#: Largest amount field 4 can carry (12 digits of kopecks).
MAX_AMOUNT = 999_999_999_999


def is_mir_bin(pan: str) -> bool:
    """True when ``pan`` is 16 to 19 digits starting with 2200 to 2204 (Mir's range)."""
    return pan.isdigit() and 16 <= len(pan) <= 19 and "2200" <= pan[:4] <= "2204"


def is_valid_mir_pan(pan: str) -> bool:
    """A Mir BIN and a correct Luhn check digit."""
    return is_mir_bin(pan) and luhn_valid(pan)


def moscow_now() -> dt.datetime:
    return dt.datetime.now(MOSCOW)
