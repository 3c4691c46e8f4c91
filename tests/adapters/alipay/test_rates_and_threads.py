"""The forex rate file, and one rail instance shared by many threads."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from adapters.alipay import AlipayRail, AlipaySimulator, plugin
from adapters.alipay.codec import BEIJING
from adapters.alipay.forex import ForexRate, format_rate_file, parse_rate_file
from adapters.base import AuthorizeRequest, Malformed, QueryRequest, RailError, RefundRequest, TxnStatus
from adapters.testing import new_reference

from .conftest import StartSim


def test_rate_file_round_trip() -> None:
    published = dt.datetime(2026, 1, 5, 10, 0, 30, tzinfo=BEIJING)
    text = format_rate_file({"USD": Decimal("7.123400"), "RUB": Decimal("0.078500")}, published)
    assert text == "20260105|100030|RUB|0.078500|\n20260105|100030|USD|7.123400|\n"
    assert parse_rate_file(text) == [ForexRate("RUB", Decimal("0.0785"), published),
                                     ForexRate("USD", Decimal("7.1234"), published)]


@pytest.mark.parametrize("text", ["", "20260105|100030|RUB|abc|\n", "20260105|100030|RUB|0|\n",
                                  "2026-01-05|100030|RUB|0.0785|\n", "20260105|250000|RUB|0.0785|\n"])
def test_unusable_rate_files(text: str) -> None:
    with pytest.raises(Malformed):
        parse_rate_file(text)


def test_rate_file_refused_for_another_partner(sim: AlipaySimulator) -> None:
    other = plugin.create_rail({**sim.adapter_config(), "partner_id": "2088999999999999"})
    with pytest.raises(RailError, match="ILLEGAL_PARTNER"):
        other.forex_rates()
    other.close()


def test_rates_follow_the_simulator_option(start_sim: StartSim) -> None:
    _, rail = start_sim(rates="RUB=0.0801,EUR=7.5")
    assert rail.forex_rates() == {"RUB/CNY": Decimal("0.0801"), "EUR/CNY": Decimal("7.5")}


def test_one_rail_serves_many_threads(sim: AlipaySimulator, rail: AlipayRail) -> None:
    def pay_and_refund(n: int) -> tuple[str, str]:
        request = AuthorizeRequest(reference=new_reference("thr"), amount=10_00 + n, currency="CNY",
                                   method=sim.approving_method(), capture=True)
        sold = rail.authorize(request)
        rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=sold.rail_reference, amount=1_00,
                                  currency="CNY"))
        return request.reference, sold.rail_reference

    with ThreadPoolExecutor(max_workers=8) as pool:
        done = list(pool.map(pay_and_refund, range(24)))
    assert len({trade for _, trade in done}) == 24
    for reference, trade in done:
        found = rail.query(QueryRequest(reference=reference))
        assert (found.status, found.rail_reference) == (TxnStatus.CAPTURED, trade)
        assert sim.transaction_status(reference) is TxnStatus.REFUNDED


def test_refund_query_for_an_unknown_trade_is_not_found(rail: AlipayRail) -> None:
    found = rail.query(QueryRequest(reference=new_reference(), rail_reference="2026010522000000000000",
                                    operation="refund"))
    assert found.status is TxnStatus.NOT_FOUND
