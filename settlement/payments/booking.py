"""The arithmetic and the ledger entries of captures and refunds (rules in
:mod:`settlement.payments.accounts`). Pure functions: no database."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from settlement.fx.conversion import FxTerms, conversion_postings, convert
from settlement.ledger import EntrySpec, PostingSpec, credit, debit
from settlement.money import allocate
from settlement.payments import accounts


@dataclass(frozen=True)
class Split:
    """How an amount ``gross`` (payment currency) divides.

    ``commission`` (payment currency) goes to the marketplace; ``seller_gross =
    gross - commission`` is the seller's share in the payment currency; ``seller``
    is what the seller's payable gets in its settlement currency (equal to
    ``seller_gross`` without FX) and ``fx_mid`` what the conversion takes from FX
    liquidity (``fx_mid - seller`` is the spread; 0 without FX).
    """

    gross: int
    commission: int
    seller: int
    fx_mid: int

    @property
    def seller_gross(self) -> int:
        return self.gross - self.commission

    @property
    def spread(self) -> int:
        return self.fx_mid - self.seller if self.fx_mid else 0


def split_capture(gross: int, commission_rate: Decimal, fx: FxTerms | None) -> Split:
    """Commission ``floor(gross x rate)``; the seller's share takes the remainder
    (``money.allocate`` with the remainder to the seller), then is converted at
    ``fx`` when the seller settles in another currency."""
    parts = allocate(gross, {"commission": commission_rate, "seller": Decimal(1) - commission_rate},
                     remainder_to="seller")
    seller_gross = parts["seller"]
    if fx is None:
        return Split(gross, parts["commission"], seller_gross, 0)
    conversion = convert(seller_gross, fx)
    return Split(gross, parts["commission"], conversion.buy, conversion.mid)


def split_refund(refund: int, *, remaining_gross: int, remaining_commission: int, remaining_seller: int,
                 remaining_mid: int, fx: bool) -> Split:
    """The share ``refund / remaining_gross`` of what is still unrefunded of each part,
    rounded down; the seller's share in the payment currency takes the remainder.
    ``refund == remaining_gross`` gives back exactly what remains."""
    if not 0 < refund <= remaining_gross:
        raise ValueError("refund must be within what remains captured")
    if refund == remaining_gross:
        return Split(refund, remaining_commission, remaining_seller, remaining_mid if fx else 0)
    commission = remaining_commission * refund // remaining_gross
    seller = remaining_seller * refund // remaining_gross
    if not fx:
        return Split(refund, commission, refund - commission, 0)
    spread = (remaining_mid - remaining_seller) * refund // remaining_gross
    return Split(refund, commission, seller, seller + spread)


def split_postings(split: Split, *, currency: str, settlement_currency: str, merchant_id: int,
                   source: str, reverse: bool = False) -> list[PostingSpec]:
    """The split of a capture: ``source`` (clearing) gives ``gross``; commission and the
    seller's payable (through FX when the currencies differ) receive it. With
    ``reverse``: the refund's image, ``source`` being what receives ``gross`` back and
    ``payments:refunds`` standing in for the payable (its share was held there)."""
    legs: list[PostingSpec] = []
    payee = accounts.refunds_in_flight(settlement_currency) if reverse else accounts.payable(
        merchant_id, settlement_currency)
    legs.append(credit(source, split.gross, currency) if reverse else debit(source, split.gross, currency))
    if split.commission:
        code = accounts.commission(currency)
        legs.append(debit(code, split.commission, currency) if reverse else credit(code, split.commission, currency))
    if settlement_currency == currency:
        if split.seller:
            legs.append(debit(payee, split.seller, currency) if reverse else credit(payee, split.seller, currency))
        return legs
    legs += conversion_postings(split.seller_gross, split.seller, split.fx_mid, sell_currency=currency,
                                buy_currency=settlement_currency, target=payee, reverse=reverse)
    return legs


def entry(key: str, kind: str, postings: list[PostingSpec], *, description: str,
          metadata: dict[str, str]) -> EntrySpec:
    return EntrySpec(idempotency_key=key, postings=postings, kind=kind, description=description, metadata=metadata)


def ledger_key(attempt_id: int, step: str) -> str:
    """The ledger idempotency key of step ``step`` of attempt ``attempt_id``: whoever
    books the attempt's outcome (the request, the janitor, a notification) writes
    the same keys, so the outcome is booked once."""
    return f"payments:attempt:{attempt_id}:{step}"


def payout_key(payout_id: int, step: str) -> str:
    return f"payments:payout:{payout_id}:{step}"
