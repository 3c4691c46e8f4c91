"""Conformance suite every rail adapter must pass against its own simulator.

Each check is a plain function taking a :class:`~adapters.base.RailPlugin`; it starts
the plugin's simulator on a loopback port, talks to it through the plugin's adapter
over the real socket, and raises :class:`AssertionError` naming what broke. A test
suite runs them with::

    @pytest.mark.parametrize("check", CONFORMANCE_CHECKS, ids=lambda c: c.__name__)
    def test_conformance(check):
        check(my_plugin)

Simulator options the suite relies on (passed to ``create_simulator``):

* ``signing="wrong-key"``: the simulator signs (or MACs) with a key the adapter's
  configuration does not trust, so every answer must fail verification.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from adapters.base import (
    AuthorizeRequest,
    Capability,
    CaptureRequest,
    Declined,
    Discrepancy,
    DiscrepancyKind,
    PaymentRail,
    QueryRequest,
    RailPlugin,
    RailResult,
    RailSimulator,
    RecordError,
    RecordType,
    RefundRequest,
    SettlementRecord,
    SignatureInvalid,
    TxnStatus,
    VoidRequest,
)

_counter = itertools.count(1)


def new_reference(prefix: str = "conf") -> str:
    """A reference unique across runs, short enough for every rail's field widths."""
    return f"{prefix}{next(_counter):04d}{uuid.uuid4().hex[:12]}"


@contextmanager
def running(plugin: RailPlugin, **options: str) -> Iterator[tuple[RailSimulator, PaymentRail]]:
    """Start the plugin's simulator and yield it with an adapter configured for it."""
    simulator = plugin.create_simulator(**options)
    simulator.start()
    try:
        yield simulator, plugin.create_rail(simulator.adapter_config())
    finally:
        simulator.stop()


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _currency(rail: PaymentRail) -> str:
    return sorted(rail.currencies)[0]


def _authorize(rail: PaymentRail, sim: RailSimulator, amount: int, *, capture: bool = False,
               reference: str | None = None) -> tuple[AuthorizeRequest, RailResult]:
    request = AuthorizeRequest(reference=reference or new_reference(), amount=amount,
                               currency=_currency(rail), method=sim.approving_method(),
                               capture=capture, description="conformance")
    return request, rail.authorize(request)


def check_spi_shape(plugin: RailPlugin) -> None:
    """The adapter and simulator satisfy the SPI protocols and describe themselves."""
    with running(plugin) as (sim, rail):
        assert isinstance(rail, PaymentRail), "adapter does not satisfy PaymentRail"
        assert isinstance(sim, RailSimulator), "simulator does not satisfy RailSimulator"
        assert rail.name == plugin.name == sim.name
        assert rail.currencies, "a rail must name its currencies"
        assert all(len(c) == 3 and c.isupper() for c in rail.currencies)
        assert rail.fee_schedule.fee_for(100_000) >= 0
        today = dt.date(2026, 1, 5)
        assert rail.calendar.expected_settlement_date(today) > today


def check_round_trip(plugin: RailPlugin) -> None:
    """authorize -> capture -> refund, with the simulator agreeing at each step."""
    with running(plugin) as (sim, rail):
        separate = Capability.AUTHORIZE in rail.capabilities
        req, _ = _authorize(rail, sim, 150_00, capture=not separate)
        status = rail.query(QueryRequest(reference=req.reference))
        expected = TxnStatus.AUTHORIZED if separate else TxnStatus.CAPTURED
        assert status.status is expected, f"after authorize the rail says {status.status}"
        rail_reference = status.rail_reference
        assert rail_reference, "query must return the rail's reference"
        if separate:
            cap = rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=rail_reference,
                                              amount=150_00, currency=req.currency))
            assert cap.status is TxnStatus.CAPTURED, f"capture answered {cap.status}"
            assert cap.amount == 150_00
        assert sim.transaction_status(req.reference) is TxnStatus.CAPTURED
        refund_amount = 50_00 if Capability.PARTIAL_REFUND in rail.capabilities else 150_00
        ref = rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=rail_reference,
                                        amount=refund_amount, currency=req.currency))
        assert ref.status is TxnStatus.REFUNDED, f"refund answered {ref.status}"
        assert ref.amount == refund_amount


def check_void(plugin: RailPlugin) -> None:
    """An authorization can be voided, after which capture is refused."""
    with running(plugin) as (sim, rail):
        if Capability.VOID not in rail.capabilities or Capability.AUTHORIZE not in rail.capabilities:
            return
        req, result = _authorize(rail, sim, 99_00)
        assert result.status is TxnStatus.AUTHORIZED
        rail_reference = result.rail_reference
        voided = rail.void(VoidRequest(reference=new_reference("void"), rail_reference=rail_reference,
                                       amount=99_00, currency=req.currency))
        assert voided.status is TxnStatus.VOIDED
        assert sim.transaction_status(req.reference) is TxnStatus.VOIDED
        try:
            rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=rail_reference,
                                        amount=99_00, currency=req.currency))
        except Declined:
            pass
        else:
            raise AssertionError("capture after void was accepted")


def check_decline_code(plugin: RailPlugin) -> None:
    """A declined method raises Declined carrying the rail's own code."""
    with running(plugin) as (sim, rail):
        method, code = sim.declining_method()
        request = AuthorizeRequest(reference=new_reference(), amount=10_00, currency=_currency(rail),
                                   method=method, capture=Capability.AUTHORIZE not in rail.capabilities)
        try:
            rail.authorize(request)
        except Declined as exc:
            assert exc.rail_code == code, f"decline code {exc.rail_code!r}, expected {code!r}"
        else:
            raise AssertionError("the declining method was approved")


def check_idempotent_retry(plugin: RailPlugin) -> None:
    """The same request with the same reference moves money once."""
    with running(plugin) as (sim, rail):
        capture = Capability.AUTHORIZE not in rail.capabilities
        req, first = _authorize(rail, sim, 42_00, capture=capture)
        second = rail.authorize(req)
        assert second.rail_reference == first.rail_reference, "a retry created a second transaction"
        assert second.amount == first.amount
        if not capture:
            cap = CaptureRequest(reference=new_reference("cap"), rail_reference=second.rail_reference,
                                 amount=42_00, currency=req.currency)
            assert rail.capture(cap).amount == rail.capture(cap).amount == 42_00
        buffer = io.BytesIO()
        sim.write_settlement_file(buffer, _today() + dt.timedelta(days=1))
        buffer.seek(0)
        mine = [r for r in rail.parse_settlement_file(buffer)
                if isinstance(r, SettlementRecord) and r.reference == req.reference
                and r.record_type is RecordType.PAYMENT]
        assert len(mine) == 1, f"retried payment settled {len(mine)} times"


def check_signature_failure(plugin: RailPlugin) -> None:
    """Answers signed with an untrusted key are refused with SignatureInvalid."""
    with running(plugin, signing="wrong-key") as (sim, rail):
        try:
            _authorize(rail, sim, 10_00, capture=Capability.AUTHORIZE not in rail.capabilities)
        except SignatureInvalid:
            pass
        else:
            raise AssertionError("an answer signed with the wrong key was accepted")


def check_file_round_trip(plugin: RailPlugin) -> None:
    """Every captured payment comes back in the settlement file with gross - fee = net,
    and injected discrepancies show up as declared."""
    with running(plugin) as (sim, rail):
        capture = Capability.AUTHORIZE not in rail.capabilities
        references: list[str] = []
        for amount in (100_00, 250_50, 999_99, 12_34):
            req, result = _authorize(rail, sim, amount, capture=capture)
            if not capture:
                rail.capture(CaptureRequest(reference=new_reference("cap"),
                                            rail_reference=result.rail_reference,
                                            amount=amount, currency=req.currency))
            references.append(req.reference)
        missing, duplicated = references[0], references[1]
        injected = [Discrepancy(DiscrepancyKind.MISSING, reference=missing),
                    Discrepancy(DiscrepancyKind.DUPLICATE, reference=duplicated)]
        buffer = io.BytesIO()
        applied = sim.write_settlement_file(buffer, _today() + dt.timedelta(days=1), injected)
        assert {(d.kind, d.reference) for d in applied} >= {(d.kind, d.reference) for d in injected}
        buffer.seek(0)
        items = list(rail.parse_settlement_file(buffer))
        errors = [i for i in items if isinstance(i, RecordError)]
        assert not errors, f"the simulator's own file did not parse: {errors[:3]}"
        payments = [i for i in items
                    if isinstance(i, SettlementRecord) and i.record_type is RecordType.PAYMENT]
        by_ref: dict[str, list[SettlementRecord]] = {}
        for record in payments:
            by_ref.setdefault(record.reference, []).append(record)
            assert record.gross - record.fee == record.net, f"line {record.line_number}: gross-fee != net"
            assert record.line_number > 0
        assert missing not in by_ref, "a MISSING record was written"
        assert len(by_ref.get(duplicated, [])) == 2, "a DUPLICATE record was not written twice"
        for reference in references[2:]:
            assert len(by_ref.get(reference, [])) == 1, f"{reference} not settled exactly once"
            record = by_ref[reference][0]
            assert record.fee == rail.fee_schedule.fee_for(record.gross), "fee differs from the schedule"


CONFORMANCE_CHECKS: list[Callable[[RailPlugin], None]] = [
    check_spi_shape,
    check_round_trip,
    check_void,
    check_decline_code,
    check_idempotent_retry,
    check_signature_failure,
    check_file_round_trip,
]


def run_conformance(plugin: RailPlugin) -> None:
    """Run every check; the first failure raises AssertionError."""
    for check in CONFORMANCE_CHECKS:
        check(plugin)
