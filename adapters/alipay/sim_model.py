"""The simulated Alipay's books: trades, pre-authorization orders, refunds, transfers.

Everything a simulator instance knows lives in one :class:`SimState`, guarded by one
lock. The operations (:mod:`.sim_trades`, :mod:`.sim_funds`) change it and return the
``<method>_response`` object; a :class:`Refusal` becomes a signed failure response.

Documented test accounts (buyer and payee ids are Alipay user ids, ``2088`` + 12
digits); any other well-formed id is approved:

======================  ===============================================================
``2088102100000001``    approves (the simulator's approving method)
``2088102100000002``    40004 ``ACQ.BUYER_BALANCE_NOT_ENOUGH`` (its declining method)
``2088102100000003``    40004 ``ACQ.BUYER_ENABLE_STATUS_FORBID``
``2088102100000004``    sales wait for the buyer: 10003, WAIT_BUYER_PAY, until
                        :meth:`AlipaySimulator.confirm_payment`
``2088102100000009``    as a transfer payee: 40004 ``PAYEE_NOT_EXIST``
======================  ===============================================================

Test amounts (sales and pre-authorizations, in the price currency):

* ``555.55``: 40004 ``ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR``;
* ``666.66``: the operation *is* carried out, but the gateway answers 20000
  ``ACQ.SYSTEM_ERROR`` (outcome unknown: the client must query);
* above ``1000000.00``: 40004 ``ACQ.TOTAL_FEE_EXCEED``;
* transfers above ``50000.00``: 40004 ``EXCEED_LIMIT_SM_AMOUNT``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from adapters.base import RecordType, SettlementRecord
from adapters.simulation import SettlementBook

from .codec import CALENDAR, HOME_CURRENCY, RAIL, AmountError, convert, fee_schedule_for, to_major, to_minor

APPROVING_BUYER = "2088102100000001"
DECLINING_BUYER = "2088102100000002"
FORBIDDEN_BUYER = "2088102100000003"
WAITING_BUYER = "2088102100000004"
MISSING_PAYEE = "2088102100000009"

DECLINE_BY_BUYER = {
    DECLINING_BUYER: ("ACQ.BUYER_BALANCE_NOT_ENOUGH", "buyer balance is not enough"),
    FORBIDDEN_BUYER: ("ACQ.BUYER_ENABLE_STATUS_FORBID", "buyer account is restricted"),
}
DAY_LIMIT_AMOUNT = "555.55"
SYSTEM_ERROR_AMOUNT = "666.66"
MAX_TRADE_MINOR = 1_000_000_00
MAX_TRANSFER_MINOR = 50_000_00

DEFAULT_RATES = {"RUB": Decimal("0.078500"), "USD": Decimal("7.123400"),
                 "EUR": Decimal("7.741500"), "HKD": Decimal("0.912300")}

SUCCESS = {"code": "10000", "msg": "Success"}


Response = dict[str, Any]


class Refusal(Exception):
    """A failed call: ``code`` 40004 with Alipay's ``sub_code`` unless stated."""

    def __init__(self, sub_code: str, sub_msg: str, code: str = "40004", msg: str = "Business Failed") -> None:
        super().__init__(f"{code} {sub_code}")
        self.response = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}

    @classmethod
    def replay(cls, response: dict[str, str]) -> Refusal:
        return cls(response["sub_code"], response["sub_msg"], response["code"], response["msg"])


class ProcessedButUnknown(Exception):
    """The operation was carried out; answer 20000 anyway (a lost answer)."""


@dataclass
class Refund:
    out_request_no: str
    trade_no: str
    amount: int
    at: dt.datetime


@dataclass
class Trade:
    trade_no: str
    out_trade_no: str
    total: int
    currency: str
    buyer_id: str
    status: str
    created_at: dt.datetime
    notify_url: str | None
    settle_reference: str
    rate: Decimal | None = None
    auth_no: str | None = None
    paid_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds.values())


@dataclass
class Operation:
    operation_id: str
    out_request_no: str
    kind: str  # FREEZE, UNFREEZE, PAY
    amount: int
    at: dt.datetime


@dataclass
class AuthOrder:
    auth_no: str
    out_order_no: str
    amount: int
    currency: str
    payer_id: str
    created_at: dt.datetime
    notify_url: str | None
    rate: Decimal | None = None
    status: str = "AUTHORIZED"  # AUTHORIZED, FINISH (something paid), CLOSED (all unfrozen)
    rest: int = 0
    paid: int = 0
    unfrozen: int = 0
    operations: dict[str, Operation] = field(default_factory=dict)
    trades: list[str] = field(default_factory=list)
    refunds: dict[str, list[Refund]] = field(default_factory=dict)


@dataclass
class Transfer:
    order_id: str
    pay_fund_order_id: str
    out_biz_no: str
    amount: int
    payee: str
    at: dt.datetime


@dataclass
class Outgoing:
    """A notification to send once the state change that caused it is committed."""

    url: str
    params: dict[str, str]


class SimState:
    """The books of one simulated gateway, and the rules shared by its operations."""

    def __init__(self, *, rates: dict[str, Decimal], clock: Callable[[], dt.datetime]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.rates = rates
        self.book = SettlementBook()
        self.trades: dict[str, Trade] = {}          # by trade_no
        self.trade_by_out: dict[str, str] = {}      # out_trade_no -> trade_no
        self.orders: dict[str, AuthOrder] = {}      # by auth_no
        self.order_by_out: dict[str, str] = {}      # out_order_no -> auth_no
        self.transfers: dict[str, Transfer] = {}    # by out_biz_no
        self.declined: dict[str, dict[str, str]] = {}  # our reference -> the refusal answered
        self.outbox: list[Outgoing] = []
        self._serial = itertools.count(1)

    # -- identifiers: Alipay-shaped, unique per simulator -----------------------------

    def new_id(self, infix: str) -> str:
        today = self.clock().strftime("%Y%m%d")
        return f"{today}{infix}{next(self._serial):06d}{secrets.randbelow(10**8):08d}"

    # -- rules --------------------------------------------------------------------

    def rate_for(self, currency: str) -> Decimal | None:
        if currency == HOME_CURRENCY:
            return None
        if currency not in self.rates:
            raise Refusal("ACQ.CURRENCY_NOT_SUPPORT", f"{currency} is not supported")
        return self.rates[currency]

    def settle(self, *, kind: RecordType, reference: str, rail_reference: str, amount: int, currency: str,
               rate: Decimal | None, at: dt.datetime) -> None:
        """Book a money movement for the next settlement file. ``amount`` is positive;
        refunds and transfers are written negative."""
        gross = amount if kind is RecordType.PAYMENT else -amount
        fee = fee_schedule_for(currency).fee_for(gross, kind)
        net = gross - fee
        day = at.date()
        self.book.add(SettlementRecord(
            rail=RAIL, line_number=0, record_type=kind, rail_reference=rail_reference, reference=reference,
            gross=gross, fee=fee, net=net, currency=currency, transaction_date=day,
            settlement_date=CALENDAR.expected_settlement_date(day),
            settlement_amount=None if rate is None else convert(net, currency, rate, HOME_CURRENCY),
            settlement_currency=None if rate is None else HOME_CURRENCY, fx_rate=rate, status="L"))

    def notify(self, url: str | None, params: dict[str, str]) -> None:
        if url:
            self.outbox.append(Outgoing(url=url, params=params))

    def take_outbox(self) -> list[Outgoing]:
        with self.lock:
            out, self.outbox = self.outbox, []
            return out


# -- request rules shared by the operations -------------------------------------------


def required(biz: dict[str, Any], key: str) -> str:
    value = biz.get(key)
    if value is None or str(value) == "":
        raise Refusal("ACQ.INVALID_PARAMETER", f"{key} is required")
    return str(value)


def amount_of(biz: dict[str, Any], key: str, currency: str) -> int:
    try:
        minor = to_minor(required(biz, key), currency)
    except AmountError as exc:
        raise Refusal("ACQ.INVALID_PARAMETER", f"{key}: {exc}") from exc
    if minor <= 0:
        raise Refusal("ACQ.INVALID_PARAMETER", f"{key} must be positive")
    return minor


def currency_of(biz: dict[str, Any]) -> str:
    return str(biz.get("trans_currency") or HOME_CURRENCY)


def check_buyer_and_amount(buyer: str, amount_text: str, minor: int) -> None:
    """The documented test buyers and amounts that are refused."""
    if not (buyer.startswith("2088") and len(buyer) == 16 and buyer.isdigit()):
        raise Refusal("ACQ.INVALID_PARAMETER", "buyer_id is not an Alipay user id")
    if buyer in DECLINE_BY_BUYER:
        raise Refusal(*DECLINE_BY_BUYER[buyer])
    if minor > MAX_TRADE_MINOR:
        raise Refusal("ACQ.TOTAL_FEE_EXCEED", "total amount exceeds the limit")
    if amount_text == DAY_LIMIT_AMOUNT:
        raise Refusal("ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR", "buyer's daily payment limit reached")


def fx_fields(total: int, currency: str, rate: Decimal | None) -> Response:
    if rate is None:
        return {}
    rmb = convert(total, currency, rate, HOME_CURRENCY)
    return {"trans_currency": currency, "settle_currency": currency, "settle_amount": to_major(total, currency),
            "pay_currency": HOME_CURRENCY, "pay_amount": to_major(rmb, HOME_CURRENCY),
            "rmb_amount": to_major(rmb, HOME_CURRENCY), "trans_pay_rate": f"{rate:f}"}
