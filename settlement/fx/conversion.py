"""One conversion, computed exactly, and the postings that book it.

Rule: converting ``sell`` minor units of the sell currency at a quote pays
``buy = sell x rate`` and takes ``mid = sell x mid_rate`` out of the buy currency's
liquidity, both rounded **down** to the buy currency's minor unit (never more than
the rate allows); the difference ``spread = mid - buy`` is FX income. Because
``rate <= mid_rate``, ``spread >= 0``.

Postings (each currency balances on its own; the liquidity accounts carry the
marketplace's FX position):

=========================  ======  ==========================
account                    side    amount
=========================  ======  ==========================
``fx:liquidity:<SELL>``    credit  ``sell`` (we receive it)
``fx:liquidity:<BUY>``     debit   ``mid`` (we give it)
target (seller payable)    credit  ``buy``
``fx:income:<BUY>``        credit  ``spread``
=========================  ======  ==========================

Zero amounts are left out (the ledger refuses zero postings).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from settlement.ledger import PostingSpec, credit, debit
from settlement.money import apply_rate


@dataclass(frozen=True)
class FxTerms:
    """The rates a conversion uses, and where they came from (stored with each entry)."""

    sell_currency: str
    buy_currency: str
    mid_rate: Decimal
    rate: Decimal
    quote_id: int
    source: str

    def metadata(self) -> dict[str, str]:
        return {"fx_quote_id": str(self.quote_id), "fx_rate": str(self.rate), "fx_mid_rate": str(self.mid_rate),
                "fx_source": self.source}


@dataclass(frozen=True)
class Conversion:
    sell: int
    buy: int
    mid: int

    @property
    def spread(self) -> int:
        return self.mid - self.buy


def convert(sell: int, terms: FxTerms) -> Conversion:
    """Convert ``sell`` minor units at ``terms`` (see the module docstring)."""
    buy = apply_rate(sell, terms.rate, terms.sell_currency, terms.buy_currency, rounding=ROUND_DOWN)
    mid = apply_rate(sell, terms.mid_rate, terms.sell_currency, terms.buy_currency, rounding=ROUND_DOWN)
    return Conversion(sell, buy, mid)


def liquidity_code(currency: str) -> str:
    return f"fx:liquidity:{currency}"


def income_code(currency: str) -> str:
    return f"fx:income:{currency}"


def conversion_postings(sell: int, buy: int, mid: int, *, sell_currency: str, buy_currency: str,
                        target: str, reverse: bool = False) -> list[PostingSpec]:
    """The postings of a conversion into ``target`` (see the module docstring); with
    ``reverse``, the mirror image (a refund giving the conversion back)."""
    spread = mid - buy
    legs: list[tuple[str, bool, int, str]] = [
        (liquidity_code(sell_currency), False, sell, sell_currency),
        (liquidity_code(buy_currency), True, mid, buy_currency),
        (target, False, buy, buy_currency),
        (income_code(buy_currency), False, spread, buy_currency),
    ]
    out: list[PostingSpec] = []
    for code, is_debit, amount, currency in legs:
        if amount <= 0:
            continue
        out.append(debit(code, amount, currency) if is_debit != reverse else credit(code, amount, currency))
    return out


def client_rate(mid_rate: Decimal, spread: Decimal) -> Decimal:
    """``mid_rate x (1 - spread)``, rounded down to 12 decimal places."""
    return (mid_rate * (Decimal(1) - spread)).quantize(Decimal("1e-12"), rounding=ROUND_DOWN)
