"""The fourth rail's simulator: an HMAC-signing JSON gateway on a loopback socket.

It approves wallets whose buyer id is ``buyer-ok`` and declines ``buyer-no-funds``
with code 51. It keeps its own book of transactions (authorize, capture, void,
refund, each idempotent on our reference) and writes the CSV settlement file of
everything captured or refunded since the last file, through
:func:`adapters.simulation.apply_discrepancies`.

Options: ``signing="wrong-key"`` signs every answer and notification with a key the
adapter does not hold (requests are still carried out).

A query always succeeds as a request: it reports the operation's outcome (``declined``
with the code it was declined with, ``not_found``, or the transaction's current state
and what the operation moved). Refunds settle under the original transaction's
``rail_reference``; the CSV file has no column for an operation's own id, nor for an
FX rate (the rail settles in its one currency), so FX_RATE_DIFFERS asked for by
explicit list is refused with :class:`~adapters.simulation.DiscrepancyNotCarried`.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import secrets
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO

from adapters.base import (
    Discrepancy,
    DiscrepancyKind,
    FeeSchedule,
    MethodKind,
    PaymentMethod,
    RecordType,
    SettlementRecord,
    TxnStatus,
)
from adapters.simulation import (
    LoopbackHTTPServer,
    SettlementBook,
    apply_discrepancies,
    plan_random,
    refuse_uncarried,
)
from adapters.statements import format_amount, parse_amount
from tests.adapters.fourth_rail import protocol
from tests.adapters.fourth_rail.protocol import (
    APPROVED,
    CURRENCY,
    INSUFFICIENT_FUNDS,
    INVALID_AMOUNT,
    NAME,
    NOT_ALLOWED,
)

FEES = FeeSchedule(rate=Decimal("0.015"), fixed=100)
APPROVING_BUYER = "buyer-ok"
DECLINED_BUYER = "buyer-no-funds"
NOT_CARRIED: Mapping[DiscrepancyKind, str] = {
    DiscrepancyKind.FX_RATE_DIFFERS: "the fourth rail settles in one currency; its CSV has no rate column",
}


@dataclass
class _Txn:
    reference: str
    rail_reference: str
    amount: int
    currency: str
    status: TxnStatus
    created: dt.date
    captured: int = 0
    refunded: int = 0


class FourthSimulator:
    """Satisfies :class:`adapters.base.RailSimulator`."""

    name = NAME

    def __init__(self, signing: str = "right-key", merchant_id: str = "M-4TH-001") -> None:
        self.merchant_id = merchant_id
        self.secret = secrets.token_bytes(32)
        self._answer_key = secrets.token_bytes(32) if signing == "wrong-key" else self.secret
        self._lock = threading.Lock()
        self._answers: dict[str, dict[str, Any]] = {}     # our reference -> first answer
        self._txns: dict[str, _Txn] = {}                   # rail reference -> transaction
        self._book = SettlementBook()
        self._server = LoopbackHTTPServer(self._handler())

    # -- RailSimulator --------------------------------------------------------------

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def adapter_config(self) -> dict[str, str]:
        return {"endpoint": self._server.url, "merchant_id": self.merchant_id, "secret": self.secret.hex()}

    def approving_method(self) -> PaymentMethod:
        return PaymentMethod(kind=MethodKind.WALLET, buyer_id=APPROVING_BUYER)

    def declining_method(self) -> tuple[PaymentMethod, str]:
        return PaymentMethod(kind=MethodKind.WALLET, buyer_id=DECLINED_BUYER), INSUFFICIENT_FUNDS

    def transaction_status(self, reference: str) -> TxnStatus:
        with self._lock:
            answer = self._answers.get(reference)
            txn = self._txns.get(answer["rail_reference"]) if answer else None
            if txn is None:
                return TxnStatus.DECLINED if answer else TxnStatus.NOT_FOUND
            return txn.status

    def write_settlement_file(self, out: BinaryIO, settlement_date: dt.date,
                              discrepancies: Sequence[Discrepancy] = (), seed: int | None = None,
                              rate: Decimal = Decimal(0)) -> list[Discrepancy]:
        refuse_uncarried(NAME, discrepancies, NOT_CARRIED)
        pending, held = self._book.take()
        records = [dataclasses.replace(r, settlement_date=settlement_date) for r in held + pending]
        planned = list(discrepancies)
        if seed is not None:
            planned += plan_random(records, seed, rate)
        written, held_back, applied = apply_discrepancies(records, planned, rail=NAME,
                                                          settlement_date=settlement_date, currency=CURRENCY)
        self._book.hold_back(held_back)
        text = io.StringIO(newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(protocol.FILE_HEADER)
        for r in written:
            writer.writerow([r.record_type.value, r.rail_reference, r.reference,
                             *(format_amount(v, r.currency) for v in (r.gross, r.fee, r.net)),
                             r.currency, r.transaction_date.isoformat(), r.settlement_date.isoformat()])
        out.write(text.getvalue().encode())
        return applied

    def notification_for(self, reference: str) -> tuple[dict[str, str], bytes]:
        """The notification of the operation ``reference``: its outcome as first
        answered, with an id derived from the operation (stable across re-sends)."""
        with self._lock:
            answer = self._answers[reference]
            txn = self._txns[answer["rail_reference"]]
            body = protocol.encode({
                "notification_id": f"N-{txn.rail_reference}-{reference}",
                "reference": reference, "rail_reference": txn.rail_reference,
                "status": answer["status"], "amount": answer["amount"], "currency": answer["currency"],
                "occurred_at": dt.datetime.now(dt.UTC).isoformat()})
        return {protocol.SIGNATURE_HEADER: protocol.sign(self._answer_key, body)}, body

    # -- the gateway ----------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not protocol.verify(simulator.secret, body, self.headers.get(protocol.SIGNATURE_HEADER, "")):
                    self._send(401, {"error": "bad signature"})
                    return
                try:
                    request = json.loads(body)
                    answer = simulator.handle(self.path.removeprefix("/v1/"), request)
                except (ValueError, KeyError) as exc:
                    self._send(400, {"error": str(exc)})
                    return
                self._send(200, answer)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                body = protocol.encode(payload)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header(protocol.SIGNATURE_HEADER, protocol.sign(simulator._answer_key, body))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def handle(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """Apply one request; a reference seen before gets its first answer back."""
        with self._lock:
            reference = request["reference"]
            if operation == "query":
                return self._query(reference)
            if reference in self._answers:
                return self._answers[reference]
            amount = parse_amount(request["amount"], request["currency"])
            if operation == "authorize":
                answer = self._authorize(request, amount)
            elif operation in ("capture", "void", "refund"):
                txn = self._txns.get(request["rail_reference"])
                answer = self._change(operation, txn, amount) if txn else _declined(NOT_ALLOWED)
            else:
                raise ValueError(f"unknown operation {operation}")
            answer["reference"] = reference
            self._answers[reference] = answer
            return answer

    def _query(self, reference: str) -> dict[str, Any]:
        """The query itself always succeeds: it reports a declined operation as
        ``declined`` with the code it was declined with, an unknown one as
        ``not_found``, otherwise the transaction's current state and what the
        operation moved."""
        answer = self._answers.get(reference)
        if answer is None:
            return {"result": "approved", "code": APPROVED, "reference": reference, "rail_reference": "",
                    "status": TxnStatus.NOT_FOUND.value, "amount": "0", "currency": CURRENCY}
        if answer["result"] == "declined":
            return {**answer, "result": "approved"}
        txn = self._txns[answer["rail_reference"]]
        return {**answer, "status": txn.status.value}

    def _authorize(self, request: dict[str, Any], amount: int) -> dict[str, Any]:
        if request["buyer_id"] != APPROVING_BUYER:
            return _declined(INSUFFICIENT_FUNDS)
        txn = _Txn(reference=request["reference"], rail_reference=f"4R{uuid.uuid4().hex[:16].upper()}",
                   amount=amount, currency=request["currency"], status=TxnStatus.AUTHORIZED,
                   created=dt.datetime.now(dt.UTC).date())
        self._txns[txn.rail_reference] = txn
        if request["capture"]:
            self._settle_capture(txn, amount)
        return _approved(txn, amount)

    def _change(self, operation: str, txn: _Txn, amount: int) -> dict[str, Any]:
        if operation == "void":
            if txn.status is not TxnStatus.AUTHORIZED:
                return _declined(NOT_ALLOWED)
            txn.status = TxnStatus.VOIDED
        elif operation == "capture":
            if txn.status is not TxnStatus.AUTHORIZED:
                return _declined(NOT_ALLOWED)
            if not 0 < amount <= txn.amount:
                return _declined(INVALID_AMOUNT)
            self._settle_capture(txn, amount)
        else:
            if txn.status not in (TxnStatus.CAPTURED, TxnStatus.REFUNDED):
                return _declined(NOT_ALLOWED)
            if not 0 < amount <= txn.captured - txn.refunded:
                return _declined(INVALID_AMOUNT)
            txn.refunded += amount
            txn.status = TxnStatus.REFUNDED
            self._book.add(self._record(txn, RecordType.REFUND, -amount, txn.rail_reference))
        return _approved(txn, amount)

    def _settle_capture(self, txn: _Txn, amount: int) -> None:
        txn.captured = amount
        txn.status = TxnStatus.CAPTURED
        self._book.add(self._record(txn, RecordType.PAYMENT, amount, txn.rail_reference))

    def _record(self, txn: _Txn, kind: RecordType, gross: int, rail_reference: str) -> SettlementRecord:
        fee = FEES.fee_for(gross, kind)
        return SettlementRecord(rail=NAME, line_number=0, record_type=kind, rail_reference=rail_reference,
                                reference=txn.reference, gross=gross, fee=fee, net=gross - fee,
                                currency=txn.currency, transaction_date=txn.created,
                                settlement_date=txn.created + dt.timedelta(days=1))


def _approved(txn: _Txn, amount: int) -> dict[str, Any]:
    return {"result": "approved", "code": APPROVED, "rail_reference": txn.rail_reference,
            "status": txn.status.value, "amount": format_amount(amount, txn.currency),
            "currency": txn.currency}


def _declined(code: str) -> dict[str, Any]:
    return {"result": "declined", "code": code, "rail_reference": "", "status": TxnStatus.DECLINED.value,
            "amount": "0", "currency": CURRENCY}
