"""The simulated Mir host's rules: what it approves, what it remembers, what it books.

Everything here works on decoded, MAC-verified messages (field dicts); sockets and
MACs are :mod:`adapters.mir.host` and :mod:`adapters.mir.simulator`'s business. The
test cards and amounts are listed in :mod:`adapters.mir.simulator`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from adapters.base import RecordType, TxnStatus, mask_pan
from adapters.mir.protocol import (
    ANSWER_MTI,
    APPROVED,
    PURCHASE,
    REFERENCE_PATTERN,
    REFUND,
    REPEAT_MTIS,
    RRN_PATTERN,
    is_amount,
    original_data,
    original_rrn,
)
from adapters.mir.register import MirSettlementRecord
from adapters.mir.terms import (
    CALENDAR,
    CURRENCY,
    CURRENCY_NUMERIC,
    FEE_SCHEDULE,
    RAIL,
    is_valid_mir_pan,
    moscow_now,
)
from adapters.simulation import SettlementBook

logger = logging.getLogger(__name__)

APPROVING_PAN = "2200000000000004"
#: Cards the host declines, with the code it answers.
DECLINING_PANS: Mapping[str, str] = {
    "2204000000000059": "05",   # do not honour
    "2204000000000547": "54",   # expired card
    "2204000000000430": "43",   # stolen card, pick up
    "2204000000000620": "62",   # restricted card
}
#: Amounts (kopecks) at or above this are refused with 61.
AMOUNT_LIMIT = 1_000_000_00
#: Last two digits of an amount (kopecks) -> response code.
AMOUNT_CODES: Mapping[int, str] = {51: "51", 91: "91"}
#: Last two digits of an amount for which the host processes but never answers.
SILENT_KOPECKS = 68
#: Codes that say nothing happened: not remembered, so a retry is processed afresh.
TRANSIENT_CODES = frozenset({"91", "96"})
FORMAT_ERROR = "30"

_ECHOED = ("3", "7", "11", "12", "13", "37", "41", "42", "48", "49")
_REQUIRED = ("3", "4", "7", "11", "37", "41", "42", "48", "49")


@dataclass
class _Transaction:
    """An authorization or a sale, which later operations name by RRN (field 90)."""

    reference: str
    rrn: str
    sale: bool
    masked_pan: str
    auth_code: str
    authorized: int
    day: dt.date
    captured: int = 0
    refunded: int = 0
    released: int = 0

    @property
    def remaining(self) -> int:
        """What may still be captured."""
        return self.authorized - self.captured - self.released

    def state(self) -> TxnStatus:
        if self.refunded:
            return TxnStatus.REFUNDED
        if self.captured:
            return TxnStatus.CAPTURED
        if self.released:
            return TxnStatus.VOIDED
        return TxnStatus.AUTHORIZED


@dataclass(frozen=True)
class _Outcome:
    """What the host answered an operation; replayed to retries and inquiries."""

    fingerprint: tuple[str, ...]
    code: str
    amount: int
    approval_code: str = ""
    original_rrn: str = ""


@dataclass(frozen=True)
class Answer:
    """The fields to answer with; ``silent`` when the host must not answer at all."""

    fields: dict[str, str]
    silent: bool = False


class MirScheme:
    """The host's memory and rules. Thread-safe: the host thread processes messages
    while tests and the settlement writer read."""

    def __init__(self, book: SettlementBook) -> None:
        self.book = book
        self._lock = threading.Lock()
        self._outcomes: dict[str, _Outcome] = {}       # our reference -> outcome
        self._rrn_owner: dict[str, str] = {}           # RRN -> our reference
        self._transactions: dict[str, _Transaction] = {}   # RRN -> original transaction

    def process(self, request: Mapping[str, str]) -> Answer:
        """Answer one request (a repeat MTI is an inquiry and changes nothing). A
        known reference with the same request replays the original outcome; with a
        different request it is refused with 94."""
        mti = request["t"]
        with self._lock:
            if mti in REPEAT_MTIS:
                return self._inquiry(request)
            kind = _kind(mti, request.get("3"))
            problem = None if kind is None else _format_problem(kind, request)
            if kind is None or problem is not None:
                logger.info("mir host %s: format error (%s)", mti, problem or "processing code")
                return Answer(_answer_fields(request, FORMAT_ERROR, 0))
            reference, rrn = request["48"], request["37"]
            fingerprint = (kind, request["4"], request["49"], request.get("90", ""),
                           mask_pan(request.get("2", "")), request.get("14", ""))
            known = self._outcomes.get(reference)
            if known is not None:
                if known.fingerprint != fingerprint:
                    return Answer(_answer_fields(request, "94", 0))
                return Answer(self._answer(request, known))
            if self._rrn_owner.get(rrn, reference) != reference:
                return Answer(_answer_fields(request, "94", 0))
            outcome = self._HANDLERS[kind](self, request, fingerprint)
            if outcome.code not in TRANSIENT_CODES:
                self._outcomes[reference] = outcome
                self._rrn_owner[rrn] = reference
            logger.info("mir host %s %s ref=%s rrn=%s pan=%s amount=%s -> %s", mti, kind, reference, rrn,
                        mask_pan(request.get("2", "")) or "-", request["4"], outcome.code)
            silent = int(request["4"]) % 100 == SILENT_KOPECKS
            return Answer(self._answer(request, outcome), silent=silent)

    def status(self, reference: str) -> TxnStatus:
        """The current state of the transaction the operation ``reference`` belongs to."""
        with self._lock:
            outcome = self._outcomes.get(reference)
            if outcome is None:
                return TxnStatus.NOT_FOUND
            return self._state(outcome)

    # -- operations ---------------------------------------------------------------

    def _authorize(self, request: Mapping[str, str], fingerprint: tuple[str, ...]) -> _Outcome:
        amount, pan = int(request["4"]), request.get("2", "")
        sale = fingerprint[0] == "sale"
        code = self._card_code(pan, request.get("14"), amount)
        if code != APPROVED:
            return _Outcome(fingerprint, code, amount)
        rrn = request["37"]
        transaction = _Transaction(reference=request["48"], rrn=rrn, sale=sale, masked_pan=mask_pan(pan),
                                   auth_code=_approval_code(), authorized=amount, day=self._today(),
                                   captured=amount if sale else 0)
        self._transactions[rrn] = transaction
        if sale:
            self._book(RecordType.PAYMENT, transaction, reference=transaction.reference, rrn=rrn,
                       amount=amount, auth_code=transaction.auth_code)
        return _Outcome(fingerprint, APPROVED, amount, transaction.auth_code, rrn)

    def _capture(self, request: Mapping[str, str], fingerprint: tuple[str, ...]) -> _Outcome:
        amount, transaction = int(request["4"]), self._transactions.get(original_rrn(request["90"]))
        if transaction is None:
            return _Outcome(fingerprint, "25", amount)
        if transaction.sale or transaction.remaining == 0:
            return _Outcome(fingerprint, "12", amount)
        if not 0 < amount <= transaction.remaining:
            return _Outcome(fingerprint, "13", amount)
        transaction.captured += amount
        if request.get("62", "F") == "F":
            transaction.released += transaction.remaining
        self._book(RecordType.PAYMENT, transaction, reference=transaction.reference, rrn=request["37"],
                   amount=amount, auth_code=transaction.auth_code)
        return _Outcome(fingerprint, APPROVED, amount, transaction.auth_code, transaction.rrn)

    def _void(self, request: Mapping[str, str], fingerprint: tuple[str, ...]) -> _Outcome:
        amount, transaction = int(request["4"]), self._transactions.get(original_rrn(request["90"]))
        if transaction is None:
            return _Outcome(fingerprint, "25", amount)
        if transaction.sale or transaction.remaining == 0:
            return _Outcome(fingerprint, "12", amount)
        if amount > transaction.authorized:
            return _Outcome(fingerprint, "13", amount)
        released = transaction.remaining
        transaction.released += released
        return _Outcome(fingerprint, APPROVED, released, transaction.auth_code, transaction.rrn)

    def _refund(self, request: Mapping[str, str], fingerprint: tuple[str, ...]) -> _Outcome:
        amount, transaction = int(request["4"]), self._transactions.get(original_rrn(request["90"]))
        if transaction is None:
            return _Outcome(fingerprint, "25", amount)
        refundable = transaction.captured - transaction.refunded
        if refundable == 0:
            return _Outcome(fingerprint, "12", amount)
        if not 0 < amount <= refundable:
            return _Outcome(fingerprint, "13", amount)
        transaction.refunded += amount
        approval = _approval_code()
        self._book(RecordType.REFUND, transaction, reference=request["48"], rrn=request["37"],
                   amount=amount, auth_code=approval)
        return _Outcome(fingerprint, APPROVED, amount, approval, transaction.rrn)

    _HANDLERS: Mapping[str, Callable[[MirScheme, Mapping[str, str], tuple[str, ...]], _Outcome]] = {
        "authorize": _authorize, "sale": _authorize, "capture": _capture, "void": _void,
        "refund": _refund,
    }

    # -- helpers ------------------------------------------------------------------

    @staticmethod
    def _today() -> dt.date:
        return moscow_now().date()

    def _inquiry(self, request: Mapping[str, str]) -> Answer:
        reference = request.get("48", "")
        if not (REFERENCE_PATTERN.fullmatch(reference) and RRN_PATTERN.fullmatch(request.get("37", ""))):
            return Answer(_answer_fields(request, FORMAT_ERROR, 0))
        outcome = self._outcomes.get(reference)
        logger.info("mir host %s inquiry ref=%s -> %s", request["t"], reference,
                    outcome.code if outcome else "25")
        if outcome is None:
            return Answer(_answer_fields(request, "25", 0))
        return Answer(self._answer(request, outcome))

    def _card_code(self, pan: str, expiry: str | None, amount: int) -> str:
        if not is_valid_mir_pan(pan):
            return "14"
        if pan in DECLINING_PANS:
            return DECLINING_PANS[pan]
        if expiry and expiry < self._today().strftime("%y%m"):
            return "54"
        if amount >= AMOUNT_LIMIT:
            return "61"
        return AMOUNT_CODES.get(amount % 100, APPROVED)

    def _state(self, outcome: _Outcome) -> TxnStatus:
        if outcome.code != APPROVED:
            return TxnStatus.DECLINED
        return self._transactions[outcome.original_rrn].state()

    def _answer(self, request: Mapping[str, str], outcome: _Outcome) -> dict[str, str]:
        fields = _answer_fields(request, outcome.code, outcome.amount)
        fields["44"] = self._state(outcome).value
        if outcome.approval_code:
            fields["38"] = outcome.approval_code
        if outcome.original_rrn:
            fields["90"] = original_data(outcome.original_rrn)
        return fields

    def _book(self, record_type: RecordType, transaction: _Transaction, *, reference: str, rrn: str,
              amount: int, auth_code: str) -> None:
        gross = amount if record_type is RecordType.PAYMENT else -amount
        fee = FEE_SCHEDULE.fee_for(gross, record_type)
        day = self._today()
        self.book.add(MirSettlementRecord(
            rail=RAIL, line_number=0, record_type=record_type, rail_reference=transaction.rrn,
            reference=reference, gross=gross, fee=fee, net=gross - fee, currency=CURRENCY,
            transaction_date=day, settlement_date=CALENDAR.expected_settlement_date(day), rrn=rrn,
            auth_code=auth_code, masked_pan=transaction.masked_pan))


def _kind(mti: str, processing_code: str | None) -> str | None:
    """The operation a request asks for, or None when the host does not offer it."""
    if mti == "0100" and processing_code == PURCHASE:
        return "authorize"
    if mti == "0200" and processing_code == PURCHASE:
        return "sale"
    if mti == "0200" and processing_code == REFUND:
        return "refund"
    if mti == "0220" and processing_code == PURCHASE:
        return "capture"
    if mti == "0400" and processing_code == PURCHASE:
        return "void"
    return None


def _format_problem(kind: str, request: Mapping[str, str]) -> str | None:
    """Why ``request`` cannot be processed as ``kind`` (answered with 30), or None."""
    missing = [name for name in _REQUIRED if name not in request]
    if kind in ("authorize", "sale") and "2" not in request:
        missing.append("2")
    if kind in ("capture", "void", "refund") and "90" not in request:
        missing.append("90")
    if missing:
        return f"missing field {', '.join(missing)}"
    checks = (
        (is_amount(request["4"]), "field 4 is not 12 digits"),
        (request["49"] == CURRENCY_NUMERIC, f"field 49 is not {CURRENCY_NUMERIC}"),
        (REFERENCE_PATTERN.fullmatch(request["48"]) is not None, "field 48 is not a reference"),
        (RRN_PATTERN.fullmatch(request["37"]) is not None, "field 37 is not an RRN"),
        (RRN_PATTERN.fullmatch(request.get("90", "0" * 12)[:12]) is not None, "field 90 names no RRN"),
        (len(request.get("14", "0000")) == 4 and request.get("14", "0000").isdigit(),
         "field 14 is not YYMM"),
    )
    return next((problem for passed, problem in checks if not passed), None)


def _answer_fields(request: Mapping[str, str], code: str, amount: int) -> dict[str, str]:
    fields = {"t": ANSWER_MTI[request["t"]], "39": code, "4": f"{amount:012d}"}
    fields.update({name: request[name] for name in _ECHOED if name in request})
    return fields


def _approval_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"
