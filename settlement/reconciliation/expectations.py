"""Expectations: what a rail owes us (or pays out for us) for one operation, recorded
when the operation happens, matched later against the rail's settlement file.

The payments service calls :func:`expect` at each capture, refund and payout, in the
transaction that books the operation; bulk loaders use :func:`expect_many`.

Rules:

* ``amount`` is what was captured, refunded or paid out: positive minor units of
  ``currency``. The file shows payments positive and refunds and payouts negative;
  ``signed_amount`` stores it that way, and so ``expected_fee`` (what the rail
  charges for a payment is positive; a fee it gives back on a refund is negative).
* ``expected_fee`` None: the fee is not checked (the file's fee is booked as is).
* FX: ``settlement_currency`` and ``fx_rate`` (units of settlement currency per unit
  of ``currency``, a Decimal) come together or not at all; ``settlement_amount`` is
  what the rail quoted, if it did. The FX variance of a match is measured against
  the file's net converted at ``fx_rate``.
* The expected settlement date and the day after which an absent record counts as
  missing follow the rail's settlement calendar from ``transaction_date`` (the
  rail's business day, a ``date``).
* Idempotent by (rail, kind, reference): recording the same operation again changes
  nothing; recording it with other money terms (amount, currency, rail reference,
  FX terms) is ``recon_expectation_conflict``.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from adapters.base import RailResult, RecordType
from settlement.config import Settings, get_settings
from settlement.db.direct import Direct
from settlement.db.types import utcnow
from settlement.money import check_currency, check_minor
from settlement.reconciliation import rails
from settlement.reconciliation.errors import ExpectationConflict, InvalidExpectation
from settlement.reconciliation.models import Expectation, ExpectationKind, ExpectationStatus

__all__ = ["ExpectationSpec", "expect", "expect_many", "expect_operation"]

_MAX_REFERENCE = 100
#: Rows per prepared insert of :func:`expect_many` on SQLite.
_BATCH = 10_000
_MAX_RRN = 64
_COLUMNS = ("rail", "kind", "reference", "rail_reference", "rrn", "batch_reference", "amount", "signed_amount",
            "currency", "expected_fee", "settlement_currency", "settlement_amount", "fx_rate", "transaction_date",
            "expected_settlement_date", "missing_after", "payment_id", "status", "metadata_", "created_at")


@dataclass(frozen=True)
class ExpectationSpec:
    """The arguments of :func:`expect`, for :func:`expect_many`."""

    rail: str
    kind: str
    reference: str
    rail_reference: str
    amount: int
    currency: str
    transaction_date: dt.date
    rrn: str | None = None
    expected_fee: int | None = None
    settlement_currency: str | None = None
    settlement_amount: int | None = None
    fx_rate: Decimal | None = None
    payment_id: int | None = None
    metadata: Mapping[str, Any] | None = None
    batch_reference: str | None = None


def expect(session: Session, *, rail: str, kind: str, reference: str, rail_reference: str, amount: int,
           currency: str, transaction_date: dt.date, rrn: str | None = None, expected_fee: int | None = None,
           settlement_currency: str | None = None, settlement_amount: int | None = None,
           fx_rate: Decimal | None = None, payment_id: int | None = None,
           metadata: Mapping[str, Any] | None = None, batch_reference: str | None = None) -> None:
    """Record that ``rail`` will settle this capture, refund or payout (rules in the
    module docstring). Works inside the caller's transaction; never commits."""
    spec = ExpectationSpec(rail, kind, reference, rail_reference, amount, currency, transaction_date, rrn,
                           expected_fee, settlement_currency, settlement_amount, fx_rate, payment_id, metadata,
                           batch_reference)
    row = _row(spec, get_settings(), utcnow())
    params = dict(row)
    params["metadata"] = params.pop("metadata_")
    inserted = _upsert(session.get_bind().dialect.name).first(session, params)
    if inserted is None:
        _check_same(session, row)


@functools.cache
def _upsert(dialect: str) -> Direct:
    """The insert of one expectation that does nothing for a (rail, kind, reference)
    already expected, on the table itself: built once, its parameters given at each
    call, so every capture reuses one compiled statement (one per dialect)."""
    table = Expectation.metadata.tables[Expectation.__tablename__]
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = upsert(table).on_conflict_do_nothing(index_elements=["rail", "kind", "reference"]).returning(table.c.id)
    return Direct(statement, ["metadata" if name == "metadata_" else name for name in _COLUMNS])


def expect_operation(session: Session, *, rail: str, kind: str, reference: str, rail_reference: str | None,
                     amount: int, currency: str, result: RailResult | None, at: dt.datetime,
                     payment_id: int | None = None, metadata: Mapping[str, Any] | None = None) -> None:
    """:func:`expect` for an operation the rail has just confirmed, from its answer:
    the RRN and the rail's FX terms come from ``result``; the expected fee is the
    rail's own fee schedule (not checked when the rail converts, since the schedule
    of a converted trade may differ); the transaction day is ``at``'s UTC date (never
    later than the rail's own day, which is east of UTC for these rails)."""
    settings = get_settings()
    fx = result.fx if result is not None else None
    if fx is not None and fx.settlement_currency == currency:
        fx = None
    fee = None
    if fx is None:
        schedule = rails.fee_schedule(rail, settings)
        record_type = {"payment": RecordType.PAYMENT, "refund": RecordType.REFUND}.get(kind, RecordType.PAYOUT)
        fee = schedule.fee_for(amount, record_type) if schedule is not None else None
    expect(session, rail=rail, kind=kind, reference=reference, rail_reference=rail_reference or "", amount=amount,
           currency=currency, transaction_date=at.astimezone(dt.UTC).date(),
           rrn=(result.rrn or None) if result is not None else None, expected_fee=fee,
           settlement_currency=fx.settlement_currency if fx is not None else None,
           settlement_amount=fx.settlement_amount if fx is not None else None,
           fx_rate=fx.rate if fx is not None else None, payment_id=payment_id, metadata=metadata)


def expect_many(session: Session, specs: Iterable[ExpectationSpec], *, settings: Settings | None = None) -> int:
    """Record many new expectations at once (COPY on PostgreSQL, prepared inserts in
    batches on SQLite); returns how many.
    For bulk loads of operations not recorded before: a (rail, kind, reference)
    already present fails the whole call (unique constraint), nothing is written."""
    config = settings or get_settings()
    now = utcnow()
    calendars = _Calendars(config)
    rows = (_row(spec, config, now, calendars) for spec in specs)
    if session.get_bind().dialect.name != "postgresql":
        # Prepared inserts a batch at a time: memory stays flat in the number of specs.
        total = 0
        while batch := list(itertools.islice(rows, _BATCH)):
            session.execute(insert(Expectation), batch)
            total += len(batch)
        return total
    from settlement.reconciliation.service.loading import copy_text

    count = 0

    def lines() -> Iterator[str]:
        nonlocal count
        for line in _copy_lines(rows):
            count += 1
            yield line

    copy_text(session, "recon_expectations", ["metadata" if c == "metadata_" else c for c in _COLUMNS], lines())
    return count


def _copy_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """COPY text lines of ``rows``, columns in ``_COLUMNS`` order: what
    :func:`~settlement.reconciliation.service.loading.text_row` makes of them, written
    out for the columns' known types (twice as fast, for loads of a million)."""
    from settlement.reconciliation.service.loading import copy_escape as esc

    days: dict[dt.date, str] = {}

    def day(value: dt.date) -> str:
        found = days.get(value)
        if found is None:
            found = days[value] = value.isoformat()
        return found

    def optional(value: object) -> str:
        return "\\N" if value is None else str(value)

    def optional_text(value: str | None) -> str:
        return "\\N" if value is None else esc(value)

    for r in rows:
        meta = r["metadata_"]
        yield (f"{esc(r['rail'])}\t{r['kind']}\t{esc(r['reference'])}\t{esc(r['rail_reference'])}\t"
               f"{optional_text(r['rrn'])}\t{optional_text(r['batch_reference'])}\t{r['amount']}\t"
               f"{r['signed_amount']}\t{r['currency']}\t{optional(r['expected_fee'])}\t"
               f"{optional(r['settlement_currency'])}\t{optional(r['settlement_amount'])}\t{optional(r['fx_rate'])}\t"
               f"{day(r['transaction_date'])}\t{day(r['expected_settlement_date'])}\t{day(r['missing_after'])}\t"
               f"{optional(r['payment_id'])}\t{r['status']}\t{esc(json.dumps(meta)) if meta else '{}'}\t"
               f"{r['created_at'].isoformat()}\n")


class _Calendars:
    """Expected settlement and missing dates per (rail, day), worked out once per call
    (a bulk load holds few distinct days)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.days: dict[tuple[str, dt.date], tuple[dt.date, dt.date]] = {}

    def dates(self, rail: str, day: dt.date) -> tuple[dt.date, dt.date]:
        found = self.days.get((rail, day))
        if found is None:
            terms = rails.calendar(rail, self.settings)
            found = self.days[rail, day] = (terms.expected_settlement_date(day), terms.missing_after(day))
        return found


def _row(spec: ExpectationSpec, settings: Settings, now: dt.datetime,
         calendars: _Calendars | None = None) -> dict[str, Any]:
    """The validated column values of ``spec``."""
    try:
        kind = ExpectationKind(spec.kind)
    except ValueError:
        raise InvalidExpectation(f"kind must be payment, refund or payout, not {spec.kind!r}", field="kind") from None
    for name, value, limit, required in (("reference", spec.reference, _MAX_REFERENCE, True),
                                         ("rail_reference", spec.rail_reference, _MAX_REFERENCE, False),
                                         ("rrn", spec.rrn, _MAX_RRN, False),
                                         ("batch_reference", spec.batch_reference, _MAX_REFERENCE, False)):
        if value is None and not required:
            continue
        if not isinstance(value, str) or len(value) > limit or (required and not value):
            raise InvalidExpectation(f"{name} must be a {'non-empty ' if required else ''}string of at most "
                                     f"{limit} characters", field=name)
    amount = check_minor(spec.amount)
    currency = check_currency(spec.currency)
    if isinstance(spec.transaction_date, dt.datetime) or not isinstance(spec.transaction_date, dt.date):
        raise InvalidExpectation("transaction_date must be a date (the rail's business day)",
                                 field="transaction_date")
    sign = 1 if kind is ExpectationKind.PAYMENT else -1
    fee = None if spec.expected_fee is None else check_minor(spec.expected_fee, positive=False,
                                                             field="expected_fee")
    if (spec.settlement_currency is None) != (spec.fx_rate is None):
        raise InvalidExpectation("settlement_currency and fx_rate come together", field="fx_rate")
    if spec.settlement_currency is not None:
        check_currency(spec.settlement_currency)
        if spec.settlement_currency == currency:
            raise InvalidExpectation("settlement_currency equals currency: no conversion", field="settlement_currency")
        if not isinstance(spec.fx_rate, Decimal) or not spec.fx_rate.is_finite() or spec.fx_rate <= 0:
            raise InvalidExpectation("fx_rate must be a positive Decimal", field="fx_rate")
    if spec.settlement_amount is not None:
        if spec.settlement_currency is None:
            raise InvalidExpectation("settlement_amount needs settlement_currency", field="settlement_amount")
        check_minor(spec.settlement_amount, field="settlement_amount")
    metadata = _metadata(spec.metadata)
    expected, missing = (calendars or _Calendars(settings)).dates(spec.rail, spec.transaction_date)
    return {
        "rail": spec.rail, "kind": kind.value, "reference": spec.reference, "rail_reference": spec.rail_reference,
        "rrn": spec.rrn or None, "batch_reference": spec.batch_reference or None, "amount": amount,
        "signed_amount": sign * amount, "currency": currency,
        "expected_fee": None if fee is None else sign * fee, "settlement_currency": spec.settlement_currency,
        "settlement_amount": None if spec.settlement_amount is None else sign * spec.settlement_amount,
        "fx_rate": spec.fx_rate, "transaction_date": spec.transaction_date,
        "expected_settlement_date": expected, "missing_after": missing, "payment_id": spec.payment_id,
        "status": ExpectationStatus.OPEN.value, "metadata_": metadata, "created_at": now,
    }


def _metadata(given: Mapping[str, Any] | None) -> dict[str, Any]:
    metadata = dict(given or {})
    if metadata:  # an empty one is JSON: most are, in bulk loads
        try:
            json.dumps(metadata)
        except (TypeError, ValueError):
            raise InvalidExpectation("metadata must be JSON", field="metadata") from None
    return metadata


def _check_same(session: Session, row: Mapping[str, Any]) -> None:
    existing = session.execute(select(Expectation).where(
        Expectation.rail == row["rail"], Expectation.kind == row["kind"],
        Expectation.reference == row["reference"])).scalar_one()
    terms = ("amount", "currency", "rail_reference", "settlement_currency", "fx_rate")
    different = [name for name in terms if getattr(existing, name) != row[name]]
    if different:
        raise ExpectationConflict(
            f"{row['kind']} {row['reference']!r} on {row['rail']} is already expected with other "
            f"{', '.join(different)}", reference=row["reference"], fields=different)
