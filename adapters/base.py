"""The payment rail SPI: what every rail adapter offers the settlement service.

A rail is plugged in as a :class:`RailPlugin` (discovered through the entry-point
group ``settlement.rails``, see :mod:`adapters.registry`). The plugin builds two
things from plain configuration:

* a :class:`PaymentRail`, the client the service uses to move money, and
* a :class:`RailSimulator`, a stand-in for the scheme or gateway that answers and
  signs as the real one does and writes settlement files for what it processed.

Rules every adapter follows:

* Amounts are ``int`` minor units of the named ISO 4217 currency (kopecks, fen...),
  never floats. The adapter converts to and from the rail's wire format.
* ``reference`` is *our* identifier of an operation (one per attempt, capture,
  refund...). Sending the same request with the same reference again is a retry:
  the rail must answer with the original outcome and move no money twice.
* ``rail_reference`` is the rail's identifier of the original transaction
  (Alipay ``trade_no``, UnionPay ``queryId``, Mir RRN).
* Failures raise a :class:`RailError`; a decline is :class:`Declined` carrying the
  rail's own response code. Network failures whose outcome is unknown raise
  :class:`RailTimeout`: the caller must then ask :meth:`PaymentRail.query`.
* Card numbers never leave the adapter unmasked: results and logs carry
  :func:`mask_pan` output only.
* Adapters are plain instances holding their own keys and endpoints; there is no
  module-level state.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO, Protocol, runtime_checkable

# -- errors -----------------------------------------------------------------------


class RailError(Exception):
    """Base of every error an adapter raises. ``code`` is stable and machine-readable."""

    code = "rail_error"

    def __init__(self, message: str, *, rail: str = "", detail: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.rail = rail
        self.detail: Mapping[str, str] = dict(detail or {})


class Declined(RailError):
    """The rail refused the operation. ``rail_code`` is the rail's own response code
    (ISO 8583 field 39, UnionPay ``respCode``, Alipay ``sub_code``)."""

    code = "rail_declined"

    def __init__(self, message: str, *, rail_code: str, rail: str = "",
                 detail: Mapping[str, str] | None = None):
        super().__init__(message, rail=rail, detail=detail)
        self.rail_code = rail_code


class SignatureInvalid(RailError):
    """A message, response or notification failed signature or certificate checks."""

    code = "rail_signature_invalid"


class RailTimeout(RailError):
    """No answer in time. The operation may or may not have happened at the rail."""

    code = "rail_timeout"


class RailUnavailable(RailError):
    """The rail could not be reached (connection refused, 5xx). Nothing happened."""

    code = "rail_unavailable"


class Malformed(RailError):
    """A message or file does not follow the rail's format."""

    code = "rail_malformed"


class ReplayedNotification(RailError):
    """A notification whose id was already accepted (or whose timestamp is stale)."""

    code = "rail_notification_replayed"


class Unsupported(RailError):
    """The rail does not offer this operation or currency."""

    code = "rail_unsupported"


# -- vocabulary -------------------------------------------------------------------


class Capability(enum.Flag):
    """What a rail can do. The service checks these before calling an operation."""

    AUTHORIZE = enum.auto()          # separate authorization (hold) then capture
    SALE = enum.auto()               # authorize and capture in one message
    PARTIAL_CAPTURE = enum.auto()
    MULTIPLE_CAPTURE = enum.auto()   # several partial captures of one authorization
    VOID = enum.auto()
    REFUND = enum.auto()
    PARTIAL_REFUND = enum.auto()
    QUERY = enum.auto()
    PAYOUT = enum.auto()
    NOTIFICATIONS = enum.auto()
    FOREX = enum.auto()              # charges a foreign currency, settles in another


class TxnStatus(enum.StrEnum):
    """A transaction's state as the rail knows it."""

    PENDING = "pending"          # waiting for the buyer or the scheme
    AUTHORIZED = "authorized"    # held, not captured
    CAPTURED = "captured"        # captured (fully or partially)
    VOIDED = "voided"
    REFUNDED = "refunded"        # refunded (fully or partially)
    DECLINED = "declined"
    FAILED = "failed"
    NOT_FOUND = "not_found"      # the rail has no such transaction


class RecordType(enum.StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    ADJUSTMENT = "adjustment"
    PAYOUT = "payout"


class MethodKind(enum.StrEnum):
    CARD = "card"
    WALLET = "wallet"


def mask_pan(pan: str) -> str:
    """First six and last four digits, the rest as ``*`` (PCI DSS display rule)."""
    digits = "".join(ch for ch in pan if ch.isdigit())
    if len(digits) < 13:
        return "*" * len(digits)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def luhn_valid(pan: str) -> bool:
    """True when ``pan`` is all digits and passes the Luhn (mod 10) check."""
    if not pan.isdigit() or len(pan) < 12:
        return False
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class PaymentMethod:
    """How the buyer pays. Cards carry a PAN (or a token the rail understands);
    wallets carry the buyer's wallet id. ``repr`` never shows the PAN."""

    kind: MethodKind
    pan: str | None = field(default=None, repr=False)
    expiry: str | None = field(default=None, repr=False)   # YYMM, as ISO 8583 field 14
    token: str | None = None
    buyer_id: str | None = None

    @property
    def masked(self) -> str:
        if self.pan:
            return mask_pan(self.pan)
        return self.token or self.buyer_id or ""


# -- requests and results ---------------------------------------------------------


@dataclass(frozen=True)
class AuthorizeRequest:
    """Authorize ``amount`` (and capture it at once when ``capture`` is true)."""

    reference: str
    amount: int
    currency: str
    method: PaymentMethod
    capture: bool = False
    description: str = ""
    #: For FOREX rails: the currency the merchant settles in, if not ``currency``.
    settlement_currency: str | None = None
    notify_url: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CaptureRequest:
    """Capture ``amount`` (at most what remains authorized) of ``rail_reference``.

    ``final=True`` (the default) makes this the last capture: the rail releases
    whatever remains authorized after it, so no void is needed and a later capture is
    declined. ``final=False`` (rails with :attr:`Capability.MULTIPLE_CAPTURE`) keeps
    the remainder held for further captures; a void or a final capture releases it.
    Capturing more than remains authorized is :class:`Declined`.
    """

    reference: str
    rail_reference: str
    amount: int
    currency: str
    final: bool = True   # False when more partial captures will follow


@dataclass(frozen=True)
class VoidRequest:
    """Release what remains authorized of ``rail_reference``.

    ``amount`` is that remainder: the authorized amount minus everything captured so
    far (partial captures with ``final=False``), never the original authorization once
    something was captured. Rails differ in how strictly they hold the caller to it:
    UnionPay refuses any other amount (respCode 36), Alipay unfreezes exactly
    ``amount`` (less leaves the rest frozen), Mir releases the whole remainder and only
    refuses more than was authorized. The result's ``amount`` is what was released;
    after partial captures the transaction stays ``CAPTURED``, with none it becomes
    ``VOIDED``.
    """

    reference: str
    rail_reference: str
    amount: int
    currency: str


@dataclass(frozen=True)
class RefundRequest:
    """Give back ``amount`` (at most what was captured and not yet refunded)."""

    reference: str
    rail_reference: str
    amount: int
    currency: str
    reason: str = ""


@dataclass(frozen=True)
class PayoutRequest:
    """Pay ``amount`` out to ``destination`` (a card PAN, account or wallet id)."""

    reference: str
    amount: int
    currency: str
    destination: str = field(repr=False)
    beneficiary_name: str = ""


class QueryOperation(enum.StrEnum):
    """What kind of operation a :class:`QueryRequest`'s ``reference`` named.

    These are the only values :attr:`QueryRequest.operation` takes. Being a
    ``StrEnum``, each member equals its plain string (``"refund"``), so callers may
    pass either. Rails that look every operation up by reference alone (UnionPay's
    queryTrans by ``orderId``) ignore it; rails that need it (Mir's repeat MTI, Alipay's
    per-product query methods) raise :class:`Unsupported` for a value they cannot look
    up (Mir: ``payout``).
    """

    AUTHORIZE = "authorize"   # authorize(capture=False): a hold
    SALE = "sale"             # authorize(capture=True): authorized and captured at once
    CAPTURE = "capture"       # a capture of an authorization
    VOID = "void"             # a void (release) of an authorization
    REFUND = "refund"         # a refund; Alipay also needs ``rail_reference``
    PAYOUT = "payout"


@dataclass(frozen=True)
class QueryRequest:
    """Ask the rail for the truth about one operation, by our reference.

    ``operation`` is a :class:`QueryOperation` value (``"authorize"`` by default);
    ``rail_reference`` names the original transaction where the rail needs it to find
    the operation (Alipay refunds and voids).
    """

    reference: str
    rail_reference: str | None = None
    #: What kind of operation ``reference`` named: a :class:`QueryOperation` value.
    operation: str = QueryOperation.AUTHORIZE


@dataclass(frozen=True)
class FxDetail:
    """A foreign-exchange leg as the rail quoted or settled it."""

    rate: Decimal                 # units of settlement currency per unit of charge currency
    settlement_amount: int        # minor units of ``settlement_currency``
    settlement_currency: str


@dataclass(frozen=True)
class RailResult:
    """The rail's answer to one operation.

    ``status`` is the state of the original transaction after the operation.
    ``amount`` is what this operation moved (minor units of ``currency``).
    """

    rail: str
    reference: str
    rail_reference: str
    status: TxnStatus
    amount: int
    currency: str
    response_code: str = ""
    approval_code: str = ""
    rrn: str = ""
    fx: FxDetail | None = None
    raw: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Notification:
    """A verified asynchronous notification from the rail.

    ``notification_id`` is stable across the rail's retries of the same event, so the
    service deduplicates on it.
    """

    rail: str
    notification_id: str
    reference: str
    rail_reference: str
    status: TxnStatus
    amount: int
    currency: str
    occurred_at: dt.datetime | None = None
    fx: FxDetail | None = None
    raw: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NotificationAck:
    """What the service must answer the rail so it stops retrying."""

    status_code: int
    body: bytes
    content_type: str = "text/plain"


# -- settlement files -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One line of a rail's settlement file, normalised.

    ``gross`` - ``fee`` = ``net`` in ``currency`` (the currency the transaction was
    made in); when the rail converts, ``settlement_amount`` is what it pays in
    ``settlement_currency`` at ``fx_rate``. Refunds and chargebacks carry negative
    ``gross`` and ``net``.

    ``rail_reference`` is the rail's id of the original transaction, for refunds and
    chargebacks too (Alipay names the ``trade_no`` a capture created, not the
    pre-authorization's ``auth_no``). ``rrn`` (or ``arn``) is the id of the settled
    operation itself, where the file carries one. ``reference`` is ours: the
    authorization's or sale's for payments; for refunds the refund's own reference
    where the file carries it (Mir, Alipay), the original payment's where it carries
    only that (UnionPay's ZM file).
    """

    rail: str
    line_number: int
    record_type: RecordType
    rail_reference: str
    reference: str
    gross: int
    fee: int
    net: int
    currency: str
    transaction_date: dt.date
    settlement_date: dt.date
    rrn: str = ""
    arn: str = ""
    settlement_amount: int | None = None
    settlement_currency: str | None = None
    fx_rate: Decimal | None = None
    status: str = ""


@dataclass(frozen=True, slots=True)
class RecordError:
    """A line that could not be parsed. The parser carries on with the next line."""

    rail: str
    line_number: int
    field: str
    reason: str
    raw: str = ""


class MalformedFile(Malformed):
    """The file as a whole is unusable (empty, not the rail's format at all, or more
    consecutive bad lines than ``max_consecutive_errors``)."""

    code = "rail_file_malformed"

    def __init__(self, message: str, *, rail: str = "", line_number: int = 0,
                 field_name: str = ""):
        super().__init__(message, rail=rail,
                         detail={"line": str(line_number), "field": field_name})
        self.line_number = line_number
        self.field_name = field_name


# -- fees and calendar ------------------------------------------------------------


@dataclass(frozen=True)
class FeeSchedule:
    """The rail's merchant discount: ``fixed`` minor units plus ``rate`` of the amount,
    rounded half up to the minor unit. Refunds return no fee unless
    ``refund_fee_returned``."""

    rate: Decimal
    fixed: int = 0
    refund_fee_returned: bool = False

    def fee_for(self, amount: int, record_type: RecordType = RecordType.PAYMENT) -> int:
        if record_type is not RecordType.PAYMENT and not self.refund_fee_returned:
            return 0
        variable = (Decimal(abs(amount)) * self.rate).quantize(Decimal(1), rounding="ROUND_HALF_UP")
        fee = int(variable) + self.fixed
        return fee if amount >= 0 else -fee


@dataclass(frozen=True)
class SettlementCalendar:
    """When the rail pays: ``lag_days`` after the transaction date (T+lag), counted in
    business days when ``business_days_only`` (Saturday and Sunday skipped);
    ``sla_days`` more before a missing record counts as missing."""

    lag_days: int = 1
    business_days_only: bool = True
    sla_days: int = 2

    def _add(self, day: dt.date, days: int) -> dt.date:
        while days > 0:
            day += dt.timedelta(days=1)
            if not self.business_days_only or day.weekday() < 5:
                days -= 1
        return day

    def expected_settlement_date(self, transaction_date: dt.date) -> dt.date:
        return self._add(transaction_date, self.lag_days)

    def missing_after(self, transaction_date: dt.date) -> dt.date:
        return self._add(self.expected_settlement_date(transaction_date), self.sla_days)


# -- the SPI ----------------------------------------------------------------------


@runtime_checkable
class PaymentRail(Protocol):
    """A client of one payment rail. Every method is synchronous and thread-safe."""

    name: str
    currencies: frozenset[str]
    capabilities: Capability
    fee_schedule: FeeSchedule
    calendar: SettlementCalendar

    def authorize(self, request: AuthorizeRequest) -> RailResult:
        """Authorize (or sell, when ``request.capture``). Raises :class:`Declined`."""
        ...

    def capture(self, request: CaptureRequest) -> RailResult:
        """Capture part or all of an authorization."""
        ...

    def void(self, request: VoidRequest) -> RailResult:
        """Cancel an authorization (or the uncaptured rest of it)."""
        ...

    def refund(self, request: RefundRequest) -> RailResult:
        """Refund part or all of a captured amount."""
        ...

    def query(self, request: QueryRequest) -> RailResult:
        """The rail's current truth about one operation; ``TxnStatus.NOT_FOUND`` when
        the rail never saw it."""
        ...

    def payout(self, request: PayoutRequest) -> RailResult:
        """Send money out. Raises :class:`Unsupported` where the rail has no payouts."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification:
        """Verify and parse an incoming notification. Raises :class:`SignatureInvalid`
        or :class:`Malformed`; never returns an unverified notification."""
        ...

    def notification_ack(self, notification: Notification | None) -> NotificationAck:
        """The answer that tells the rail a notification was (or was not) accepted."""
        ...

    def parse_settlement_file(self, stream: BinaryIO) -> Iterator[SettlementRecord | RecordError]:
        """Stream a settlement file: one item per data line, in file order, with memory
        that does not grow with the file. Bad lines come out as :class:`RecordError`
        naming the line and field; raises :class:`MalformedFile` only when the file as
        a whole is unusable."""
        ...


class DiscrepancyKind(enum.StrEnum):
    """What a simulator can get wrong, on purpose, in a settlement file.

    An injected REFUND or CHARGEBACK record keeps the ``reference`` and
    ``rail_reference`` of the payment it reverses and carries a new operation id in
    ``rrn``. Mir's register writes it in ``RRN`` (``ORIGINAL_RRN`` is the payment's);
    UnionPay's ZM file as the line's ``traceNo`` + ``traceTime``; Alipay's file has no
    column for it, so there the record is told from the payment only by its ``Type``
    and sign. UNKNOWN adds a payment under a ``reference`` and ``rail_reference``
    nobody issued (``UNKNOWN...``) unless the discrepancy names a reference.
    FX_RATE_DIFFERS applies only to converted (forex) records; a simulator whose file
    has no FX rate field (Mir's register, UnionPay's ZM file: those rails settle in one
    currency) refuses it with :class:`~adapters.simulation.DiscrepancyNotCarried`.
    """

    MISSING = "missing"              # a processed transaction is left out
    DUPLICATE = "duplicate"          # a record appears twice
    FEE_DIFFERS = "fee_differs"      # the fee is not the schedule's
    FX_RATE_DIFFERS = "fx_rate_differs"  # the settlement rate is not the quoted one
    LATE = "late"                    # the record is held back to the next file
    REFUND = "refund"                # an extra refund record the service did not ask for
    CHARGEBACK = "chargeback"        # a chargeback against a settled payment
    UNKNOWN = "unknown"              # a record for a transaction the service never sent
    AMOUNT_DIFFERS = "amount_differs"  # the gross amount differs


@dataclass(frozen=True)
class Discrepancy:
    """One injected discrepancy. ``reference`` names our reference it applies to
    (ignored for UNKNOWN); ``delta`` is in minor units (fee/amount changes) and
    ``rate`` the replacement FX rate."""

    kind: DiscrepancyKind
    reference: str | None = None
    delta: int = 0
    rate: Decimal | None = None


@runtime_checkable
class RailSimulator(Protocol):
    """A stand-in for the rail, listening on a real loopback socket."""

    name: str

    def start(self) -> None:
        """Start listening (on a free port unless one was configured)."""
        ...

    def stop(self) -> None:
        ...

    def adapter_config(self) -> dict[str, str]:
        """The configuration a :class:`PaymentRail` needs to talk to this simulator
        (endpoints, merchant ids, keys as PEM text)."""
        ...

    def approving_method(self) -> PaymentMethod:
        """A payment method the simulator approves."""
        ...

    def declining_method(self) -> tuple[PaymentMethod, str]:
        """A payment method the simulator declines, and the rail code it answers."""
        ...

    def transaction_status(self, reference: str) -> TxnStatus:
        """The simulator's own record of an operation (for tests and the janitor)."""
        ...

    def notification_for(self, reference: str) -> tuple[Mapping[str, str], bytes]:
        """The asynchronous notification (HTTP headers, body) the rail sends about the
        operation ``reference``, signed as the simulator signs (so a ``wrong-key``
        simulator's fails verification), as :meth:`PaymentRail.parse_notification`
        takes it. It reports the event that operation caused (an authorization's
        notification says AUTHORIZED even after a capture) and carries the same
        notification id every time it is asked for, as the rail's retries do. Raises
        :class:`Unsupported` on rails without :attr:`Capability.NOTIFICATIONS` and
        ``KeyError`` for a reference the simulator never processed."""
        ...

    def write_settlement_file(self, out: BinaryIO, settlement_date: dt.date,
                              discrepancies: Sequence[Discrepancy] = (),
                              seed: int | None = None,
                              rate: Decimal = Decimal(0)) -> list[Discrepancy]:
        """Write the settlement file for what settled on ``settlement_date`` (every
        captured, refunded or paid-out operation not yet written, plus records held
        back as LATE earlier), every record dated ``settlement_date``.
        ``discrepancies`` are applied as listed; with ``seed``, each eligible record
        also gets a random discrepancy with probability ``rate``, the same ones for the
        same seed and records. Returns every discrepancy actually applied, so tests
        can assert outcomes."""
        ...


@runtime_checkable
class RailPlugin(Protocol):
    """What the entry point ``settlement.rails`` names: builds adapters and simulators."""

    name: str

    def create_rail(self, config: Mapping[str, str]) -> PaymentRail:
        ...

    def create_simulator(self, **options: str) -> RailSimulator:
        ...
