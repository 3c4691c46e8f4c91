"""What every rail simulator shares: its book of settled operations, the injection of
discrepancies into settlement files, and a loopback HTTP server.

A simulator records each money movement it approves (capture, sale, refund, payout)
as a pending :class:`~adapters.base.SettlementRecord` with ``line_number`` 0. When
asked for a settlement file it takes every pending record, applies the requested
discrepancies with :func:`apply_discrepancies`, and hands the result to the rail's
own file writer, which numbers the lines.

Not every file can carry every kind of discrepancy: a file without an FX rate field
cannot show a rate that differs. Each simulator states what its file cannot carry
(kind -> why); :func:`refuse_uncarried` refuses such a kind asked for by explicit
list with :class:`DiscrepancyNotCarried` before anything is taken from the book, and
:func:`random_kinds` keeps a seeded run to the kinds the file can carry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from adapters.base import Discrepancy, DiscrepancyKind, RecordType, SettlementRecord
from adapters.statements.base import currency_exponent

#: Seconds between ``serve_forever``'s checks for a shutdown request.
POLL_INTERVAL = 0.01

logger = logging.getLogger(__name__)

#: Discrepancies a seeded run may pick for a payment record.
RANDOM_KINDS: tuple[DiscrepancyKind, ...] = (
    DiscrepancyKind.MISSING,
    DiscrepancyKind.DUPLICATE,
    DiscrepancyKind.FEE_DIFFERS,
    DiscrepancyKind.LATE,
    DiscrepancyKind.REFUND,
    DiscrepancyKind.CHARGEBACK,
    DiscrepancyKind.AMOUNT_DIFFERS,
)


class DiscrepancyNotCarried(ValueError):
    """A discrepancy was asked for by explicit list whose kind the rail's settlement
    file cannot carry (a rate that differs, in a file with no rate field). Nothing is
    written and the simulator's book is left as it was."""

    code = "discrepancy_not_carried"

    def __init__(self, rail: str, kind: DiscrepancyKind, why: str) -> None:
        super().__init__(f"the {rail} settlement file cannot carry {kind.name}: {why}")
        self.rail = rail
        self.kind = kind
        self.why = why


def refuse_uncarried(rail: str, discrepancies: Iterable[Discrepancy],
                     not_carried: Mapping[DiscrepancyKind, str]) -> None:
    """Raise :class:`DiscrepancyNotCarried` for the first of ``discrepancies`` whose kind
    is in ``not_carried`` (kind -> why the file cannot carry it)."""
    for d in discrepancies:
        why = not_carried.get(d.kind)
        if why is not None:
            raise DiscrepancyNotCarried(rail, d.kind, why)


def random_kinds(not_carried: Mapping[DiscrepancyKind, str]) -> tuple[DiscrepancyKind, ...]:
    """:data:`RANDOM_KINDS` less the kinds the file cannot carry, in the same order (so a
    seed plans the same when nothing is left out)."""
    return tuple(kind for kind in RANDOM_KINDS if kind not in not_carried)


class SettlementBook:
    """Thread-safe list of records waiting to be written, plus records held back as
    LATE for the next file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[SettlementRecord] = []
        self._held: list[SettlementRecord] = []

    def add(self, record: SettlementRecord) -> None:
        with self._lock:
            self._pending.append(record)

    def take(self) -> tuple[list[SettlementRecord], list[SettlementRecord]]:
        """Remove and return (new records, records held back from the previous file)."""
        with self._lock:
            pending, held = self._pending, self._held
            self._pending, self._held = [], []
            return pending, held

    def hold_back(self, records: Iterable[SettlementRecord]) -> None:
        with self._lock:
            self._held.extend(records)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._held)


def _with_settlement(record: SettlementRecord, rate: Decimal) -> SettlementRecord:
    """Recompute the settlement amount of ``record``: its ``net`` at ``rate`` (units of
    the settlement currency per unit of the record's), scaled between the two
    currencies' exponents and rounded half up to the settlement currency's minor unit."""
    shift = currency_exponent(record.settlement_currency or record.currency) - currency_exponent(record.currency)
    amount = (Decimal(record.net) * rate).scaleb(shift).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return dataclasses.replace(record, fx_rate=rate, settlement_amount=int(amount))


def new_operation_id(record: SettlementRecord) -> str:
    """A fresh 12-digit id (the width of an ISO 8583 RRN) for an operation a
    discrepancy invents, such as an injected refund of ``record``."""
    return f"{uuid.uuid4().int % 10**12:012d}"


def plan_random(records: Sequence[SettlementRecord], seed: int, rate: Decimal,
                kinds: Sequence[DiscrepancyKind] = RANDOM_KINDS) -> list[Discrepancy]:
    """Pick, reproducibly from ``seed``, a discrepancy for each payment record with
    probability ``rate`` (at most one per reference)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    planned: list[Discrepancy] = []
    threshold = float(rate)  # float-ok: a probability compared with random(), never money
    for record in records:
        if record.record_type is not RecordType.PAYMENT or rng.random() >= threshold:
            continue
        kind = kinds[rng.randrange(len(kinds))]
        delta = rng.randrange(1, 500) if kind in (DiscrepancyKind.FEE_DIFFERS,
                                                  DiscrepancyKind.AMOUNT_DIFFERS) else 0
        planned.append(Discrepancy(kind, reference=record.reference, delta=delta))
    return planned


def apply_discrepancies(
    records: Sequence[SettlementRecord],
    discrepancies: Sequence[Discrepancy],
    *,
    rail: str,
    settlement_date: dt.date,
    chargeback_fee: int = 0,
    currency: str | None = None,
    operation_id: Callable[[SettlementRecord], str] = new_operation_id,
) -> tuple[list[SettlementRecord], list[SettlementRecord], list[Discrepancy]]:
    """Apply ``discrepancies`` to ``records``.

    Returns (records to write, records held back for the next file, discrepancies
    actually applied). A discrepancy that cannot apply to these records is not applied
    (and not returned): one naming a reference that is not among the records,
    FX_RATE_DIFFERS on a record that was not converted (a CNY trade in a file that has
    rates for its forex trades), UNKNOWN with no payment record to take a currency
    from and no ``currency`` given. A kind the whole file cannot carry is the caller's
    to refuse first, with :func:`refuse_uncarried`.

    REFUND and CHARGEBACK add a record of that type for the named payment: same
    ``reference`` and ``rail_reference`` (the original transaction's), ``gross`` and
    ``net`` negative (``delta`` or the payment's gross; a chargeback also costs
    ``chargeback_fee``), and ``rrn`` = ``operation_id(payment)``, the new operation's
    id, ``arn`` empty. UNKNOWN adds a payment of ``delta`` (default 100.00 in minor
    units of two decimals) that nobody asked for, under the discrepancy's reference
    or an invented ``UNKNOWN...`` one.
    """
    by_reference: dict[str, list[int]] = {}
    for index, each in enumerate(records):
        by_reference.setdefault(each.reference, []).append(index)
    out: list[SettlementRecord | None] = list(records)
    extra: list[SettlementRecord] = []
    held: list[SettlementRecord] = []
    applied: list[Discrepancy] = []

    for d in discrepancies:
        if d.kind is DiscrepancyKind.UNKNOWN:
            unknown = _unknown(records, d, rail=rail, settlement_date=settlement_date, currency=currency)
            if unknown is not None:
                extra.append(unknown)
                applied.append(d)
            continue
        indexes = [i for i in by_reference.get(d.reference or "", []) if out[i] is not None]
        payment_indexes = [i for i in indexes if records[i].record_type is RecordType.PAYMENT] or indexes
        if not payment_indexes:
            continue
        i = payment_indexes[0]
        record = out[i]
        assert record is not None
        match d.kind:
            case DiscrepancyKind.MISSING:
                out[i] = None
            case DiscrepancyKind.DUPLICATE:
                extra.append(record)
            case DiscrepancyKind.LATE:
                # The next file's writer dates it; this date only marks it as held.
                held.append(dataclasses.replace(record, settlement_date=settlement_date + dt.timedelta(days=1)))
                out[i] = None
            case DiscrepancyKind.REFUND | DiscrepancyKind.CHARGEBACK:
                extra.append(_reversal(record, d, settlement_date=settlement_date, chargeback_fee=chargeback_fee,
                                       operation_id=operation_id))
            case _:
                changed = _changed(record, d)
                if changed is None:
                    continue
                out[i] = changed
        applied.append(d)
    written = [r for r in out if r is not None] + extra
    return written, held, applied


def _changed(record: SettlementRecord, d: Discrepancy) -> SettlementRecord | None:
    """``record`` with a FEE_DIFFERS, AMOUNT_DIFFERS or FX_RATE_DIFFERS applied; None
    when it cannot apply (a rate difference on a record that was not converted)."""
    delta = d.delta or 1
    if d.kind is DiscrepancyKind.FEE_DIFFERS:
        return _adjust_settlement(dataclasses.replace(record, fee=record.fee + delta, net=record.net - delta),
                                  record)
    if d.kind is DiscrepancyKind.AMOUNT_DIFFERS:
        return _adjust_settlement(dataclasses.replace(record, gross=record.gross + delta,
                                                      net=record.net + delta), record)
    if d.kind is DiscrepancyKind.FX_RATE_DIFFERS and record.fx_rate is not None:
        rate = d.rate or record.fx_rate * Decimal("1.01")
        return _with_settlement(record, rate.quantize(Decimal("0.000001")))
    return None


def _reversal(record: SettlementRecord, d: Discrepancy, *, settlement_date: dt.date, chargeback_fee: int,
              operation_id: Callable[[SettlementRecord], str]) -> SettlementRecord:
    """The REFUND or CHARGEBACK record ``d`` adds against the payment ``record``."""
    kind = RecordType.REFUND if d.kind is DiscrepancyKind.REFUND else RecordType.CHARGEBACK
    amount = d.delta or record.gross
    fee = chargeback_fee if kind is RecordType.CHARGEBACK else 0
    # The original's rail_reference stays: it names the transaction this reverses;
    # the reversal's own id travels in rrn.
    reversed_record = dataclasses.replace(
        record, record_type=kind, gross=-amount, fee=fee, net=-amount - fee,
        rrn=operation_id(record), arn="", settlement_date=settlement_date)
    return _adjust_settlement(reversed_record, record)


def _unknown(records: Sequence[SettlementRecord], d: Discrepancy, *, rail: str, settlement_date: dt.date,
             currency: str | None) -> SettlementRecord | None:
    """The payment UNKNOWN adds, in the currency (and conversion) of the first payment
    among ``records``, else ``currency``; None when neither says which currency."""
    base = next((r for r in records if r.record_type is RecordType.PAYMENT), None)
    unknown_currency = base.currency if base else currency
    if unknown_currency is None:
        return None
    gross = d.delta or 10_000
    token = uuid.uuid4().hex[:16].upper()
    converted = base is not None and base.fx_rate is not None
    return SettlementRecord(
        rail=rail, line_number=0, record_type=RecordType.PAYMENT,
        rail_reference=f"UNK{token}", reference=d.reference or f"UNKNOWN{token}",
        gross=gross, fee=0, net=gross, currency=unknown_currency,
        transaction_date=settlement_date - dt.timedelta(days=1), settlement_date=settlement_date,
        settlement_amount=gross if converted else None,
        settlement_currency=base.settlement_currency if base else None,
        fx_rate=Decimal(1) if converted else None)


def _adjust_settlement(changed: SettlementRecord, original: SettlementRecord) -> SettlementRecord:
    """Keep the settlement amount consistent with a changed net at the original rate."""
    if original.fx_rate is None or original.settlement_amount is None:
        return changed
    return _with_settlement(changed, original.fx_rate)


class LoggingHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` that reports a failed request through :mod:`logging`
    instead of printing a traceback to stderr. A peer that hung up (a client that timed
    out, say) is routine for a server and logged at debug level."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            logger.debug("client %s:%s went away mid-request", *client_address[:2])
            return
        logger.exception("request from %s:%s failed", *client_address[:2])


class LoopbackHTTPServer:
    """A :class:`LoggingHTTPServer` on 127.0.0.1 run in a daemon thread.

    ``port=0`` picks a free port; :attr:`url` is known once :meth:`start` returns.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self._handler = handler
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            return
        server = LoggingHTTPServer(("127.0.0.1", self._port), self._handler)
        self._server = server
        # shutdown() waits for serve_forever to notice, which it does once per poll
        # interval (0.5 s by default): a short one keeps stopping a simulator cheap.
        self._thread = threading.Thread(target=server.serve_forever, name=f"sim-http-{self.port}",
                                        kwargs={"poll_interval": POLL_INTERVAL}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
