"""The fourth rail's adapter: a :class:`adapters.base.PaymentRail` over HTTP/JSON.

Rules:

* Every request is signed with the merchant's HMAC secret; every answer and
  notification is verified against it before anything in it is believed
  (:class:`SignatureInvalid` otherwise).
* Connection refused or a 5xx answer is :class:`RailUnavailable` (nothing
  happened); no answer in time is :class:`RailTimeout` (ask :meth:`query`).
* A ``declined`` answer raises :class:`Declined` with the rail's code.
* Only HKD; payouts are not offered (:class:`Unsupported`).
"""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from adapters.base import (
    AuthorizeRequest,
    Capability,
    CaptureRequest,
    Declined,
    Malformed,
    MalformedFile,
    Notification,
    NotificationAck,
    PayoutRequest,
    QueryRequest,
    RailResult,
    RailTimeout,
    RailUnavailable,
    RecordError,
    RecordType,
    RefundRequest,
    SettlementCalendar,
    SettlementRecord,
    SignatureInvalid,
    TxnStatus,
    Unsupported,
    VoidRequest,
)
from adapters.statements import AmountError, format_amount, parse_amount
from tests.adapters.fourth_rail import protocol
from tests.adapters.fourth_rail.protocol import CURRENCY, NAME
from tests.adapters.fourth_rail.simulator import FEES


class FourthRail:
    """Satisfies :class:`adapters.base.PaymentRail`."""

    name = NAME
    currencies = frozenset({CURRENCY})
    capabilities = (Capability.AUTHORIZE | Capability.SALE | Capability.VOID | Capability.REFUND
                    | Capability.PARTIAL_REFUND | Capability.QUERY | Capability.NOTIFICATIONS)
    fee_schedule = FEES
    calendar = SettlementCalendar(lag_days=1)

    def __init__(self, config: Mapping[str, str]) -> None:
        endpoint = urlsplit(config["endpoint"])
        self._host = endpoint.hostname or "127.0.0.1"
        self._port = endpoint.port or 80
        self._merchant_id = config["merchant_id"]
        self._secret = bytes.fromhex(config["secret"])
        self._timeout = float(config.get("timeout_seconds", "5"))

    # -- operations -----------------------------------------------------------------

    def authorize(self, request: AuthorizeRequest) -> RailResult:
        return self._call("authorize", request.reference, request.amount, request.currency,
                          buyer_id=request.method.buyer_id or "", capture=request.capture)

    def capture(self, request: CaptureRequest) -> RailResult:
        return self._call("capture", request.reference, request.amount, request.currency,
                          rail_reference=request.rail_reference)

    def void(self, request: VoidRequest) -> RailResult:
        return self._call("void", request.reference, request.amount, request.currency,
                          rail_reference=request.rail_reference)

    def refund(self, request: RefundRequest) -> RailResult:
        return self._call("refund", request.reference, request.amount, request.currency,
                          rail_reference=request.rail_reference)

    def query(self, request: QueryRequest) -> RailResult:
        return self._call("query", request.reference, 0, CURRENCY)

    def payout(self, request: PayoutRequest) -> RailResult:
        raise Unsupported("the fourth rail has no payouts", rail=NAME)

    # -- notifications --------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        signature = next((v for k, v in headers.items() if k.lower() == protocol.SIGNATURE_HEADER.lower()), "")
        if not protocol.verify(self._secret, body, signature):
            raise SignatureInvalid("notification signature does not verify", rail=NAME)
        data = self._json(body)
        try:
            currency = data["currency"]
            return Notification(
                rail=NAME, notification_id=data["notification_id"], reference=data["reference"],
                rail_reference=data["rail_reference"], status=TxnStatus(data["status"]),
                amount=parse_amount(data["amount"], currency), currency=currency,
                occurred_at=dt.datetime.fromisoformat(data["occurred_at"]),
                raw={k: str(v) for k, v in data.items()})
        except (KeyError, ValueError) as exc:
            raise Malformed(f"notification: {exc}", rail=NAME) from None

    def notification_ack(self, notification: Notification | None) -> NotificationAck:
        return NotificationAck(200, b"OK") if notification else NotificationAck(400, b"FAIL")

    # -- settlement file ------------------------------------------------------------

    def parse_settlement_file(self, stream: BinaryIO) -> Iterator[SettlementRecord | RecordError]:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            rows = csv.reader(text)
            header = next(rows, None)
            if header is None or tuple(header) != protocol.FILE_HEADER:
                raise MalformedFile("not a fourth rail settlement file", rail=NAME, line_number=1,
                                    field_name="header")
            for row in rows:
                yield _record(rows.line_num, row)
        except UnicodeDecodeError as exc:
            raise MalformedFile(f"not UTF-8: {exc}", rail=NAME) from None
        finally:
            text.detach()   # the caller owns the stream; closing the wrapper must not close it

    # -- transport ------------------------------------------------------------------

    def _call(self, operation: str, reference: str, amount: int, currency: str, **extra: object) -> RailResult:
        if currency not in self.currencies:
            raise Unsupported(f"the fourth rail does not take {currency}", rail=NAME)
        body = protocol.encode({"reference": reference, "amount": format_amount(amount, currency),
                                "currency": currency, **extra})
        status, signature, answer = self._post(f"/v1/{operation}", body)
        if status >= 500:
            raise RailUnavailable(f"{operation}: HTTP {status}", rail=NAME)
        if not protocol.verify(self._secret, answer, signature):
            raise SignatureInvalid(f"{operation}: answer signature does not verify", rail=NAME)
        if status == 401:
            raise SignatureInvalid(f"{operation}: the rail refused our signature", rail=NAME)
        data = self._json(answer)
        if status != 200:
            raise Malformed(f"{operation}: HTTP {status} {data.get('error', '')}", rail=NAME)
        if data["result"] == "declined":
            raise Declined(f"{operation} declined", rail_code=data["code"], rail=NAME)
        return RailResult(rail=NAME, reference=reference, rail_reference=data["rail_reference"],
                          status=TxnStatus(data["status"]), amount=parse_amount(data["amount"], data["currency"]),
                          currency=data["currency"], response_code=data["code"],
                          raw={k: str(v) for k, v in data.items()})

    def _post(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.request("POST", path, body=body, headers={
                "Content-Type": "application/json", protocol.MERCHANT_HEADER: self._merchant_id,
                protocol.SIGNATURE_HEADER: protocol.sign(self._secret, body)})
            response = connection.getresponse()
            return response.status, response.getheader(protocol.SIGNATURE_HEADER, ""), response.read()
        except TimeoutError:
            raise RailTimeout(f"no answer from {self._host}:{self._port} in {self._timeout}s", rail=NAME) from None
        except OSError as exc:
            raise RailUnavailable(f"cannot reach {self._host}:{self._port}: {exc}", rail=NAME) from None
        finally:
            connection.close()

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except ValueError:
            raise Malformed("answer is not JSON", rail=NAME) from None
        if not isinstance(data, dict):
            raise Malformed("answer is not a JSON object", rail=NAME)
        return data


def _record(line_number: int, row: list[str]) -> SettlementRecord | RecordError:
    def error(field: str, reason: str) -> RecordError:
        return RecordError(rail=NAME, line_number=line_number, field=field, reason=reason, raw=",".join(row))

    if len(row) != len(protocol.FILE_HEADER):
        return error("", f"{len(row)} fields, expected {len(protocol.FILE_HEADER)}")
    values = dict(zip(protocol.FILE_HEADER, row, strict=True))
    try:
        kind = RecordType(values["type"])
    except ValueError:
        return error("type", f"unknown record type {values['type']!r}")
    amounts: dict[str, int] = {}
    for field in ("gross", "fee", "net"):
        try:
            amounts[field] = parse_amount(values[field], values["currency"], signed=True)
        except AmountError as exc:
            return error(field, str(exc))
    if amounts["gross"] - amounts["fee"] != amounts["net"]:
        return error("net", "gross - fee != net")
    dates: dict[str, dt.date] = {}
    for field in ("transaction_date", "settlement_date"):
        try:
            dates[field] = dt.date.fromisoformat(values[field])
        except ValueError:
            return error(field, f"{values[field]!r} is not a date")
    return SettlementRecord(rail=NAME, line_number=line_number, record_type=kind,
                            rail_reference=values["rail_reference"], reference=values["reference"],
                            gross=amounts["gross"], fee=amounts["fee"], net=amounts["net"],
                            currency=values["currency"], transaction_date=dates["transaction_date"],
                            settlement_date=dates["settlement_date"])
