"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB

#: Primary keys: BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY
#: KEY is an alias of the rowid and autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: JSON documents (metadata): JSONB on PostgreSQL.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class Currency(TypeDecorator[str]):
    """ISO 4217 alphabetic code, stored as CHAR(3)."""

    impl = String(3)
    cache_ok = True


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps everywhere.

    PostgreSQL stores ``timestamptz``. SQLite has no time type, so values are stored
    as naive UTC ISO text and come back aware. Naive datetimes are refused on the
    way in, because their zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware datetime (UTC)")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        stamp = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        assert isinstance(stamp, dt.datetime)
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=dt.UTC)
        return stamp.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
