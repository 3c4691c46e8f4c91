"""Realistic data for the console tests, made through the real services: sales on the
Mir simulator (over its socket) booked by the payments service (which records what the
rail now owes as reconciliation expectations), the simulator's settlement register
with injected discrepancies (and one unreadable line), registered and reconciled by a
dry run and a live run. What it leaves for people: one exception of each kind the
console resolves.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from adapters.base import Discrepancy, DiscrepancyKind
from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work
from settlement.payments.models import CaptureMethod, Operation
from settlement.payments.rails import Rails
from settlement.payments.service import flows, merchants
from settlement.payments.service import payments as ops
from settlement.payments.service.flows import Context
from settlement.payments.service.payments import NewPayment, PaymentTerms
from settlement.reconciliation import runner
from settlement.reconciliation.models import FileKind, ReconException
from settlement.reconciliation.service import files, runs

RAIL = "mir"
CURRENCY = "RUB"
#: Sale amounts in kopecks; none ends in a kopeck count the simulator declines (51, 91) or leaves unanswered (68).
AMOUNTS = (150_000, 275_000, 99_900, 1_234_500, 480_000, 615_000, 72_000, 333_300, 89_000, 1_000_000)
#: The discrepancies, by sale index: the rail leaves out sale 2, pays 150.00 RUB less for sale 4 (above the
#: write-off threshold), 25.00 RUB more for sale 5, takes 3.00 RUB more fee on sale 6, and lists sale 7 twice.
MISSING, MISMATCH_LARGE, MISMATCH_SMALL, FEE, DUPLICATE = 2, 4, 5, 6, 7
LARGE_DELTA, SMALL_DELTA, FEE_DELTA = -15_000, 2_500, 300
#: A payment the rail paid that nobody here expected: in fact sale 2, under another reference.
UNKNOWN_GROSS = 99_900
#: What the live run finds: one outcome per injected discrepancy, the other sales matched.
OUTCOMES = {"matched": 6, "fee_variance": 1, "fx_variance": 0, "late": 0, "amount_mismatch": 2,
            "missing_in_file": 1, "unexpected_in_file": 1, "duplicate": 1}
BAD_LINE = "PAYMENT;NOTANRRN!;X;;;12x;643;01.01.2026;02.01.2026;0;0;broken"


@dataclass
class Seeded:
    """What the seed made: payments (our references), runs, and the open exceptions by kind."""

    references: list[str] = field(default_factory=list)
    payment_ids: list[int] = field(default_factory=list)
    dry_run_id: int = 0
    run_id: int = 0
    file_id: int = 0
    exceptions: dict[str, list[int]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    bad_line_number: int = 0
    #: The amount mismatch above the write-off threshold, and the one below it.
    large_mismatch: int = 0
    small_mismatch: int = 0

    def exception(self, kind: str, index: int = 0) -> int:
        return self.exceptions[kind][index]


def seed(factory: SessionFactory, settings: Settings, simulator: Any) -> Seeded:
    """Sell, expect, write the register with discrepancies, reconcile (dry, then live)."""
    rails = Rails({RAIL: simulator.adapter_config()})
    ctx = Context(factory, rails, PaymentTerms(janitor_grace_seconds=0))
    out = Seeded()
    with unit_of_work(factory) as session:
        seller = merchants.create_merchant(session, merchants.MerchantSpec(
            name="Moscow furniture seller", settlement_currency=CURRENCY, commission_rate=Decimal("0.05")))
    method = simulator.approving_method()
    today = dt.datetime.now(ZoneInfo("Europe/Moscow")).date()
    for amount in AMOUNTS:
        payment = flows.create_payment(ctx, NewPayment(seller.id, amount, CURRENCY, RAIL, method,
                                                       capture_method=CaptureMethod.AUTOMATIC))
        with factory() as session:
            # A sale is one rail operation: its authorization's reference is what the register lists.
            attempt = ops.attempts_of(session, payment.id, Operation.AUTHORIZE)[0]
        out.references.append(attempt.reference)
        out.payment_ids.append(payment.id)
    refs = out.references
    register = io.BytesIO()
    # Dated two weeks ahead, so the sale the rail left out is past its SLA: missing.
    simulator.write_settlement_file(register, today + dt.timedelta(days=14), [
        Discrepancy(DiscrepancyKind.MISSING, refs[MISSING]),
        Discrepancy(DiscrepancyKind.AMOUNT_DIFFERS, refs[MISMATCH_LARGE], delta=LARGE_DELTA),
        Discrepancy(DiscrepancyKind.AMOUNT_DIFFERS, refs[MISMATCH_SMALL], delta=SMALL_DELTA),
        Discrepancy(DiscrepancyKind.FEE_DIFFERS, refs[FEE], delta=FEE_DELTA),
        Discrepancy(DiscrepancyKind.DUPLICATE, refs[DUPLICATE]),
        Discrepancy(DiscrepancyKind.UNKNOWN, "ext" + refs[MISSING][2:], delta=UNKNOWN_GROSS),
    ])
    content, out.bad_line_number = _with_bad_line(register.getvalue())
    with unit_of_work(factory) as session:
        registered = files.register_file(session, settings, kind=FileKind.SETTLEMENT, rail=RAIL,
                                         source=io.BytesIO(content), filename=f"mir-register-{today:%Y%m%d}.csv",
                                         actor="system:seed")
        out.file_id = registered.file.id
        out.dry_run_id = runs.create_run(session, file_id=out.file_id, dry_run=True, actor="system:seed").id
    runner.execute(factory, settings, out.dry_run_id)
    with unit_of_work(factory) as session:
        out.run_id = runs.create_run(session, file_id=out.file_id, dry_run=False, actor="system:seed").id
    out.summary = runner.execute(factory, settings, out.run_id)
    assert out.summary["outcomes"] == OUTCOMES, out.summary
    with factory() as session:
        for exception in session.execute(select(ReconException).order_by(ReconException.id)).scalars():
            out.exceptions.setdefault(exception.kind, []).append(exception.id)
            if exception.kind == "amount_mismatch":
                if exception.amount == abs(LARGE_DELTA):
                    out.large_mismatch = exception.id
                else:
                    out.small_mismatch = exception.id
    return out


def _with_bad_line(content: bytes) -> tuple[bytes, int]:
    """The register with an unreadable line before its trailer (whose line count includes it)."""
    lines = content.decode("ascii").splitlines()
    trailer = lines.pop()
    tag, count, net = trailer.split(";")
    lines.append(BAD_LINE)
    bad_line_number = len(lines)
    lines.append(f"{tag};{int(count) + 1};{net}")
    assert re.fullmatch(r"[A-Z]+", tag)
    return ("\n".join(lines) + "\n").encode("ascii"), bad_line_number
