"""The Mir rail adapter: a :class:`~adapters.base.PaymentRail` speaking ISO 8583 to a
Mir host (or its simulator). The wire format, identifiers, status inquiry and MAC
are described in :mod:`adapters.mir.protocol`.

Configuration (all values are strings, as :meth:`MirRail.from_config` takes them):

=============  ========================================================  ============
key            meaning                                                   default
=============  ========================================================  ============
``port``       the host's TCP port                                       required
``mac_key``    shared AES key for field 64, hex (32, 48 or 64 chars)     required
``host``       the host's address                                        127.0.0.1
``terminal_id``  field 41, exactly 8 characters                          ``TERM0001``
``merchant_id``  field 42, exactly 15 characters                         ``MERCHANT0000001``
``timeout``    seconds for one call (connect, send, answer)              ``10``
=============  ========================================================  ============
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import BinaryIO

from adapters.base import (
    AuthorizeRequest,
    Capability,
    CaptureRequest,
    Declined,
    Malformed,
    MethodKind,
    Notification,
    NotificationAck,
    PaymentMethod,
    PayoutRequest,
    QueryRequest,
    RailResult,
    RailUnavailable,
    RecordError,
    RefundRequest,
    SettlementRecord,
    SignatureInvalid,
    TxnStatus,
    Unsupported,
    VoidRequest,
    luhn_valid,
    mask_pan,
)
from adapters.mir import protocol
from adapters.mir.files import parse_register
from adapters.mir.protocol import (
    ANSWER_MTI,
    APPROVED,
    INQUIRY,
    PURCHASE,
    REFERENCE_PATTERN,
    REFUND,
    RESPONSE_TEXT,
    RRN_PATTERN,
    ProtocolError,
)
from adapters.mir.terms import (
    CALENDAR,
    CURRENCY,
    CURRENCY_NUMERIC,
    FEE_SCHEDULE,
    MAX_AMOUNT,
    RAIL,
    is_mir_bin,
    moscow_now,
)
from adapters.mir.transport import Link

logger = logging.getLogger(__name__)

#: Response codes that mean "the operation did not happen, try later".
UNAVAILABLE_CODES = frozenset({"91", "96"})
NOT_FOUND = "25"


class MirRail:
    """Client of one Mir host. Instances are immutable after construction, open a
    connection per call, and are therefore safe to share between threads.

    Every operation is named by our ``reference`` (its RRN and STAN derive from it),
    so calling again with the same request is a safe retry. Besides
    :class:`~adapters.base.Declined` (``rail_code`` = field 39), any call may raise
    :class:`~adapters.base.RailUnavailable` (nothing happened: no connection, or
    response code 91/96), :class:`~adapters.base.RailTimeout` (no answer: the
    outcome is unknown, ask :meth:`query`), :class:`~adapters.base.Malformed` (a
    broken answer, an answer whose MTI, RRN or STAN is not the request's, or 30
    format error) and :class:`~adapters.base.SignatureInvalid`
    (the answer's MAC is missing or wrong, or the host answered 63 to ours)."""

    name = RAIL
    currencies = frozenset({CURRENCY})
    capabilities = (Capability.AUTHORIZE | Capability.SALE | Capability.PARTIAL_CAPTURE
                    | Capability.MULTIPLE_CAPTURE | Capability.VOID | Capability.REFUND
                    | Capability.PARTIAL_REFUND | Capability.QUERY)
    fee_schedule = FEE_SCHEDULE
    calendar = CALENDAR

    def __init__(self, *, host: str, port: int, mac_key: bytes, terminal_id: str = "TERM0001",
                 merchant_id: str = "MERCHANT0000001", timeout: float = 10.0) -> None:  # float-ok: seconds
        if len(terminal_id) != 8 or len(merchant_id) != 15:
            raise ValueError("terminal_id must be 8 characters and merchant_id 15")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._host = host
        self._port = port
        self._key = mac_key
        self._terminal_id = terminal_id
        self._merchant_id = merchant_id
        self._timeout = timeout
        self._link = Link(host, port, timeout)

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> MirRail:
        """Build from the string configuration described in the module docstring."""
        try:
            port = int(config["port"])
            key = protocol.parse_key(config["mac_key"])
        except KeyError as exc:
            raise ValueError(f"mir configuration lacks {exc.args[0]!r}") from None
        return cls(host=config.get("host", "127.0.0.1"), port=port, mac_key=key,
                   terminal_id=config.get("terminal_id", "TERM0001"),
                   merchant_id=config.get("merchant_id", "MERCHANT0000001"),
                   timeout=float(config.get("timeout", "10")))  # float-ok: seconds, not money

    def __repr__(self) -> str:
        return f"MirRail(host={self._host!r}, port={self._port}, terminal_id={self._terminal_id!r})"

    # -- operations ---------------------------------------------------------------

    def authorize(self, request: AuthorizeRequest) -> RailResult:
        """Hold ``amount`` on the card (0100), or take it at once when ``capture`` (0200
        sale). A retry with the same reference returns the original answer, decline
        included. A PAN outside Mir's BIN range is :class:`Unsupported`; one failing
        the Luhn check is declined here with ``14``, as the host would answer."""
        _check_reference(request.reference)
        _check_money(request.amount, request.currency)
        pan = _card_number(request.method)
        fields = {"t": "0200" if request.capture else "0100", "2": pan, "3": PURCHASE,
                  "4": f"{request.amount:012d}", "49": CURRENCY_NUMERIC}
        if request.method.expiry is not None:
            if not (len(request.method.expiry) == 4 and request.method.expiry.isdigit()):
                raise Malformed("card expiry must be YYMM", rail=RAIL)
            fields["14"] = request.method.expiry
        answer = self._send(fields, request.reference, mask_pan(pan))
        _raise_unless_approved(answer, "authorization")
        return _result(request.reference, answer)

    def capture(self, request: CaptureRequest) -> RailResult:
        """Capture ``amount`` of the authorization ``rail_reference`` with a completion
        advice (0220). Several partial captures may follow one another up to the
        authorized amount while ``final`` is false; a ``final`` capture releases what
        remains. Declined with ``12`` once nothing remains (voided, fully captured),
        ``13`` above the remainder, ``25`` for an unknown RRN."""
        _check_reference(request.reference)
        _check_rrn(request.rail_reference)
        _check_money(request.amount, request.currency)
        fields = {"t": "0220", "3": PURCHASE, "4": f"{request.amount:012d}", "49": CURRENCY_NUMERIC,
                  "62": "F" if request.final else "P",
                  "90": protocol.original_data(request.rail_reference)}
        answer = self._send(fields, request.reference)
        _raise_unless_approved(answer, "capture")
        return _result(request.reference, answer)

    def void(self, request: VoidRequest) -> RailResult:
        """Release the uncaptured rest of the authorization ``rail_reference`` with a
        reversal (0400). The answer's amount is what was released, whatever ``amount``
        said (it may not exceed the authorized amount). After partial captures the
        transaction stays ``CAPTURED``; with none it becomes ``VOIDED``. Declined with
        ``12`` when nothing remains to release or the original was a sale (refund it)."""
        _check_reference(request.reference)
        _check_rrn(request.rail_reference)
        _check_money(request.amount, request.currency)
        fields = {"t": "0400", "3": PURCHASE, "4": f"{request.amount:012d}", "49": CURRENCY_NUMERIC,
                  "90": protocol.original_data(request.rail_reference)}
        answer = self._send(fields, request.reference)
        _raise_unless_approved(answer, "reversal")
        return _result(request.reference, answer)

    def refund(self, request: RefundRequest) -> RailResult:
        """Give back ``amount`` of what was captured on ``rail_reference`` (0200 with
        processing code 20). Several partial refunds may add up to the captured
        amount; above what remains the host declines with ``13``."""
        _check_reference(request.reference)
        _check_rrn(request.rail_reference)
        _check_money(request.amount, request.currency)
        fields = {"t": "0200", "3": REFUND, "4": f"{request.amount:012d}", "49": CURRENCY_NUMERIC,
                  "90": protocol.original_data(request.rail_reference)}
        answer = self._send(fields, request.reference)
        _raise_unless_approved(answer, "refund")
        return _result(request.reference, answer)

    def query(self, request: QueryRequest) -> RailResult:
        """Ask the host what became of the operation ``reference`` with a repeat
        message (see :mod:`adapters.mir.protocol`), which the host never processes.
        ``operation`` is one of ``authorize``, ``sale``, ``capture``, ``refund`` or
        ``void``. Returns ``NOT_FOUND`` when the host never saw the reference,
        ``DECLINED`` (amount 0, ``response_code`` set) when it declined it, otherwise
        the transaction's current state and what the operation moved."""
        _check_reference(request.reference)
        if request.operation not in INQUIRY:
            raise Unsupported(f"mir cannot query a {request.operation!r} operation", rail=RAIL)
        mti, processing_code = INQUIRY[request.operation]
        answer = self._send({"t": mti, "3": processing_code, "49": CURRENCY_NUMERIC}, request.reference)
        code = answer["39"]
        if code == NOT_FOUND:
            return RailResult(rail=RAIL, reference=request.reference,
                              rail_reference=request.rail_reference or "", status=TxnStatus.NOT_FOUND,
                              amount=0, currency=CURRENCY, response_code=code, raw=_safe_raw(answer))
        if code != APPROVED and code not in _ERROR_CODES:
            return RailResult(rail=RAIL, reference=request.reference,
                              rail_reference=_rail_reference(answer, request.rail_reference),
                              status=TxnStatus.DECLINED, amount=0, currency=CURRENCY,
                              response_code=code, rrn=answer["37"], raw=_safe_raw(answer))
        _raise_unless_approved(answer, "inquiry")
        return _result(request.reference, answer)

    def payout(self, request: PayoutRequest) -> RailResult:
        """Mir card payouts (OCT) are not offered by this adapter."""
        raise Unsupported("mir payouts are not supported", rail=RAIL)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """The Mir host sends no asynchronous notifications; outcomes come from the
        answers themselves and from :meth:`query`."""
        raise Unsupported("mir sends no notifications", rail=RAIL)

    def notification_ack(self, notification: Notification | None) -> NotificationAck:
        """There is nothing to acknowledge: always 404."""
        return NotificationAck(status_code=404, body=b"mir sends no notifications")

    def parse_settlement_file(self, stream: BinaryIO) -> Iterator[SettlementRecord | RecordError]:
        """Stream the acquirer register (see :mod:`adapters.mir.files`)."""
        return parse_register(stream, rail=self.name)

    # -- wire ---------------------------------------------------------------------

    def _send(self, fields: dict[str, str], reference: str, masked_pan: str = "") -> dict[str, str]:
        """Complete ``fields`` with the identifiers of ``reference`` and the terminal,
        MAC them, exchange them with the host and return the verified answer."""
        rrn, stan = protocol.derive_ids(reference)
        mti = fields["t"]
        message = {**fields, **protocol.clock_fields(moscow_now()), "11": stan, "37": rrn,
                   "41": self._terminal_id, "42": self._merchant_id, "48": reference}
        try:
            raw = protocol.encode(message, self._key)
        except ProtocolError as exc:
            raise Malformed(str(exc), rail=RAIL) from None
        logger.debug("mir %s ref=%s rrn=%s pan=%s amount=%s", mti, reference, rrn,
                     masked_pan or "-", fields.get("4", "-"))
        answer_raw = self._link.exchange(raw)
        try:
            answer = protocol.decode(answer_raw)
        except ProtocolError as exc:
            raise Malformed(f"answer to {mti} {rrn}: {exc}", rail=RAIL) from None
        if not protocol.mac_is_valid(self._key, answer_raw, answer):
            reason = ("has a wrong MAC" if any(name in answer for name in protocol.MAC_FIELDS)
                      else "carries no MAC")
            raise SignatureInvalid(f"answer to {mti} {rrn} {reason}", rail=RAIL,
                                   detail={"rrn": rrn, "mti": answer["t"]})
        # An answer for another request (a host's mix-up, or an earlier answer replayed,
        # MAC and all) must not settle this one: the identifiers have to be ours.
        expected = (("MTI", "t", ANSWER_MTI[mti]), ("RRN", "37", rrn), ("STAN", "11", stan))
        wrong = [(label, answer.get(name, ""), value) for label, name, value in expected
                 if answer.get(name) != value]
        if wrong:
            what = ", ".join(f"{label} {got or '-'} instead of {value}" for label, got, value in wrong)
            raise Malformed(f"answer {answer['t']} does not match request {mti} {rrn}: {what}", rail=RAIL,
                            detail={"rrn": rrn, "mismatch": ",".join(label for label, _, _ in wrong)})
        code = answer.get("39", "")
        if len(code) != 2:
            raise Malformed(f"answer to {mti} {rrn} has no response code", rail=RAIL)
        logger.debug("mir %s ref=%s rrn=%s -> %s", answer["t"], reference, rrn, code)
        return answer


_ERROR_CODES = frozenset({"30", "63"}) | UNAVAILABLE_CODES


def _raise_unless_approved(answer: Mapping[str, str], what: str) -> None:
    """Turn a non-approval into the SPI's error: 63 (the host refused our MAC) is
    :class:`SignatureInvalid`, 30 :class:`Malformed`, 91 and 96
    :class:`RailUnavailable` (the host did nothing), any other code :class:`Declined`
    with ``rail_code`` = field 39."""
    code = answer["39"]
    if code == APPROVED:
        return
    text = f"{what} {answer['37']}: {code} {RESPONSE_TEXT.get(code, 'unknown response code')}"
    detail = {"rrn": answer["37"], "response_code": code}
    if code == "63":
        raise SignatureInvalid(f"host refused our MAC: {text}", rail=RAIL, detail=detail)
    if code == "30":
        raise Malformed(f"host could not parse our request: {text}", rail=RAIL, detail=detail)
    if code in UNAVAILABLE_CODES:
        raise RailUnavailable(text, rail=RAIL, detail=detail)
    raise Declined(f"{text}", rail_code=code, rail=RAIL, detail=detail)


def _result(reference: str, answer: Mapping[str, str]) -> RailResult:
    """The :class:`RailResult` of an approved answer."""
    try:
        status = TxnStatus(answer.get("44", ""))
    except ValueError:
        raise Malformed(f"answer {answer['37']} carries no transaction state in field 44",
                        rail=RAIL) from None
    amount = answer.get("4")
    if not protocol.is_amount(amount):
        raise Malformed(f"answer {answer['37']} carries no amount", rail=RAIL)
    return RailResult(rail=RAIL, reference=reference, rail_reference=_rail_reference(answer, None),
                      status=status, amount=int(amount or 0), currency=CURRENCY,
                      response_code=answer["39"], approval_code=answer.get("38", ""),
                      rrn=answer["37"], raw=_safe_raw(answer))


def _rail_reference(answer: Mapping[str, str], fallback: str | None) -> str:
    if "90" in answer:
        return protocol.original_rrn(answer["90"])
    return fallback or answer["37"]


def _safe_raw(answer: Mapping[str, str]) -> dict[str, str]:
    """The answer's fields for audit, with any PAN masked and the MAC left out."""
    raw = {name: value for name, value in answer.items() if name not in ("p", "1", *protocol.MAC_FIELDS)}
    if "2" in raw:
        raw["2"] = mask_pan(raw["2"])
    return raw


def _check_reference(reference: str) -> None:
    if not REFERENCE_PATTERN.fullmatch(reference):
        raise Malformed("reference must be 1-64 characters of A-Z a-z 0-9 _ . : - "
                        "starting with a letter or digit", rail=RAIL)


def _check_rrn(rrn: str) -> None:
    if not RRN_PATTERN.fullmatch(rrn):
        raise Malformed("rail_reference must be a 12-character RRN", rail=RAIL)


def _check_money(amount: int, currency: str) -> None:
    if currency != CURRENCY:
        raise Unsupported(f"mir settles {CURRENCY} only, not {currency}", rail=RAIL)
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise Malformed(f"amount must be an int of 1..{MAX_AMOUNT} kopecks", rail=RAIL)


def _card_number(method: PaymentMethod) -> str:
    if method.kind is not MethodKind.CARD or not method.pan:
        raise Unsupported("mir needs a card number", rail=RAIL)
    pan = method.pan
    if not (pan.isascii() and pan.isdigit()):
        raise Malformed("card number must be digits only", rail=RAIL)
    if not is_mir_bin(pan):
        raise Unsupported(f"{mask_pan(pan)} is not a Mir card (BIN 2200-2204, 16-19 digits)", rail=RAIL)
    if not luhn_valid(pan):
        raise Declined(f"{mask_pan(pan)} fails the Luhn check: 14 invalid card number",
                       rail_code="14", rail=RAIL)
    return pan

