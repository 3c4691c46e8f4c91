"""What every rail simulator shares: its book of settled operations, the injection of
discrepancies into settlement files, and a loopback HTTP server.

A simulator records each money movement it approves (capture, sale, refund, payout)
as a pending :class:`~adapters.base.SettlementRecord` with ``line_number`` 0. When
asked for a settlement file it takes every pending record, applies the requested
discrepancies with :func:`apply_discrepancies`, and hands the result to the rail's
own file writer, which numbers the lines.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
import uuid
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from adapters.base import Discrepancy, DiscrepancyKind, RecordType, SettlementRecord

#: Seconds between ``serve_forever``'s checks for a shutdown request.
POLL_INTERVAL = 0.01

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
    """Recompute the settlement amount of ``record`` at ``rate`` (half up to the minor
    unit). Every currency these rails convert between (CNY, RUB, USD, EUR, HKD) has
    two decimals, so minor units scale by the rate alone."""
    amount = (Decimal(record.net) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return dataclasses.replace(record, fx_rate=rate, settlement_amount=int(amount))


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
) -> tuple[list[SettlementRecord], list[SettlementRecord], list[Discrepancy]]:
    """Apply ``discrepancies`` to ``records``.

    Returns (records to write, records held back for the next file, discrepancies
    actually applied). A discrepancy naming a reference that is not among the
    records is not applied (and not returned). REFUND and CHARGEBACK add a record of
    that type for the named payment; UNKNOWN adds a payment nobody asked for.
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
            base = next((r for r in records if r.record_type is RecordType.PAYMENT), None)
            currency = base.currency if base else "CNY"
            gross = d.delta or 10_000
            extra.append(SettlementRecord(
                rail=rail, line_number=0, record_type=RecordType.PAYMENT,
                rail_reference=f"UNK{uuid.uuid4().hex[:16].upper()}", reference=d.reference or "",
                gross=gross, fee=0, net=gross, currency=currency,
                transaction_date=settlement_date - dt.timedelta(days=1), settlement_date=settlement_date,
                settlement_amount=gross if base and base.settlement_amount is not None else None,
                settlement_currency=base.settlement_currency if base else None,
                fx_rate=Decimal(1) if base and base.fx_rate is not None else None))
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
                next_day = settlement_date + dt.timedelta(days=1)
                held.append(dataclasses.replace(record, settlement_date=next_day))
                out[i] = None
            case DiscrepancyKind.FEE_DIFFERS:
                delta = d.delta or 1
                out[i] = _adjust_settlement(dataclasses.replace(
                    record, fee=record.fee + delta, net=record.net - delta), record)
            case DiscrepancyKind.AMOUNT_DIFFERS:
                delta = d.delta or 1
                out[i] = _adjust_settlement(dataclasses.replace(
                    record, gross=record.gross + delta, net=record.net + delta), record)
            case DiscrepancyKind.FX_RATE_DIFFERS:
                rate = d.rate or (record.fx_rate or Decimal(1)) * Decimal("1.01")
                out[i] = _with_settlement(record, rate.quantize(Decimal("0.000001")))
            case DiscrepancyKind.REFUND | DiscrepancyKind.CHARGEBACK:
                kind = RecordType.REFUND if d.kind is DiscrepancyKind.REFUND else RecordType.CHARGEBACK
                amount = d.delta or record.gross
                fee = chargeback_fee if kind is RecordType.CHARGEBACK else 0
                reversed_record = dataclasses.replace(
                    record, record_type=kind, gross=-amount, fee=fee, net=-amount - fee,
                    rail_reference=f"{record.rail_reference}{'R' if kind is RecordType.REFUND else 'C'}",
                    settlement_date=settlement_date)
                extra.append(_adjust_settlement(reversed_record, record))
        applied.append(d)
    written = [r for r in out if r is not None] + extra
    return written, held, applied


def _adjust_settlement(changed: SettlementRecord, original: SettlementRecord) -> SettlementRecord:
    """Keep the settlement amount consistent with a changed net at the original rate."""
    if original.fx_rate is None or original.settlement_amount is None:
        return changed
    return _with_settlement(changed, original.fx_rate)


class LoopbackHTTPServer:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 run in a daemon thread.

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
        server = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler)
        server.daemon_threads = True
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
