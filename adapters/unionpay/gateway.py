"""The simulated gateway's books: what each backTransReq and queryTrans message does.

The gateway keeps one :class:`Payment` per original transaction (purchase,
pre-authorization, payout) and one :class:`Operation` per ``orderId``. Rules:

* An ``orderId`` seen before with the same elements (txnType, amount, origQryId...)
  is a retry: the stored answer comes back and nothing moves again. With different
  elements it answers 12 (重复交易).
* 02 holds the amount; 03 completes at most what is held. UnionPay allows one
  completion, which closes the hold; we allow several while ``reserved`` carries
  ``moreCompletions=Y`` (our extension), and a completion without it releases the rest.
* 32 releases the uncompleted rest and must name exactly that amount (36 otherwise).
* 31 cancels a purchase in full, the same Beijing day, before any refund.
* 04 refunds at most what was captured and not yet refunded (33 otherwise).
* Follow-ups naming an unknown or closed original answer 35.
* Money movements go to the :class:`~adapters.simulation.SettlementBook` at once.
* Every approved message, and every pending one when it resolves, is notified to its
  ``backUrl``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
import threading
from collections.abc import Callable, Mapping

from adapters.base import RecordType, SettlementRecord, TxnStatus, luhn_valid, mask_pan
from adapters.simulation import SettlementBook
from adapters.unionpay.constants import (
    BEIJING,
    CALENDAR,
    CURRENCY,
    CURRENCY_CODE,
    FEES,
    RAIL,
    RespCode,
    TestCards,
    TxnType,
)
from adapters.unionpay.messages import STATUS_AFTER, format_txn_time, message_for, trace_time

_ORDER_ID = re.compile(r"[A-Za-z0-9]{8,40}")
_ECHO = ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType",
         "merId", "orderId", "txnTime", "txnAmt", "currencyCode", "origQryId")
_MONEY = ("txnAmt", "currencyCode")
_REQUIRED: dict[str, tuple[str, ...]] = {
    TxnType.PURCHASE: _MONEY, TxnType.PREAUTH: _MONEY, TxnType.PAYOUT: _MONEY,
    TxnType.PREAUTH_COMPLETE: (*_MONEY, "origQryId"), TxnType.REFUND: (*_MONEY, "origQryId"),
    TxnType.PURCHASE_CANCEL: (*_MONEY, "origQryId"), TxnType.PREAUTH_CANCEL: (*_MONEY, "origQryId"),
}

Schedule = Callable[[float, Callable[[], None]], None]
Notify = Callable[[str, dict[str, str]], None]


@dataclasses.dataclass
class Payment:
    query_id: str
    order_id: str
    txn_type: str
    amount: int
    day: dt.date
    details: dict[str, str]
    status: TxnStatus = TxnStatus.PENDING
    held: int = 0
    captured: int = 0
    refunded: int = 0


@dataclasses.dataclass
class Operation:
    order_id: str
    txn_type: str
    fingerprint: tuple[str, ...]
    answer: dict[str, str]
    resp_code: str
    back_url: str
    payment: Payment | None = None


@dataclasses.dataclass(frozen=True)
class Card:
    """What the gateway decrypted from ``accNo`` and ``customerInfo``."""

    pan: str = ""
    expiry: str = ""
    holder: str = ""


class Gateway:
    """Thread-safe: one lock guards every book."""

    def __init__(self, *, mer_id: str, book: SettlementBook, schedule: Schedule, notify: Notify,
                 pending_delay: float) -> None:  # float-ok: seconds
        self._mer_id = mer_id
        self._book = book
        self._schedule = schedule
        self._notify = notify
        self._pending_delay = pending_delay
        self._lock = threading.Lock()
        self._ops: dict[str, Operation] = {}
        self._by_query: dict[str, Operation] = {}
        self._sequence = itertools.count(1)
        self._details: dict[str, dict[str, str]] = {}

    # -- what tests and the simulator read ------------------------------------------

    def status(self, order_id: str) -> TxnStatus:
        """An original's current state; a follow-up's own outcome; NOT_FOUND if unknown."""
        with self._lock:
            op = self._ops.get(order_id)
            if op is None:
                return TxnStatus.NOT_FOUND
            if op.resp_code not in (RespCode.SUCCESS, RespCode.ACCEPTED):
                return TxnStatus.DECLINED
            if op.payment is not None and op.payment.order_id == order_id:
                return op.payment.status
            return STATUS_AFTER[op.txn_type]

    def answer(self, order_id: str) -> dict[str, str]:
        """The answer the gateway gave (and notified) for ``order_id``; after a pending
        respCode 05 resolves, the resolved one. ``KeyError`` for an unknown order."""
        with self._lock:
            return dict(self._ops[order_id].answer)

    def new_trace(self, day: dt.date) -> str:
        """``traceNo`` + ``traceTime`` (16 digits) for a message the gateway originates
        itself (a chargeback, an unrequested refund) on ``day``."""
        with self._lock:
            sequence = next(self._sequence)
        now = dt.datetime.now(BEIJING)
        return f"{sequence % 1_000_000:06d}{day:%m%d}{now:%H%M%S}"

    def details(self, rrn: str) -> dict[str, str]:
        """ZM fields the settlement record of message ``rrn`` lacks (sub-merchant, card)."""
        with self._lock:
            return dict(self._details.get(rrn, {}))

    # -- messages -------------------------------------------------------------------

    def back(self, form: Mapping[str, str], card: Card) -> dict[str, str]:
        """Answer one backTransReq message (already signature-checked)."""
        answer = {k: form[k] for k in _ECHO if form.get(k)}
        txn_type = form.get("txnType", "")
        missing = [k for k in ("orderId", "txnTime", "txnType", *_REQUIRED.get(txn_type, ()))
                   if not form.get(k)]
        if missing:
            return _with_code(answer, RespCode.MISSING)
        if (txn_type not in _REQUIRED or not _ORDER_ID.fullmatch(form["orderId"])
                or not (form["txnTime"].isdigit() and len(form["txnTime"]) == 14)
                or not form["txnAmt"].isdigit() or int(form["txnAmt"]) <= 0
                or form["currencyCode"] != CURRENCY_CODE or form.get("merId") != self._mer_id):
            return _with_code(answer, RespCode.FORMAT)
        fingerprint = (txn_type, form["txnAmt"], form.get("origQryId", ""), form.get("bizType", ""))
        with self._lock:
            seen = self._ops.get(form["orderId"])
            if seen is not None:
                return dict(seen.answer) if seen.fingerprint == fingerprint else _with_code(
                    answer, RespCode.DUPLICATE)
            op = Operation(form["orderId"], txn_type, fingerprint, answer, "", form.get("backUrl", ""))
            if txn_type in (TxnType.PURCHASE, TxnType.PREAUTH, TxnType.PAYOUT):
                return self._originate(op, form, card)
            return self._follow_up(op, form)

    def query(self, form: Mapping[str, str]) -> dict[str, str]:
        """Answer queryTrans by ``queryId`` or ``orderId`` (the real gateway also wants the
        original ``txnTime``; we look up by id alone)."""
        answer = {k: form[k] for k in ("version", "encoding", "signMethod", "txnType", "txnSubType",
                                        "bizType", "accessType", "merId", "orderId", "txnTime")
                  if form.get(k)}
        with self._lock:
            if form.get("queryId"):
                op = self._by_query.get(form["queryId"])
            elif form.get("orderId"):
                op = self._ops.get(form["orderId"])
            else:
                return _with_code(answer, RespCode.MISSING)
            if op is None:
                return _with_code(answer, RespCode.NOT_FOUND)
            found = {k: v for k, v in op.answer.items() if k not in ("respCode", "respMsg")}
            found.update(origRespCode=op.resp_code, origRespMsg=message_for(op.resp_code))
        answer.update(found)
        answer["txnTime"] = form.get("txnTime", found.get("txnTime", ""))
        return _with_code(answer, RespCode.SUCCESS)

    # -- originals ------------------------------------------------------------------

    def _originate(self, op: Operation, form: Mapping[str, str], card: Card) -> dict[str, str]:
        amount = int(form["txnAmt"])
        code = _decide(card, amount)
        if code == RespCode.BUSY:
            return _with_code(dict(op.answer), code)      # nothing happened, nothing kept
        self._remember(op)
        if code not in (RespCode.SUCCESS, RespCode.TIMEOUT, RespCode.ACCEPTED):
            op.resp_code = code
            op.answer = _with_code(op.answer, code)
            return dict(op.answer)
        details = {"accNo": mask_pan(card.pan), "subMerId": form.get("subMerId", ""),
                   "subMerAbbr": form.get("subMerAbbr", "")}
        payment = Payment(op.answer["queryId"], op.order_id, op.txn_type, amount, _today(), details)
        op.payment = payment
        self._by_query[payment.query_id] = op
        if code == RespCode.ACCEPTED:
            op.resp_code = RespCode.ACCEPTED
            first = _with_code(dict(op.answer), RespCode.ACCEPTED)
            op.answer = first
            self._schedule(self._pending_delay, lambda: self._resolve(op))
            return dict(first)
        self._approve(op)
        if code == RespCode.TIMEOUT:   # approved, but the merchant is told the line timed out
            return _with_code({k: v for k, v in op.answer.items() if k not in ("queryId", "traceNo",
                                                                              "traceTime")}, code)
        return dict(op.answer)

    def _resolve(self, op: Operation) -> None:
        with self._lock:
            self._approve(op)

    def _approve(self, op: Operation) -> None:
        payment = op.payment
        assert payment is not None
        op.resp_code = RespCode.SUCCESS
        op.answer = _with_code(op.answer, RespCode.SUCCESS)
        if op.txn_type == TxnType.PREAUTH:
            payment.held, payment.status = payment.amount, TxnStatus.AUTHORIZED
        elif op.txn_type == TxnType.PURCHASE:
            payment.captured, payment.status = payment.amount, TxnStatus.CAPTURED
            self._record(RecordType.PAYMENT, op, payment, payment.amount, FEES.fee_for(payment.amount))
        else:
            payment.status = TxnStatus.CAPTURED
            self._record(RecordType.PAYOUT, op, payment, -payment.amount, 0)
        self._announce(op)

    # -- follow-ups -----------------------------------------------------------------

    def _follow_up(self, op: Operation, form: Mapping[str, str]) -> dict[str, str]:
        original = self._by_query.get(form["origQryId"])
        payment = original.payment if original else None
        amount = int(form["txnAmt"])
        code = RespCode.BAD_STATE if payment is None else self._check(op.txn_type, payment, amount)
        self._remember(op)
        if code != RespCode.SUCCESS or payment is None:
            op.resp_code = code
            op.answer = _with_code(op.answer, code)
            return dict(op.answer)
        op.payment, op.resp_code = payment, RespCode.SUCCESS
        op.answer = _with_code(op.answer, RespCode.SUCCESS)
        self._by_query[op.answer["queryId"]] = op
        if op.txn_type == TxnType.PREAUTH_COMPLETE:
            payment.held -= amount
            payment.captured += amount
            if "moreCompletions=Y" not in form.get("reserved", ""):
                payment.held = 0      # UnionPay's rule: the completion closes the hold
            if payment.status is TxnStatus.AUTHORIZED:
                payment.status = TxnStatus.CAPTURED
            self._record(RecordType.PAYMENT, op, payment, amount, FEES.fee_for(amount))
        elif op.txn_type == TxnType.REFUND:
            payment.refunded += amount
            payment.status = TxnStatus.REFUNDED
            self._record(RecordType.REFUND, op, payment, -amount, FEES.fee_for(-amount, RecordType.REFUND))
        elif op.txn_type == TxnType.PURCHASE_CANCEL:
            payment.captured, payment.status = 0, TxnStatus.VOIDED
            # A same-day cancel nets the purchase to nothing, its fee included.
            self._record(RecordType.REFUND, op, payment, -amount, -FEES.fee_for(amount))
        else:
            payment.held = 0
            if payment.captured == 0:
                payment.status = TxnStatus.VOIDED
        self._announce(op)
        return dict(op.answer)

    @staticmethod
    def _check(txn_type: str, payment: Payment, amount: int) -> str:
        """The respCode the rules give a follow-up of ``txn_type`` on ``payment``."""
        return _CHECKS[txn_type](payment, amount)

    # -- plumbing -------------------------------------------------------------------

    def _remember(self, op: Operation) -> None:
        """Give ``op`` its gateway identifiers and keep it under its orderId."""
        now = dt.datetime.now(BEIJING)
        sequence = next(self._sequence)
        op.answer.update(queryId=f"{format_txn_time(now)}{sequence % 10_000_000:07d}",
                         traceNo=f"{sequence % 1_000_000:06d}", traceTime=trace_time(now),
                         settleAmt=op.answer["txnAmt"], settleCurrencyCode=CURRENCY_CODE,
                         settleDate=now.strftime("%m%d"))
        self._ops[op.order_id] = op

    def _record(self, kind: RecordType, op: Operation, payment: Payment, gross: int, fee: int) -> None:
        day = _today()
        rrn = op.answer["traceNo"] + op.answer["traceTime"]
        self._details[rrn] = payment.details
        self._book.add(SettlementRecord(
            rail=RAIL, line_number=0, record_type=kind, rail_reference=payment.query_id,
            reference=payment.order_id, gross=gross, fee=fee, net=gross - fee, currency=CURRENCY,
            transaction_date=day, settlement_date=CALENDAR.expected_settlement_date(day), rrn=rrn))

    def _announce(self, op: Operation) -> None:
        if op.back_url:
            self._notify(op.back_url, dict(op.answer))


def _check_completion(payment: Payment, amount: int) -> str:
    if payment.txn_type != TxnType.PREAUTH or payment.held <= 0:
        return RespCode.BAD_STATE
    return RespCode.AMOUNT_LIMIT if amount > payment.held else RespCode.SUCCESS


def _check_preauth_cancel(payment: Payment, amount: int) -> str:
    if payment.txn_type != TxnType.PREAUTH or payment.held <= 0:
        return RespCode.BAD_STATE
    return RespCode.MISMATCH if amount != payment.held else RespCode.SUCCESS


def _check_purchase_cancel(payment: Payment, amount: int) -> str:
    if (payment.txn_type != TxnType.PURCHASE or payment.status is not TxnStatus.CAPTURED
            or payment.refunded or payment.day != _today()):
        return RespCode.BAD_STATE
    return RespCode.MISMATCH if amount != payment.amount else RespCode.SUCCESS


def _check_refund(payment: Payment, amount: int) -> str:
    if payment.txn_type == TxnType.PAYOUT or payment.captured == 0 or payment.status is TxnStatus.VOIDED:
        return RespCode.BAD_STATE
    return RespCode.AMOUNT_LIMIT if amount > payment.captured - payment.refunded else RespCode.SUCCESS


_CHECKS: dict[str, Callable[[Payment, int], str]] = {
    TxnType.PREAUTH_COMPLETE: _check_completion,
    TxnType.PREAUTH_CANCEL: _check_preauth_cancel,
    TxnType.PURCHASE_CANCEL: _check_purchase_cancel,
    TxnType.REFUND: _check_refund,
}


def _with_code(answer: dict[str, str], code: str) -> dict[str, str]:
    answer["respCode"] = code
    answer["respMsg"] = message_for(code)
    return answer


def _today() -> dt.date:
    return dt.datetime.now(BEIJING).date()


def _decide(card: Card, amount: int) -> str:
    """The documented test behaviour (see :class:`TestCards`)."""
    if not (card.pan.startswith("62") and luhn_valid(card.pan)):
        return "61"
    if card.pan in TestCards.DECLINES:
        return TestCards.DECLINES[card.pan]
    if len(card.expiry) == 4 and card.expiry.isdigit():
        today = _today()
        if (2000 + int(card.expiry[:2]), int(card.expiry[2:])) < (today.year, today.month):
            return "73"
    return TestCards.AMOUNT_TRIGGERS.get(amount % 100, RespCode.SUCCESS)
