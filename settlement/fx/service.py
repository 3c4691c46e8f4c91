"""Rate snapshots and quotes. Functions take a Session and never commit.

Rate lookup for ``sell -> buy`` uses the newest snapshot of, in this order: the
direct pair ``sell/buy``; the inverse pair ``buy/sell`` (rate ``1 / r``); a cross
through one currency ``c`` with ``sell/c`` (or ``c/sell``) and ``c/buy`` (or
``buy/c``). Derived rates are rounded half-even to 12 decimal places, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from settlement.db.types import utcnow
from settlement.fx.conversion import FxTerms, client_rate
from settlement.fx.errors import InvalidRate, QuoteExpired, QuoteMismatch, QuoteNotFound, RateUnavailable
from settlement.fx.models import Quote, RateSnapshot
from settlement.fx.sources import RateQuote, RateSource
from settlement.money import check_currency

_PLACES = Decimal("1e-12")


@dataclass(frozen=True)
class PairRate:
    """A rate for ``sell -> buy`` and the snapshots it came from."""

    rate: Decimal
    snapshot_id: int
    source: str
    published_at: dt.datetime


def store_snapshot(session: Session, source_name: str, quotes: Sequence[RateQuote],
                   now: dt.datetime | None = None) -> list[RateSnapshot]:
    """Store one fetch of a source. Refuses an empty fetch (nothing would change)."""
    if not quotes:
        raise InvalidRate(f"source {source_name} returned no rates", source=source_name)
    fetched = now or utcnow()
    rows = [RateSnapshot(source=source_name, base_currency=q.base, quote_currency=q.quote,
                         rate=q.rate.quantize(_PLACES, rounding=ROUND_HALF_EVEN), published_at=q.published_at,
                         fetched_at=fetched) for q in quotes]
    for row in rows:
        if row.rate <= 0:
            raise InvalidRate(f"rate {row.base_currency}/{row.quote_currency} rounds to zero at 12 places")
    session.add_all(rows)
    session.flush()
    return rows


def refresh(session: Session, source: RateSource) -> list[RateSnapshot]:
    """Fetch ``source`` and store what it returns."""
    return store_snapshot(session, source.name, source.fetch())


def latest_rates(session: Session) -> list[RateSnapshot]:
    """The newest snapshot of every pair."""
    newest = (select(func.max(RateSnapshot.id)).group_by(RateSnapshot.base_currency, RateSnapshot.quote_currency)
              .scalar_subquery())
    return list(session.scalars(select(RateSnapshot).where(RateSnapshot.id.in_(newest))
                                .order_by(RateSnapshot.base_currency, RateSnapshot.quote_currency)))


def _newest(session: Session, base: str, quote: str) -> RateSnapshot | None:
    return session.scalars(select(RateSnapshot).where(RateSnapshot.base_currency == base,
                                                      RateSnapshot.quote_currency == quote)
                           .order_by(RateSnapshot.id.desc()).limit(1)).first()


def _one_way(session: Session, sell: str, buy: str) -> tuple[Decimal, list[RateSnapshot]] | None:
    direct = _newest(session, sell, buy)
    if direct is not None:
        return direct.rate, [direct]
    inverse = _newest(session, buy, sell)
    if inverse is not None:
        return Decimal(1) / inverse.rate, [inverse]
    return None


def pair_rate(session: Session, sell: str, buy: str) -> PairRate:
    """The rate for converting ``sell`` into ``buy`` (see the module docstring)."""
    check_currency(sell)
    check_currency(buy)
    found = _one_way(session, sell, buy)
    if found is None:
        middles = session.scalars(select(RateSnapshot.quote_currency).where(RateSnapshot.base_currency == sell)
                                  .union(select(RateSnapshot.base_currency)
                                         .where(RateSnapshot.quote_currency == sell))).all()
        for middle in sorted(set(middles) - {buy}):
            first = _one_way(session, sell, middle)
            second = _one_way(session, middle, buy)
            if first is not None and second is not None:
                found = first[0] * second[0], first[1] + second[1]
                break
    if found is None:
        raise RateUnavailable(f"no FX rate converts {sell} into {buy}", sell_currency=sell, buy_currency=buy)
    rate, used = found
    rate = rate.quantize(_PLACES, rounding=ROUND_HALF_EVEN)
    if rate <= 0:
        raise RateUnavailable(f"the {sell}->{buy} rate rounds to zero", sell_currency=sell, buy_currency=buy)
    newest = max(used, key=lambda s: s.id)
    return PairRate(rate, newest.id, "+".join(sorted({s.source for s in used})),
                    min(s.published_at for s in used))


def create_quote(session: Session, sell: str, buy: str, *, spread: Decimal, ttl_seconds: int,
                 now: dt.datetime | None = None) -> Quote:
    """Quote converting ``sell`` into ``buy`` at the newest rate less ``spread``,
    valid for ``ttl_seconds``."""
    if sell == buy:
        raise QuoteMismatch("a quote converts between two different currencies", sell_currency=sell)
    mid = pair_rate(session, sell, buy)
    created = now or utcnow()
    rate = client_rate(mid.rate, spread)
    if rate <= 0:
        raise RateUnavailable(f"the {sell}->{buy} rate after the spread rounds to zero")
    quote = Quote(sell_currency=sell, buy_currency=buy, mid_rate=mid.rate, rate=rate, spread=spread,
                  source=mid.source, snapshot_id=mid.snapshot_id, created_at=created,
                  expires_at=created + dt.timedelta(seconds=ttl_seconds))
    session.add(quote)
    session.flush()
    return quote


def get_quote(session: Session, quote_id: int) -> Quote:
    quote = session.get(Quote, quote_id)
    if quote is None:
        raise QuoteNotFound(f"no FX quote {quote_id}", quote_id=quote_id)
    return quote


def usable_quote(session: Session, quote_id: int, sell: str, buy: str, now: dt.datetime | None = None) -> Quote:
    """The quote, if it converts ``sell`` into ``buy`` and has not expired."""
    quote = get_quote(session, quote_id)
    if (quote.sell_currency, quote.buy_currency) != (sell, buy):
        raise QuoteMismatch(f"quote {quote_id} converts {quote.sell_currency} into {quote.buy_currency}, "
                            f"not {sell} into {buy}", quote_id=quote_id)
    if quote.expires_at <= (now or utcnow()):
        raise QuoteExpired(f"quote {quote_id} expired at {quote.expires_at.isoformat()}", quote_id=quote_id,
                           expires_at=quote.expires_at.isoformat())
    return quote


def terms_of(quote: Quote) -> FxTerms:
    return FxTerms(quote.sell_currency, quote.buy_currency, quote.mid_rate, quote.rate, quote.id, quote.source)
