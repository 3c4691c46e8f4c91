"""API shapes of FX. Rates are decimal strings."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from settlement.fx.conversion import FxTerms, convert
from settlement.fx.models import Quote, RateSnapshot
from settlement.money import format_minor

CURRENCY = Field(pattern=r"^[A-Z]{3}$", examples=["RUB"])


class QuoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sell_currency: str = CURRENCY
    buy_currency: str = CURRENCY
    sell_amount: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]+(\.[0-9]+)?$",
                                    description="Optional: also show what this amount converts to.")


class QuoteOut(BaseModel):
    id: int
    sell_currency: str
    buy_currency: str
    mid_rate: str
    rate: str
    spread: str
    source: str
    created_at: dt.datetime
    expires_at: dt.datetime
    sell_amount: str | None = None
    buy_amount: str | None = None

    @classmethod
    def of(cls, quote: Quote, sell_minor: int | None = None) -> QuoteOut:
        out = cls(id=quote.id, sell_currency=quote.sell_currency, buy_currency=quote.buy_currency,
                  mid_rate=str(quote.mid_rate), rate=str(quote.rate), spread=str(quote.spread), source=quote.source,
                  created_at=quote.created_at, expires_at=quote.expires_at)
        if sell_minor is not None:
            terms = FxTerms(quote.sell_currency, quote.buy_currency, quote.mid_rate, quote.rate, quote.id,
                            quote.source)
            out.sell_amount = format_minor(sell_minor, quote.sell_currency)
            out.buy_amount = format_minor(convert(sell_minor, terms).buy, quote.buy_currency)
        return out


class RateOut(BaseModel):
    id: int
    base_currency: str
    quote_currency: str
    rate: str
    source: str
    published_at: dt.datetime
    fetched_at: dt.datetime

    @classmethod
    def of(cls, row: RateSnapshot) -> RateOut:
        return cls(id=row.id, base_currency=row.base_currency, quote_currency=row.quote_currency,
                   rate=str(row.rate), source=row.source, published_at=row.published_at,
                   fetched_at=row.fetched_at)


class RateList(BaseModel):
    data: list[RateOut]
