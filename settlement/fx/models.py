"""FX tables.

* ``fx_rate_snapshots``: one row per currency pair per fetch: ``rate`` units of
  ``quote_currency`` per unit of ``base_currency``, where it came from and when it
  was published. Rows are never changed; the newest row of a pair is its rate.
* ``fx_quotes``: a rate offered for converting ``sell_currency`` into
  ``buy_currency`` until ``expires_at``: the mid rate from a snapshot and the client
  rate after the spread.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from settlement.db.base import Base
from settlement.db.types import BigId, Currency, UTCDateTime

#: Rates are stored with 12 decimal places (RUB/CNY 0.078500000000, JPY/KWD...).
RATE = Numeric(24, 12)


class RateSnapshot(Base):
    __tablename__ = "fx_rate_snapshots"
    __table_args__ = (
        CheckConstraint("rate > 0", name="rate_positive"),
        CheckConstraint("base_currency <> quote_currency", name="distinct_currencies"),
        Index("ix_fx_rate_snapshots_pair", "base_currency", "quote_currency", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    base_currency: Mapped[str] = mapped_column(Currency())
    quote_currency: Mapped[str] = mapped_column(Currency())
    rate: Mapped[Decimal] = mapped_column(RATE)
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Quote(Base):
    __tablename__ = "fx_quotes"
    __table_args__ = (
        CheckConstraint("mid_rate > 0 AND rate > 0 AND rate <= mid_rate", name="rates"),
        CheckConstraint("spread >= 0 AND spread < 1", name="spread"),
        CheckConstraint("sell_currency <> buy_currency", name="distinct_currencies"),
    )

    id: Mapped[int] = mapped_column(BigId, Identity(), primary_key=True)
    sell_currency: Mapped[str] = mapped_column(Currency())
    buy_currency: Mapped[str] = mapped_column(Currency())
    #: Units of buy currency per unit of sell currency, from the snapshot(s).
    mid_rate: Mapped[Decimal] = mapped_column(RATE)
    #: What the conversion pays: ``mid_rate * (1 - spread)``, rounded down.
    rate: Mapped[Decimal] = mapped_column(RATE)
    spread: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    source: Mapped[str] = mapped_column(String(200))
    snapshot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("fx_rate_snapshots.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
