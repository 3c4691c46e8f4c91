"""Conformance checks of money movements: the SPI's shape, the payment round trip,
voids, declines, retries, queries and the limits on captures and refunds."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from adapters.base import (
    AuthorizeRequest,
    Capability,
    CaptureRequest,
    Declined,
    PaymentRail,
    QueryOperation,
    QueryRequest,
    RailPlugin,
    RailResult,
    RailSimulator,
    RecordType,
    RefundRequest,
    SettlementRecord,
    TxnStatus,
    VoidRequest,
)
from adapters.testing.support import (
    authorize,
    by_reference,
    captured_payment,
    currency_of,
    expect,
    new_reference,
    running,
    separate_capture,
    settle,
    today,
)


def check_spi_shape(plugin: RailPlugin) -> None:
    """The adapter and simulator satisfy the SPI protocols and describe themselves;
    the fee schedule charges ``fixed`` + ``rate`` x amount rounded half up and gives no
    fee back on refunds unless it says so."""
    with running(plugin) as (sim, rail):
        assert isinstance(rail, PaymentRail), "adapter does not satisfy PaymentRail"
        assert isinstance(sim, RailSimulator), "simulator does not satisfy RailSimulator"
        assert rail.name == plugin.name == sim.name
        assert rail.currencies, "a rail must name its currencies"
        assert all(len(c) == 3 and c.isupper() for c in rail.currencies)
        schedule = rail.fee_schedule
        assert isinstance(schedule.rate, Decimal), f"fee rate {schedule.rate!r} is not a Decimal"
        assert 0 <= schedule.rate < 1, f"fee rate {schedule.rate}"
        assert type(schedule.fixed) is int, f"fixed fee {schedule.fixed!r} is not int minor units"
        assert schedule.fixed >= 0, f"fixed fee {schedule.fixed}"
        for amount in (1, 50, 99_99, 100_00, 333_33, 12_345_67):
            rule = int((Decimal(amount) * schedule.rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            expected = rule + schedule.fixed
            assert schedule.fee_for(amount) == expected, f"fee for {amount}: {schedule.fee_for(amount)} != {expected}"
            returned = schedule.fee_for(-amount, RecordType.REFUND)
            assert returned == (-expected if schedule.refund_fee_returned else 0), f"refund fee {returned}"
        friday = dt.date(2026, 1, 9)
        for day in (dt.date(2026, 1, 5), friday):
            settles = rail.calendar.expected_settlement_date(day)
            assert settles > day
            assert rail.calendar.missing_after(day) >= settles
            if rail.calendar.business_days_only:
                assert settles.weekday() < 5, f"{day} settles on a weekend day, {settles}"


def _query(rail: PaymentRail, reference: str, rail_reference: str | None, operation: QueryOperation) -> RailResult:
    result = rail.query(QueryRequest(reference=reference, rail_reference=rail_reference, operation=operation))
    assert result.reference == reference, f"query of {reference} answered for {result.reference}"
    return result


def check_round_trip(plugin: RailPlugin) -> None:
    """authorize -> capture -> refund, with the rail's queries and the simulator
    agreeing at each step on states and amounts."""
    with running(plugin) as (sim, rail):
        separate = separate_capture(rail)
        req, result = authorize(rail, sim, 150_00, capture=not separate)
        assert (result.rail, result.reference, result.currency) == (plugin.name, req.reference, req.currency)
        assert result.amount == 150_00
        operation = QueryOperation.AUTHORIZE if separate else QueryOperation.SALE
        status = _query(rail, req.reference, None, operation)
        expected = TxnStatus.AUTHORIZED if separate else TxnStatus.CAPTURED
        assert status.status is expected, f"after authorize the rail says {status.status}"
        assert status.amount == 150_00, f"query of the authorization says it moved {status.amount}"
        rail_reference = status.rail_reference
        assert rail_reference == result.rail_reference, "query must return the rail's reference"
        if separate:
            cap_ref = new_reference("cap")
            cap = rail.capture(CaptureRequest(reference=cap_ref, rail_reference=rail_reference,
                                              amount=150_00, currency=req.currency))
            assert (cap.status, cap.amount, cap.reference) == (TxnStatus.CAPTURED, 150_00, cap_ref), cap
            found = _query(rail, cap_ref, rail_reference, QueryOperation.CAPTURE)
            assert (found.status, found.amount) == (TxnStatus.CAPTURED, 150_00), f"capture query: {found}"
        assert sim.transaction_status(req.reference) is TxnStatus.CAPTURED
        refund_amount = 50_00 if Capability.PARTIAL_REFUND in rail.capabilities else 150_00
        refund_ref = new_reference("ref")
        ref = rail.refund(RefundRequest(reference=refund_ref, rail_reference=rail_reference,
                                        amount=refund_amount, currency=req.currency))
        assert ref.status is TxnStatus.REFUNDED, f"refund answered {ref.status}"
        assert (ref.amount, ref.reference, ref.currency) == (refund_amount, refund_ref, req.currency)
        found = _query(rail, refund_ref, rail_reference, QueryOperation.REFUND)
        assert (found.status, found.amount) == (TxnStatus.REFUNDED, refund_amount), f"refund query: {found}"
        assert sim.transaction_status(refund_ref) is TxnStatus.REFUNDED


def check_void(plugin: RailPlugin) -> None:
    """An authorization can be voided, after which the rail, its queries and the
    simulator say VOIDED and a capture is declined."""
    with running(plugin) as (sim, rail):
        if Capability.VOID not in rail.capabilities or not separate_capture(rail):
            return
        req, result = authorize(rail, sim, 99_00)
        assert result.status is TxnStatus.AUTHORIZED
        rail_reference = result.rail_reference
        void_ref = new_reference("void")
        voided = rail.void(VoidRequest(reference=void_ref, rail_reference=rail_reference,
                                       amount=99_00, currency=req.currency))
        assert (voided.status, voided.amount) == (TxnStatus.VOIDED, 99_00), voided
        assert sim.transaction_status(req.reference) is TxnStatus.VOIDED
        assert _query(rail, void_ref, rail_reference, QueryOperation.VOID).status is TxnStatus.VOIDED
        # Some rails' queries report the state a message left (UnionPay's queryTrans of
        # the authorization answers its own success): never that money was taken.
        held = _query(rail, req.reference, None, QueryOperation.AUTHORIZE).status
        assert held in (TxnStatus.VOIDED, TxnStatus.AUTHORIZED), f"a voided authorization is {held}"
        expect(Declined, lambda: rail.capture(CaptureRequest(reference=new_reference("cap"),
                                                             rail_reference=rail_reference, amount=99_00,
                                                             currency=req.currency)),
               "capture after void")


def check_partial_capture(plugin: RailPlugin) -> None:
    """Rails with several captures: a non-final capture keeps the rest held, a capture
    above what remains is declined, a void releases the remainder (the transaction stays
    CAPTURED) and nothing can be captured after it."""
    with running(plugin) as (sim, rail):
        needed = Capability.AUTHORIZE | Capability.MULTIPLE_CAPTURE | Capability.VOID
        if needed & rail.capabilities != needed:
            return
        req, result = authorize(rail, sim, 100_00)
        rail_reference, currency = result.rail_reference, req.currency

        def capture(amount: int, final: bool) -> RailResult:
            return rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=rail_reference,
                                               amount=amount, currency=currency, final=final))

        first = capture(40_00, final=False)
        assert (first.status, first.amount) == (TxnStatus.CAPTURED, 40_00), first
        expect(Declined, lambda: capture(60_01, final=False), "capturing more than remains authorized")
        second = capture(25_00, final=False)
        assert second.amount == 25_00
        released = rail.void(VoidRequest(reference=new_reference("void"), rail_reference=rail_reference,
                                         amount=35_00, currency=currency))
        assert released.amount == 35_00, f"the void released {released.amount}, not the 35.00 that remained"
        assert sim.transaction_status(req.reference) is TxnStatus.CAPTURED
        expect(Declined, lambda: capture(1_00, final=True), "capture after the remainder was voided")
        records, _, _ = settle(sim, rail, today() + dt.timedelta(days=1))
        payments = [r for r in by_reference(records).get(req.reference, []) if r.record_type is RecordType.PAYMENT]
        assert sorted(r.gross for r in payments) == [25_00, 40_00], f"captures settled as {payments}"


def check_decline_code(plugin: RailPlugin) -> None:
    """A declined method raises Declined carrying the rail's own code, a retry is
    declined the same way, and afterwards neither the simulator nor the rail's query
    claims the payment happened."""
    with running(plugin) as (sim, rail):
        method, code = sim.declining_method()
        sale = not separate_capture(rail)
        request = AuthorizeRequest(reference=new_reference(), amount=10_00, currency=currency_of(rail),
                                   method=method, capture=sale)
        declined = expect(Declined, lambda: rail.authorize(request), "the declining method")
        assert declined.rail_code == code, f"decline code {declined.rail_code!r}, expected {code!r}"
        again = expect(Declined, lambda: rail.authorize(request), "a retry of a declined request")
        assert again.rail_code == code, f"the retry was declined with {again.rail_code!r}, not {code!r}"
        assert sim.transaction_status(request.reference) is TxnStatus.DECLINED
        found = _query(rail, request.reference, None, QueryOperation.SALE if sale else QueryOperation.AUTHORIZE)
        # A rail may keep no trace of a refusal (Alipay creates no trade): NOT_FOUND
        # then tells the same truth, that nothing happened.
        assert found.status in (TxnStatus.DECLINED, TxnStatus.NOT_FOUND), f"after a decline query says {found}"
        if found.status is TxnStatus.DECLINED and found.response_code:
            assert found.response_code == code, f"query reports code {found.response_code!r}, not {code!r}"
        assert found.amount == 0, f"query of a declined payment says it moved {found.amount}"


def check_query_not_found(plugin: RailPlugin) -> None:
    """A reference the rail never saw is NOT_FOUND to its query and to the simulator,
    whatever operation it is asked about."""
    with running(plugin) as (sim, rail):
        unknown = new_reference("none")
        assert sim.transaction_status(unknown) is TxnStatus.NOT_FOUND
        operations = [QueryOperation.AUTHORIZE, QueryOperation.SALE]
        if separate_capture(rail):
            operations.append(QueryOperation.CAPTURE)
        for operation in operations:
            found = _query(rail, unknown, None, operation)
            assert found.status is TxnStatus.NOT_FOUND, f"an unknown {operation} is {found.status}"
            assert found.amount == 0
        if Capability.REFUND in rail.capabilities:
            payment = captured_payment(rail, sim, 20_00)
            found = _query(rail, unknown, payment.rail_reference, QueryOperation.REFUND)
            assert found.status is TxnStatus.NOT_FOUND, f"an unknown refund is {found.status}"


def check_idempotent_retry(plugin: RailPlugin) -> None:
    """The same request with the same reference gets the same answer and moves money once."""
    with running(plugin) as (sim, rail):
        separate = separate_capture(rail)
        req, first = authorize(rail, sim, 42_00, capture=not separate)
        second = rail.authorize(req)
        assert second.rail_reference == first.rail_reference, "a retry created a second transaction"
        assert (second.status, second.amount, second.currency) == (first.status, first.amount, first.currency), (
            f"a retry answered {second.status} {second.amount} {second.currency}, "
            f"the first time {first.status} {first.amount} {first.currency}")
        if separate:
            cap = CaptureRequest(reference=new_reference("cap"), rail_reference=second.rail_reference,
                                 amount=42_00, currency=req.currency)
            captured, again = rail.capture(cap), rail.capture(cap)
            assert (captured.status, captured.amount) == (again.status, again.amount) == (TxnStatus.CAPTURED, 42_00)
        records, _, _ = settle(sim, rail, today() + dt.timedelta(days=1))
        mine = [r for r in by_reference(records).get(req.reference, []) if r.record_type is RecordType.PAYMENT]
        assert len(mine) == 1, f"retried payment settled {len(mine)} times"


def check_refund_limits(plugin: RailPlugin) -> None:
    """Capturing more than was authorized is declined; a refund retried with its
    reference answers the same and moves money once; refunding more than remains
    captured is declined; each refund settles once, with negative gross and net."""
    with running(plugin) as (sim, rail):
        currency = currency_of(rail)
        if separate_capture(rail):
            req, auth = authorize(rail, sim, 80_00)
            over = CaptureRequest(reference=new_reference("cap"), rail_reference=auth.rail_reference,
                                  amount=80_01, currency=currency)
            expect(Declined, lambda: rail.capture(over), "capturing more than was authorized")
            taken = rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth.rail_reference,
                                                amount=80_00, currency=currency))
            assert (taken.status, taken.amount) == (TxnStatus.CAPTURED, 80_00), "a declined capture took money"
            reference, rail_reference = req.reference, auth.rail_reference
        else:
            req, sale = authorize(rail, sim, 80_00, capture=True)
            reference, rail_reference = req.reference, sale.rail_reference
        if Capability.REFUND not in rail.capabilities:
            return

        def refund(amount: int, ref: str | None = None) -> RailResult:
            return rail.refund(RefundRequest(reference=ref or new_reference("ref"), rail_reference=rail_reference,
                                             amount=amount, currency=currency))

        partial = Capability.PARTIAL_REFUND in rail.capabilities
        first_amount = 30_00 if partial else 80_00
        first_ref = new_reference("ref")
        first, retried = refund(first_amount, first_ref), refund(first_amount, first_ref)
        assert (first.status, first.amount) == (TxnStatus.REFUNDED, first_amount), first
        assert (retried.status, retried.amount, retried.rail_reference) == (
            first.status, first.amount, first.rail_reference), f"a retried refund answered {retried}"
        day = today() + dt.timedelta(days=1)
        _check_refunds(rail, settle(sim, rail, day)[0], reference, [first_amount], "a refund and its retry")
        refunded = []
        if partial:
            expect(Declined, lambda: refund(50_01), "refunding more than remains captured")
            rest = refund(50_00)
            assert (rest.status, rest.amount) == (TxnStatus.REFUNDED, 50_00), rest
            refunded.append(50_00)
        expect(Declined, lambda: refund(1), "a refund of a fully refunded payment")
        if refunded:
            _check_refunds(rail, settle(sim, rail, day + dt.timedelta(days=1))[0], reference, refunded,
                           "the rest refunded")


def _check_refunds(rail: PaymentRail, records: list[SettlementRecord], reference: str, refunded: list[int],
                   what: str) -> None:
    """``records`` hold one REFUND record per amount in ``refunded`` against the payment
    ``reference`` (by the rail reference its PAYMENT record carries, in the same file or
    an earlier one), each with negative gross and net, and no other refund."""
    payments = [r for r in by_reference(records).get(reference, []) if r.record_type is RecordType.PAYMENT]
    refunds = [r for r in records if r.record_type is RecordType.REFUND]
    if payments:
        refunds = [r for r in refunds if r.rail_reference == payments[0].rail_reference]
    assert sorted(r.gross for r in refunds) == sorted(-amount for amount in refunded), (
        f"{what}: refunds of {refunded} settled as {[r.gross for r in refunds]}")
    for record in refunds:
        assert record.net < 0, f"line {record.line_number}: a refund with net {record.net}"
        assert record.fee == rail.fee_schedule.fee_for(record.gross, RecordType.REFUND)
