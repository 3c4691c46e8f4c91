"""A stand-in for Alipay's open-platform gateway on a loopback port.

It answers ``POST`` (form) and ``GET`` (query string) requests on ``/gateway.do`` as
Alipay does: it checks ``app_id``, the request's RSA2 signature against the
merchant's public key and the ``timestamp`` (Beijing time, 15 minutes either way),
runs the method (:mod:`.sim_trades`, :mod:`.sim_funds`), and answers
``{"<method>_response": {...}, "sign": "..."}`` signed with its own key. Keys (its own
and the merchant's pair it hands to the adapter) are generated at :meth:`start`
unless given as options, and leave memory only through :meth:`adapter_config`. ``service=forex_rate_file``
serves the rate file (see :mod:`.forex`). Notifications go out through
:class:`~.sim_delivery.Deliverer`; settlement files through :mod:`.files`.

Options (all strings, as ``create_simulator(**options)`` passes them):

* ``signing``: ``valid`` (default) or ``wrong-key`` (answers and notifications signed
  with a key the adapter does not trust);
* ``response_fault``: ``truncate`` (bodies cut in half), ``oversize`` (bodies padded
  past 2 MiB), ``tamper`` (one character of the signed text changed after signing);
* ``notify_time_scale``: factor applied to Alipay's retry schedule (default
  ``0.001``: the 4-minute first retry after 0.24 s); ``notify_max_attempts`` (8);
* ``rates``: ``RUB=0.0785,USD=7.1234,...`` CNY per unit (defaults in
  :data:`~.sim_model.DEFAULT_RATES`);
* ``app_id``, ``partner_id``, ``port`` (0 = a free port);
* ``alipay_private_key``, ``app_private_key``: PEM keys to use instead of generating
  them at start (the gateway's own, and the merchant app's pair it hands out).

Test buyers, payees and amounts: see :mod:`.sim_model`.

The settlement file can carry every kind of discrepancy: MISSING, DUPLICATE, LATE,
FEE_DIFFERS, AMOUNT_DIFFERS, REFUND and CHARGEBACK (by ``Type``), UNKNOWN, and
FX_RATE_DIFFERS, since each forex record carries its ``Rate`` and ``Rmb_settlement``.
A CNY trade has no rate, so FX_RATE_DIFFERS naming one is not applied (and not in the
list :meth:`AlipaySimulator.write_settlement_file` returns). Seeded runs pick from
:data:`~adapters.simulation.RANDOM_KINDS`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa

from adapters.base import Discrepancy, MethodKind, PaymentMethod, TxnStatus
from adapters.simulation import LoopbackHTTPServer, apply_discrepancies, plan_random

from . import sim_funds, sim_trades
from .codec import HOME_CURRENCY, RAIL, beijing_now, parse_time
from .files import write_settlement
from .forex import format_rate_file
from .signing import (
    generate_key,
    load_private_key,
    notification_content,
    private_pem,
    public_pem,
    response_key,
    sign,
    verify,
    verify_params,
)
from .sim_delivery import Attempt, Deliverer, envelope
from .sim_model import (
    APPROVING_BUYER,
    DECLINE_BY_BUYER,
    DECLINING_BUYER,
    DEFAULT_RATES,
    ProcessedButUnknown,
    Refusal,
    Response,
    SimState,
)

MAX_REQUEST_BYTES = 1 << 20
TIMESTAMP_WINDOW = dt.timedelta(minutes=15)

Operation = Callable[[SimState, dict[str, Any], str | None], Response]
OPERATIONS: dict[str, Operation] = {
    "alipay.trade.pay": sim_trades.pay,
    "alipay.trade.query": sim_trades.query,
    "alipay.trade.refund": sim_trades.refund,
    "alipay.trade.fastpay.refund.query": sim_trades.refund_query,
    "alipay.trade.close": sim_trades.close,
    "alipay.fund.auth.order.freeze": sim_funds.freeze,
    "alipay.fund.auth.order.unfreeze": sim_funds.unfreeze,
    "alipay.fund.auth.operation.detail.query": sim_funds.detail_query,
    "alipay.fund.trans.uni.transfer": sim_funds.transfer,
    "alipay.fund.trans.common.query": sim_funds.transfer_query,
}
_FAULTS = ("", "truncate", "oversize", "tamper")


def _invalid(sub_code: str, sub_msg: str) -> Refusal:
    return Refusal(sub_code, sub_msg, code="40002", msg="Invalid Arguments")


class AlipaySimulator:
    """The simulated gateway. Thread-safe; one instance per test or demo."""

    name = RAIL

    def __init__(self, *, signing: str = "valid", response_fault: str = "", notify_time_scale: str = "0.001",
                 notify_max_attempts: str = "8", rates: str = "", app_id: str = "2021000000000001",
                 partner_id: str = "2088000000000001", port: str = "0", alipay_private_key: str = "",
                 app_private_key: str = "") -> None:
        if signing not in ("valid", "wrong-key") or response_fault not in _FAULTS:
            raise ValueError(f"unknown simulator option signing={signing!r} response_fault={response_fault!r}")
        self._signing = signing
        self._fault = response_fault
        self._app_id = app_id
        self._partner_id = partner_id
        self._clock: Callable[[], dt.datetime] = beijing_now
        self._rates = _parse_rates(rates) if rates else dict(DEFAULT_RATES)
        try:
            self._time_scale = float(Decimal(notify_time_scale))  # float-ok: a time factor, never money
        except InvalidOperation as exc:
            raise ValueError(f"notify_time_scale {notify_time_scale!r} is not a number") from exc
        self._max_attempts = int(notify_max_attempts)
        self._server = LoopbackHTTPServer(_handler_for(self), int(port))
        self._state = SimState(rates=self._rates, clock=self._clock)
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._given_keys = {"alipay": alipay_private_key, "app": app_private_key}
        self._deliverer: Deliverer | None = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        if not self._keys:
            self._keys = {name: load_private_key(pem) if pem else generate_key()
                          for name, pem in self._given_keys.items()}
            if self._signing == "wrong-key":
                self._keys["untrusted"] = generate_key()
        if self._deliverer is None:
            self._deliverer = Deliverer(sign=self._sign_notification, app_id=self._app_id, clock=self._clock,
                                        time_scale=self._time_scale, max_deliveries=self._max_attempts)
        self._deliverer.start()
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
        if self._deliverer is not None:
            self._deliverer.stop()

    @property
    def url(self) -> str:
        return self._server.url

    def adapter_config(self) -> dict[str, str]:
        """Gateway URL, app id, partner id, the app's private key and Alipay's public key
        (PEM): everything :meth:`AlipayRail.from_config` needs."""
        if not self._keys:
            raise RuntimeError("start the simulator first: its keys are made at start")
        return {"gateway_url": f"{self.url}/gateway.do", "app_id": self._app_id, "partner_id": self._partner_id,
                "app_private_key": private_pem(self._keys["app"]),
                "alipay_public_key": public_pem(self._keys["alipay"].public_key())}

    # -- the SPI's test hooks -----------------------------------------------------

    def approving_method(self) -> PaymentMethod:
        return PaymentMethod(kind=MethodKind.WALLET, buyer_id=APPROVING_BUYER)

    def declining_method(self) -> tuple[PaymentMethod, str]:
        return PaymentMethod(kind=MethodKind.WALLET, buyer_id=DECLINING_BUYER), DECLINE_BY_BUYER[DECLINING_BUYER][0]

    def transaction_status(self, reference: str) -> TxnStatus:
        """By our reference: a sale or capture (``out_trade_no``), a pre-authorization
        (``out_order_no``), a refund or unfreeze (``out_request_no``), a transfer."""
        state = self._state
        with state.lock:
            if reference in state.declined:
                return TxnStatus.DECLINED
            if reference in state.order_by_out:
                order = state.orders[state.order_by_out[reference]]
                refunded = any(state.trades[t].refunds for t in order.trades)
                return _status(refunded=refunded, paid=bool(order.paid), open_=order.status == "AUTHORIZED",
                               waiting=False)
            if reference in state.trade_by_out:
                trade = state.trades[state.trade_by_out[reference]]
                return _status(refunded=bool(trade.refunds), paid=trade.paid_at is not None, open_=False,
                               waiting=trade.status == "WAIT_BUYER_PAY")
            if any(reference in t.refunds for t in state.trades.values()):
                return TxnStatus.REFUNDED
            if any(reference in o.operations for o in state.orders.values()):
                return TxnStatus.VOIDED
            return TxnStatus.CAPTURED if reference in state.transfers else TxnStatus.NOT_FOUND

    def notification_for(self, reference: str) -> tuple[Mapping[str, str], bytes]:
        """The notification of the event the operation ``reference`` caused (see
        :func:`.sim_trades.notice_for`), signed as this gateway signs, with a fresh
        ``notify_time`` and a ``notify_id`` derived from the event, so that asking again
        gives what a retry carries: the same ``notify_id``. ``KeyError`` for a reference
        no notification is about (unknown or declined)."""
        if not self._keys:
            raise RuntimeError("start the simulator first: its keys are made at start")
        with self._state.lock:
            params = sim_trades.notice_for(self._state, reference)
        event = json.dumps([self._app_id, sorted(params.items())], ensure_ascii=False).encode("utf-8")
        notify_id = hashlib.sha256(event).hexdigest()[:32]
        signed = self._sign_notification(envelope(params, notify_id=notify_id, app_id=self._app_id,
                                                  sent_at=self._clock()))
        return ({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                urlencode(signed).encode("ascii"))

    def write_settlement_file(self, out: BinaryIO, settlement_date: dt.date,
                              discrepancies: Sequence[Discrepancy] = (), seed: int | None = None,
                              rate: Decimal = Decimal(0)) -> list[Discrepancy]:
        """Everything settled since the last file (plus records held back as LATE),
        dated ``settlement_date``, with the discrepancies applied."""
        pending, held = self._state.book.take()
        pending = [dataclasses.replace(r, settlement_date=settlement_date) for r in pending]
        records = pending + [dataclasses.replace(r, settlement_date=settlement_date) for r in held]
        planned = list(discrepancies)
        if seed is not None:
            planned += plan_random(pending, seed, rate)
        written, late, applied = apply_discrepancies(records, planned, rail=RAIL, settlement_date=settlement_date,
                                                     currency=HOME_CURRENCY)
        self._state.book.hold_back(late)
        write_settlement(out, written)
        return applied

    # -- extra hooks for tests and the demo ---------------------------------------

    def confirm_payment(self, out_trade_no: str) -> None:
        """The waiting buyer pays: WAIT_BUYER_PAY -> TRADE_SUCCESS, with notification."""
        with self._state.lock:
            trade = sim_trades.find_trade(self._state, {"out_trade_no": out_trade_no})
            if trade.status != "WAIT_BUYER_PAY":
                raise ValueError(f"trade {out_trade_no} is {trade.status}")
            sim_trades.mark_paid(self._state, trade)
        self._flush()

    def finish_trade(self, out_trade_no: str) -> None:
        """The refund window ends: TRADE_SUCCESS -> TRADE_FINISHED, with notification."""
        with self._state.lock:
            trade = sim_trades.find_trade(self._state, {"out_trade_no": out_trade_no})
            trade.status = "TRADE_FINISHED"
            self._state.notify(trade.notify_url, sim_trades.trade_notice(trade, "TRADE_FINISHED"))
        self._flush()

    def notification_attempts(self, notify_id: str | None = None) -> list[Attempt]:
        return self._deliverer.attempts(notify_id) if self._deliverer else []

    @property
    def rates(self) -> dict[str, Decimal]:
        return dict(self._rates)

    # -- the gateway --------------------------------------------------------------

    def answer(self, params: dict[str, str]) -> tuple[str, bytes]:
        """(content type, body) for one gateway request."""
        if params.get("service") == "forex_rate_file":
            return "text/plain; charset=utf-8", self._rate_file(params).encode("utf-8")
        method = params.get("method", "")
        key = response_key(method) if method in OPERATIONS else "error_response"
        try:
            self._check_request(params)
            biz = json.loads(params.get("biz_content") or "{}", parse_float=Decimal)
            if not isinstance(biz, dict):
                raise _invalid("isv.invalid-parameter", "biz_content must be a JSON object")
            with self._state.lock:
                response = OPERATIONS[method](self._state, biz, params.get("notify_url") or None)
        except json.JSONDecodeError:
            response = _invalid("isv.invalid-parameter", "biz_content is not JSON").response
        except Refusal as refusal:
            response = refusal.response
        except ProcessedButUnknown:
            response = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "ACQ.SYSTEM_ERROR",
                        "sub_msg": "system error"}
        finally:
            self._flush()
        return "application/json; charset=utf-8", self._signed_body(key, response)

    def _check_request(self, params: dict[str, str]) -> None:
        if not params.get("method"):
            raise Refusal("isv.missing-method", "method is required", code="40001",
                          msg="Missing Required Arguments")
        if params["method"] not in OPERATIONS:
            raise _invalid("isv.invalid-method", f"unknown method {params['method']!r}")
        if params.get("app_id") != self._app_id:
            raise _invalid("isv.invalid-app-id", "unknown app_id")
        if params.get("sign_type") != "RSA2":
            raise _invalid("isv.invalid-signature-type", "sign_type must be RSA2")
        if not verify_params(params, self._keys["app"].public_key(), notification=False):
            raise _invalid("isv.invalid-signature", "the request signature does not verify")
        try:
            sent = parse_time(params.get("timestamp", ""))
        except ValueError:
            raise _invalid("isv.invalid-timestamp", "timestamp must be yyyy-MM-dd HH:mm:ss") from None
        if abs(self._clock() - sent) > TIMESTAMP_WINDOW:
            raise _invalid("isv.invalid-timestamp", "timestamp is too far from Beijing time")
        if params.get("version", "1.0") != "1.0" or params.get("charset", "utf-8").lower() != "utf-8":
            raise _invalid("isv.invalid-parameter", "version must be 1.0 and charset utf-8")

    def _signing_key(self) -> rsa.RSAPrivateKey:
        return self._keys["untrusted" if self._signing == "wrong-key" else "alipay"]

    def _signed_body(self, key: str, response: Response) -> bytes:
        raw = json.dumps(response, ensure_ascii=False, separators=(",", ":"), default=str)
        signature = sign(raw, self._signing_key())
        if self._fault == "tamper":
            raw = raw.replace('"code":"', '"code":"9', 1)
        body = f'{{"{key}":{raw},"sign":"{signature}"}}'
        if self._fault == "oversize":
            body = body[:-1] + ',"padding":"' + " " * (2 << 20) + '"}'
        data = body.encode("utf-8")
        return data[:len(data) // 2] if self._fault == "truncate" else data

    def _sign_notification(self, params: dict[str, str]) -> dict[str, str]:
        signed = {k: v for k, v in params.items() if v != ""}
        signed["sign_type"] = "RSA2"
        signed["sign"] = sign(notification_content(signed), self._signing_key())
        return signed

    def _flush(self) -> None:
        if self._deliverer is None:
            return
        for outgoing in self._state.take_outbox():
            self._deliverer.submit(outgoing.url, outgoing.params)

    def _rate_file(self, params: dict[str, str]) -> str:
        if params.get("partner") != self._partner_id:
            return "File download failed: ILLEGAL_PARTNER"
        if not verify(notification_content(params), params.get("sign", ""), self._keys["app"].public_key()):
            return "File download failed: ILLEGAL_SIGN"
        now = self._clock()
        published = now.replace(hour=10, minute=0, second=30, microsecond=0)
        if published > now:
            published -= dt.timedelta(days=1)
        return format_rate_file(self._rates, published)


def _status(*, refunded: bool, paid: bool, open_: bool, waiting: bool) -> TxnStatus:
    if refunded:
        return TxnStatus.REFUNDED
    if paid:
        return TxnStatus.CAPTURED
    if waiting:
        return TxnStatus.PENDING
    return TxnStatus.AUTHORIZED if open_ else TxnStatus.VOIDED


def _parse_rates(text: str) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for item in text.split(","):
        currency, _, value = item.strip().partition("=")
        try:
            rates[currency.strip().upper()] = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"rate {item!r} is not CURRENCY=decimal") from exc
    return rates


def _handler_for(simulator: AlipaySimulator) -> type[BaseHTTPRequestHandler]:
    class GatewayHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            try:
                super().handle()
            except ConnectionResetError:
                # Clients drop kept-alive connections between requests; that is not an error.
                self.close_connection = True

        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "0")
            if not length.isdigit() or int(length) > MAX_REQUEST_BYTES:
                self._send(413, "text/plain", b"request too large")
                return
            self._serve(self.rfile.read(int(length)))

        def _serve(self, body: bytes) -> None:
            url = urlsplit(self.path)
            if url.path != "/gateway.do":
                self._send(404, "text/plain", b"not found")
                return
            try:
                pairs = parse_qsl(url.query, keep_blank_values=True) + parse_qsl(
                    body.decode("utf-8"), keep_blank_values=True, errors="strict")
            except (UnicodeDecodeError, ValueError):
                self._send(400, "text/plain", b"bad form")
                return
            content_type, answer = simulator.answer(dict(pairs))
            self._send(200, content_type, answer)

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                # A client that refuses an oversized answer hangs up mid-body.
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return

    return GatewayHandler
