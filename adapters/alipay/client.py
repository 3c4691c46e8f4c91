"""The Alipay rail: the SPI's operations mapped onto Alipay's open-platform methods.

=========================  ==========================================================
SPI operation              Alipay method
=========================  ==========================================================
authorize, ``capture``     ``alipay.trade.pay`` (sale; ``buyer_id`` names the payer)
authorize, no capture      ``alipay.fund.auth.order.freeze`` (pre-authorization)
capture                    ``alipay.trade.pay`` with ``auth_no`` and ``auth_confirm_mode``
void                       ``alipay.fund.auth.order.unfreeze``; ``alipay.trade.close``
                           for a sale still waiting for the buyer
refund                     ``alipay.trade.refund`` (``out_request_no`` = our reference)
query                      ``alipay.fund.auth.operation.detail.query``,
                           ``alipay.trade.query``, ``alipay.trade.fastpay.refund.query``,
                           ``alipay.fund.trans.common.query``
payout                     ``alipay.fund.trans.uni.transfer`` (CNY, to an Alipay user id)
forex rates                ``forex_rate_file`` (Alipay's cross-border rate file)
=========================  ==========================================================

Forex trades: a request in RUB, USD, EUR or HKD is sent with ``trans_currency`` (the
price currency; ``total_amount`` is in it) and ``settle_currency``; the buyer pays
the CNY equivalent. Alipay answers ``trans_pay_rate`` (CNY per unit of the price
currency) and ``rmb_amount`` (what the buyer pays), which become ``RailResult.fx``.

References: ``rail_reference`` is the ``trade_no`` of a sale and the ``auth_no`` of a
pre-authorization; captures, voids and refunds of a pre-authorization all name its
``auth_no``. A capture is a trade of its own: its ``trade_no`` is the result's ``rrn``
(and in ``raw``), as a sale's is; the settlement file lists the capture under that
``trade_no`` (``Transaction_id``), which is how reconciliation finds it. Refunding an
``auth_no`` refunds the trades paid from it, newest first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, BinaryIO

from adapters.base import (
    AuthorizeRequest,
    Capability,
    CaptureRequest,
    Declined,
    Malformed,
    MethodKind,
    Notification,
    NotificationAck,
    PayoutRequest,
    QueryRequest,
    RailResult,
    RecordError,
    RefundRequest,
    SettlementRecord,
    TxnStatus,
    Unsupported,
    VoidRequest,
)

from . import codec
from .codec import CALENDAR, CURRENCIES, DOMESTIC_FEES, HOME_CURRENCY, RAIL
from .files import parse_settlement
from .forex import ForexRate, fetch_rate_file
from .notifications import NotificationVerifier
from .queries import AUTH_NOT_EXIST, query_auth, query_payout, query_refund, query_trade
from .responses import amount, answer_for, order_status, result, text
from .signing import load_private_key, load_public_key
from .transport import Gateway, GatewayRejected

CAPABILITIES = (Capability.AUTHORIZE | Capability.SALE | Capability.PARTIAL_CAPTURE
                | Capability.MULTIPLE_CAPTURE | Capability.VOID | Capability.REFUND
                | Capability.PARTIAL_REFUND | Capability.QUERY | Capability.PAYOUT
                | Capability.NOTIFICATIONS | Capability.FOREX)


class AlipayRail:
    """A client of one Alipay app. Build it with :meth:`from_config`; every method is
    synchronous and thread-safe, and the instance holds its own keys and HTTP pool."""

    name = RAIL
    currencies = CURRENCIES
    capabilities = CAPABILITIES
    fee_schedule = DOMESTIC_FEES
    calendar = CALENDAR

    def __init__(self, *, gateway: Gateway, verifier: NotificationVerifier, notify_url: str | None,
                 partner_id: str) -> None:
        self._gateway = gateway
        self._verifier = verifier
        self._notify_url = notify_url
        self._partner_id = partner_id

    @classmethod
    def from_config(cls, config: Mapping[str, str],
                    clock: Callable[[], dt.datetime] = codec.beijing_now) -> AlipayRail:
        """Config keys: ``gateway_url``, ``app_id``, ``app_private_key`` (PEM),
        ``alipay_public_key`` (PEM) are required; ``partner_id`` (for the forex rate
        file), ``notify_url``, ``timeout_seconds`` (10), ``notify_max_age_seconds``
        (3600), ``max_response_bytes`` (1 MiB) and ``max_notification_bytes`` (64 KiB)
        are optional."""
        missing = [k for k in ("gateway_url", "app_id", "app_private_key", "alipay_public_key") if not config.get(k)]
        if missing:
            raise Malformed(f"Alipay rail configuration lacks {', '.join(missing)}", rail=RAIL)
        alipay_key = load_public_key(config["alipay_public_key"])
        gateway = Gateway(url=config["gateway_url"], app_id=config["app_id"],
                          private_key=load_private_key(config["app_private_key"]), alipay_key=alipay_key,
                          timeout=_number(config, "timeout_seconds", 10),
                          max_response_bytes=_number(config, "max_response_bytes", 1 << 20), clock=clock)
        verifier = NotificationVerifier(
            app_id=config["app_id"], alipay_key=alipay_key,
            max_age=dt.timedelta(seconds=_number(config, "notify_max_age_seconds", 3600)),
            max_bytes=_number(config, "max_notification_bytes", 64 << 10), clock=clock)
        return cls(gateway=gateway, verifier=verifier, notify_url=config.get("notify_url") or None,
                   partner_id=config.get("partner_id", ""))

    def close(self) -> None:
        self._gateway.close()

    # -- money movements ----------------------------------------------------------

    def authorize(self, request: AuthorizeRequest) -> RailResult:
        """With ``capture``: a sale (``alipay.trade.pay``), CAPTURED, or PENDING when
        Alipay waits for the buyer to confirm (code 10003). Without: a pre-authorization
        (``alipay.fund.auth.order.freeze``, ``out_order_no`` = ``out_request_no`` =
        reference), AUTHORIZED. Only wallets with a ``buyer_id``; the same reference again
        answers the original trade or order. Raises :class:`Declined` with Alipay's
        ``sub_code``."""
        buyer = request.method.buyer_id
        if request.method.kind is not MethodKind.WALLET or not buyer:
            raise Unsupported("Alipay pays from a wallet: PaymentMethod(kind=WALLET, buyer_id=...)", rail=RAIL)
        forex = self._forex_fields(request.currency, request.settlement_currency)
        major = codec.to_major(request.amount, request.currency)
        notify_url = request.notify_url or self._notify_url
        title = request.description or request.reference
        if request.capture:
            biz = {"out_trade_no": request.reference, "total_amount": major, "subject": title,
                   "buyer_id": buyer, "product_code": "FACE_TO_FACE_PAYMENT", **forex}
            response = answer_for(self._gateway.call("alipay.trade.pay", biz, notify_url=notify_url),
                                  out_trade_no=request.reference)
            status = TxnStatus.PENDING if response.get("code") == "10003" else TxnStatus.CAPTURED
            trade_no = text(response, "trade_no")
            return result(request.reference, trade_no, status=status,
                          amount=amount(response, "total_amount", request.currency),
                          currency=request.currency, response=response, rrn=trade_no)
        biz = {"out_order_no": request.reference, "out_request_no": request.reference, "order_title": title,
               "amount": major, "payer_user_id": buyer, "product_code": "PRE_AUTH", **forex}
        response = answer_for(self._gateway.call("alipay.fund.auth.order.freeze", biz, notify_url=notify_url),
                              out_order_no=request.reference, out_request_no=request.reference)
        status = TxnStatus.AUTHORIZED if response.get("status") == "SUCCESS" else TxnStatus.PENDING
        return result(request.reference, text(response, "auth_no"), status=status,
                      amount=amount(response, "amount", request.currency), currency=request.currency,
                      response=response)

    def capture(self, request: CaptureRequest) -> RailResult:
        """Pay ``amount`` out of the frozen funds of ``rail_reference`` (an ``auth_no``)
        with ``alipay.trade.pay``; ``out_trade_no`` is our capture reference, so a retry
        answers the original trade. ``final`` sends ``auth_confirm_mode=COMPLETE``
        (Alipay unfreezes the rest), otherwise ``NOT_COMPLETE`` (more captures follow).
        CAPTURED; ``rrn`` (and ``raw["trade_no"]``) is the capture's own trade."""
        biz = {"out_trade_no": request.reference, "auth_no": request.rail_reference,
               "total_amount": codec.to_major(request.amount, request.currency),
               "subject": request.reference, "product_code": "PRE_AUTH",
               "auth_confirm_mode": "COMPLETE" if request.final else "NOT_COMPLETE",
               **self._forex_fields(request.currency, None)}
        response = answer_for(self._gateway.call("alipay.trade.pay", biz), out_trade_no=request.reference)
        return result(request.reference, request.rail_reference, status=TxnStatus.CAPTURED,
                      amount=amount(response, "total_amount", request.currency), currency=request.currency,
                      response=response, rrn=text(response, "trade_no"))

    def void(self, request: VoidRequest) -> RailResult:
        """Unfreeze ``amount`` of a pre-authorization (``alipay.fund.auth.order.unfreeze``,
        ``out_request_no`` = reference). The result's status is that of the order
        afterwards: VOIDED when nothing remains frozen and nothing was captured,
        CAPTURED when something was, AUTHORIZED while funds remain frozen. When
        ``rail_reference`` is not an ``auth_no`` it is taken as a sale still waiting
        for the buyer and closed (``alipay.trade.close``): VOIDED."""
        self._forex_fields(request.currency, None)
        biz = {"auth_no": request.rail_reference, "out_request_no": request.reference,
               "amount": codec.to_major(request.amount, request.currency), "remark": "void"}
        try:
            response = answer_for(self._gateway.call("alipay.fund.auth.order.unfreeze", biz),
                                  auth_no=request.rail_reference, out_request_no=request.reference)
        except Declined as exc:
            if exc.rail_code != AUTH_NOT_EXIST:
                raise
            closed = self._gateway.call("alipay.trade.close", {"trade_no": request.rail_reference})
            return result(request.reference, request.rail_reference, status=TxnStatus.VOIDED,
                          amount=request.amount, currency=request.currency, response=closed)
        detail = self._gateway.call("alipay.fund.auth.operation.detail.query",
                                    {"auth_no": request.rail_reference, "out_request_no": request.reference},
                                    moves_money=False)
        return result(request.reference, request.rail_reference,
                      status=order_status(detail, request.currency),
                      amount=amount(response, "amount", request.currency), currency=request.currency,
                      response={**detail, **response})

    def refund(self, request: RefundRequest) -> RailResult:
        """Refund ``amount`` of a sale or of the captures of a pre-authorization
        (``alipay.trade.refund``, ``out_request_no`` = reference, so a retry moves no
        money twice). Partial and repeated refunds are allowed up to what was paid.
        REFUNDED."""
        self._forex_fields(request.currency, None)
        biz: dict[str, Any] = {"trade_no": request.rail_reference, "out_request_no": request.reference,
                               "refund_amount": codec.to_major(request.amount, request.currency)}
        if request.reason:
            biz["refund_reason"] = request.reason
        if request.currency != HOME_CURRENCY:
            biz["refund_currency"] = request.currency
        response = answer_for(self._gateway.call("alipay.trade.refund", biz), trade_no=request.rail_reference)
        return result(request.reference, request.rail_reference, status=TxnStatus.REFUNDED,
                      amount=request.amount, currency=request.currency, response=response)

    def payout(self, request: PayoutRequest) -> RailResult:
        """Transfer CNY to the Alipay user id ``destination``
        (``alipay.fund.trans.uni.transfer``, ``out_biz_no`` = reference). CAPTURED when
        Alipay reports SUCCESS, PENDING while DEALING. Other currencies: Unsupported."""
        if request.currency != HOME_CURRENCY:
            raise Unsupported(f"Alipay transfers pay CNY, not {request.currency}", rail=RAIL)
        payee: dict[str, str] = {"identity": request.destination, "identity_type": "ALIPAY_USER_ID"}
        if request.beneficiary_name:
            payee["name"] = request.beneficiary_name
        biz = {"out_biz_no": request.reference, "trans_amount": codec.to_major(request.amount, request.currency),
               "product_code": "TRANS_ACCOUNT_NO_PWD", "biz_scene": "DIRECT_TRANSFER",
               "order_title": request.reference, "payee_info": payee}
        response = answer_for(self._gateway.call("alipay.fund.trans.uni.transfer", biz),
                              out_biz_no=request.reference)
        status = {"SUCCESS": TxnStatus.CAPTURED, "DEALING": TxnStatus.PENDING}.get(
            str(response.get("status")), TxnStatus.FAILED)
        return result(request.reference, text(response, "order_id"), status=status, amount=request.amount,
                      currency=request.currency, response=response)

    # -- reading ------------------------------------------------------------------

    def query(self, request: QueryRequest) -> RailResult:
        """Alipay's truth about one operation; NOT_FOUND when it never saw it.
        ``operation`` "authorize" looks for a pre-authorization order, then a trade;
        "capture" a trade; "refund" a refund of ``rail_reference`` (required); "void" an
        unfreeze of ``rail_reference``; "payout" a transfer."""
        op = request.operation
        try:
            if op == "authorize":
                found = (query_auth(self._gateway, request.reference, None)
                         or query_trade(self._gateway, request.reference))
            elif op in ("capture", "sale"):
                found = query_trade(self._gateway, request.reference)
            elif op == "refund":
                found = query_refund(self._gateway, request)
            elif op == "void":
                found = query_auth(self._gateway, request.reference, request.rail_reference)
            elif op == "payout":
                found = query_payout(self._gateway, request.reference)
            else:
                raise Unsupported(f"cannot query an operation called {op!r}", rail=RAIL)
        except Declined as exc:
            # A query is never refused for business reasons; this is a request the
            # gateway could not serve as asked.
            raise GatewayRejected(exc.message, rail=RAIL, detail=exc.detail) from exc
        return found or RailResult(rail=RAIL, reference=request.reference,
                                   rail_reference=request.rail_reference or "", status=TxnStatus.NOT_FOUND,
                                   amount=0, currency="")

    def forex_rate_file(self) -> list[ForexRate]:
        """Today's reference rates from Alipay's ``forex_rate_file``: one entry per
        currency, each with its publication time."""
        return fetch_rate_file(self._gateway, self._partner_id)

    def forex_rates(self) -> dict[str, Decimal]:
        """``{"RUB/CNY": Decimal("0.0785"), ...}``: CNY per unit of each currency, from
        :meth:`forex_rate_file`. Reference rates, not a quote: a trade's own rate is the
        ``trans_pay_rate`` Alipay answers for it."""
        return {f"{rate.currency}/{HOME_CURRENCY}": rate.rate for rate in self.forex_rate_file()}

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """See :class:`~adapters.alipay.notifications.NotificationVerifier`."""
        return self._verifier.parse(headers, body)

    def notification_ack(self, notification: Notification | None) -> NotificationAck:
        """The literal ``success`` for an accepted notification, ``fail`` otherwise."""
        return self._verifier.ack(notification)

    def parse_settlement_file(self, stream: BinaryIO) -> Iterator[SettlementRecord | RecordError]:
        """See :func:`~adapters.alipay.files.parse_settlement`."""
        return parse_settlement(stream, rail=RAIL)

    def _forex_fields(self, currency: str, settlement_currency: str | None) -> dict[str, str]:
        if currency not in CURRENCIES:
            raise Unsupported(f"Alipay does not price in {currency}", rail=RAIL)
        if settlement_currency not in (None, currency):
            raise Unsupported(f"trades in {currency} settle in {currency}, not {settlement_currency}", rail=RAIL)
        if currency == HOME_CURRENCY:
            return {}
        return {"trans_currency": currency, "settle_currency": currency}


def _number(config: Mapping[str, str], key: str, default: int) -> int:
    text = config.get(key) or str(default)
    if not text.isdigit():
        raise Malformed(f"config {key} must be a whole number, not {text!r}", rail=RAIL)
    return int(text)
