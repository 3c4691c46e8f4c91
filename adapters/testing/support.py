"""What the conformance checks share: running a simulator with its adapter, unique
references, payments made the way the rail's capabilities allow, expecting an error,
and settlement files written and parsed back."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from adapters.base import (
    AuthorizeRequest,
    Capability,
    CaptureRequest,
    Discrepancy,
    PaymentRail,
    RailError,
    RailPlugin,
    RailResult,
    RailSimulator,
    RecordError,
    SettlementRecord,
)
from adapters.statements.base import currency_exponent

_counter = itertools.count(1)
_E = TypeVar("_E", bound=BaseException)


def new_reference(prefix: str = "conf") -> str:
    """A reference unique across runs, short enough for every rail's field widths."""
    return f"{prefix}{next(_counter):04d}{uuid.uuid4().hex[:12]}"


@contextmanager
def running(plugin: RailPlugin, **options: str) -> Iterator[tuple[RailSimulator, PaymentRail]]:
    """Start the plugin's simulator and yield it with an adapter configured for it."""
    simulator = plugin.create_simulator(**options)
    simulator.start()
    try:
        rail = plugin.create_rail(simulator.adapter_config())
        try:
            yield simulator, rail
        finally:
            close = getattr(rail, "close", None)
            if callable(close):
                close()
    finally:
        simulator.stop()


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def currency_of(rail: PaymentRail) -> str:
    """The currency the checks pay in: the first of the rail's, alphabetically."""
    return sorted(rail.currencies)[0]


def separate_capture(rail: PaymentRail) -> bool:
    """Whether the rail holds first and captures later (else the checks sell)."""
    return Capability.AUTHORIZE in rail.capabilities


def authorize(rail: PaymentRail, sim: RailSimulator, amount: int, *, capture: bool = False,
              reference: str | None = None, currency: str | None = None) -> tuple[AuthorizeRequest, RailResult]:
    request = AuthorizeRequest(reference=reference or new_reference(), amount=amount,
                               currency=currency or currency_of(rail), method=sim.approving_method(),
                               capture=capture, description="conformance")
    return request, rail.authorize(request)


@dataclass(frozen=True)
class Payment:
    """A payment the checks made and captured in full."""

    reference: str               # the authorization's or sale's
    rail_reference: str
    amount: int
    currency: str
    authorized: RailResult       # the answer to authorize
    capture_reference: str = ""  # empty for a sale


def captured_payment(rail: PaymentRail, sim: RailSimulator, amount: int, *, currency: str | None = None,
                     reference: str | None = None, sale: bool = False) -> Payment:
    """Authorize and capture ``amount`` in full, or sell it where the rail has no
    separate authorization (or, with ``sale``, wherever it can sell: one round trip)."""
    separate = separate_capture(rail) and not (sale and Capability.SALE in rail.capabilities)
    request, result = authorize(rail, sim, amount, capture=not separate, currency=currency, reference=reference)
    capture_reference = ""
    if separate:
        capture_reference = new_reference("cap")
        rail.capture(CaptureRequest(reference=capture_reference, rail_reference=result.rail_reference,
                                    amount=amount, currency=request.currency))
    return Payment(request.reference, result.rail_reference, amount, request.currency, result, capture_reference)


def expect(error: type[_E], action: Callable[[], object], what: str) -> _E:
    """Run ``action`` and return the ``error`` it raises; an AssertionError naming
    ``what`` when it succeeds or raises another rail error instead."""
    try:
        action()
    except error as exc:
        return exc
    except RailError as exc:
        raise AssertionError(f"{what}: expected {error.__name__}, got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"{what}: expected {error.__name__}, but it was accepted")


def settle(sim: RailSimulator, rail: PaymentRail, settlement_date: dt.date,
           discrepancies: Sequence[Discrepancy] = (), *, seed: int | None = None,
           rate: Decimal = Decimal(0)) -> tuple[list[SettlementRecord], list[Discrepancy], bytes]:
    """Have the simulator write its settlement file for ``settlement_date`` and parse it
    with the adapter: (records, discrepancies applied, the file's bytes). The
    simulator's own file must parse without a single error."""
    buffer = io.BytesIO()
    applied = sim.write_settlement_file(buffer, settlement_date, discrepancies, seed=seed, rate=rate)
    data = buffer.getvalue()
    items = list(rail.parse_settlement_file(io.BytesIO(data)))
    errors = [item for item in items if isinstance(item, RecordError)]
    assert not errors, f"the simulator's own file did not parse: {errors[:3]}"
    records = [item for item in items if isinstance(item, SettlementRecord)]
    for record in records:
        assert record.line_number > 0, "records must carry their line number"
        assert record.rail == rail.name, f"line {record.line_number}: rail {record.rail!r}"
        assert record.gross - record.fee == record.net, f"line {record.line_number}: gross - fee != net"
    return records, applied, data


def by_reference(records: Sequence[SettlementRecord]) -> dict[str, list[SettlementRecord]]:
    found: dict[str, list[SettlementRecord]] = {}
    for record in records:
        found.setdefault(record.reference, []).append(record)
    return found


def converted(net: int, currency: str, rate: Decimal, into: str) -> int:
    """``net`` minor units of ``currency`` at ``rate`` in minor units of ``into``, half up."""
    shift = currency_exponent(into) - currency_exponent(currency)
    return int((Decimal(net) * rate).scaleb(shift).quantize(Decimal(1), rounding=ROUND_HALF_UP))
