"""Properties of the split and refund arithmetic: parts always sum to the whole, never
go negative, and refunds in any pieces give back exactly what was captured."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from settlement.fx.conversion import FxTerms
from settlement.payments.booking import split_capture, split_postings, split_refund

RATES = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("200"), places=6)
COMMISSION = st.decimals(min_value=Decimal(0), max_value=Decimal("0.999999"), places=6)
SPREAD = st.decimals(min_value=Decimal(0), max_value=Decimal("0.05"), places=4)


def _terms(mid: Decimal, spread: Decimal) -> FxTerms:
    rate = (mid * (1 - spread)).quantize(Decimal("1e-12"), rounding="ROUND_DOWN")
    return FxTerms("RUB", "CNY", mid, rate, 1, "test")


@given(gross=st.integers(1, 10**12), rate=COMMISSION, mid=RATES, spread=SPREAD, fx=st.booleans())
def test_capture_split_is_whole(gross: int, rate: Decimal, mid: Decimal, spread: Decimal, fx: bool) -> None:
    split = split_capture(gross, rate, _terms(mid, spread) if fx else None)
    assert split.commission + split.seller_gross == gross
    assert split.commission == int(gross * rate)  # rounded down; the seller takes the remainder
    assert split.seller >= 0
    assert split.spread >= 0
    if not fx:
        assert split.seller == split.seller_gross
        assert split.fx_mid == 0
    postings = split_postings(split, currency="RUB", settlement_currency="CNY" if fx else "RUB", merchant_id=1,
                              source="payments:clearing:RUB")
    for currency in {p.currency for p in postings}:
        debits = sum(p.amount for p in postings if p.currency == currency and p.side.value == "D")
        credits = sum(p.amount for p in postings if p.currency == currency and p.side.value == "C")
        assert debits == credits


@given(gross=st.integers(1, 10**9), rate=COMMISSION, mid=RATES, spread=SPREAD, fx=st.booleans(),
       cuts=st.lists(st.integers(1, 10**9), min_size=1, max_size=8))
def test_refunds_in_pieces_give_back_exactly_the_capture(gross: int, rate: Decimal, mid: Decimal, spread: Decimal,
                                                         fx: bool, cuts: list[int]) -> None:
    captured = split_capture(gross, rate, _terms(mid, spread) if fx else None)
    back = {"gross": 0, "commission": 0, "seller": 0, "mid": 0}
    for cut in [*cuts, gross]:
        remaining = gross - back["gross"]
        if remaining == 0:
            break
        amount = min(cut, remaining)
        part = split_refund(amount, remaining_gross=remaining,
                            remaining_commission=captured.commission - back["commission"],
                            remaining_seller=captured.seller - back["seller"],
                            remaining_mid=captured.fx_mid - back["mid"], fx=fx)
        assert part.gross == amount
        assert part.commission + part.seller_gross == amount
        assert 0 <= part.commission <= captured.commission - back["commission"]
        assert 0 <= part.seller <= captured.seller - back["seller"]
        assert part.spread >= 0
        back = {"gross": back["gross"] + part.gross, "commission": back["commission"] + part.commission,
                "seller": back["seller"] + part.seller, "mid": back["mid"] + part.fx_mid}
    assert back == {"gross": gross, "commission": captured.commission, "seller": captured.seller,
                    "mid": captured.fx_mid}
