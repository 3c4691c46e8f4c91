"""Operations that call a rail, as three steps with the rail call outside any
database transaction:

1. a unit of work checks the request, writes the attempt as ``pending`` and commits;
2. the rail is called (no transaction open, no lock held);
3. a new unit of work records the outcome and writes the ledger
   (:func:`~settlement.payments.service.apply.apply_outcome`).

A crash between 2 and 3 leaves the attempt ``pending``; the janitor asks the rail
and runs step 3 itself. On PostgreSQL, step 3 of concurrent requests may share one
transaction (:mod:`~settlement.payments.service.groups`): each request's changes are
still all or nothing, and a group that fails is recorded again request by request.
Flows own their transactions, as tasks and CLI commands do;
the services they call never commit.

``hooks`` let the caller take part in the first and last unit of work: the HTTP
layer claims the request's Idempotency-Key in the first and stores the response
in the last, atomically with the payment's changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from adapters.base import (
    AuthorizeRequest,
    CaptureRequest,
    PaymentMethod,
    PaymentRail,
    RailResult,
    RefundRequest,
    VoidRequest,
)
from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work
from settlement.db.types import utcnow
from settlement.errors import SettlementError
from settlement.ledger.errors import BatchNotCommitted
from settlement.payments.errors import refusal_from
from settlement.payments.models import AttemptState, CaptureMethod, Payment, PaymentAttempt
from settlement.payments.rails import Rails
from settlement.payments.service import apply, groups, outcomes
from settlement.payments.service import payments as ops
from settlement.payments.service.payments import NewPayment, PaymentTerms


class Hooks(Protocol):
    def begin(self, session: Session, resource: tuple[str, int] | None = None) -> None:
        """Runs first in the first unit of work; ``resource`` is what the operation
        changes, when it is known before anything is written (as :meth:`bind`)."""
        ...

    def bind(self, session: Session, resource: str, resource_id: int) -> None:
        """The resource the request created or changed, once it exists."""
        ...

    def finish(self, session: Session, result: object, error: SettlementError | None) -> None:
        """Runs last in the last unit of work, with the result and the refusal (if any)
        the caller will see."""
        ...

    def discard(self) -> None:
        """The last unit of work was rolled back after ``finish`` ran: forget what it
        prepared (it may run again)."""
        ...


class NoHooks:
    def begin(self, session: Session, resource: tuple[str, int] | None = None) -> None:
        return None

    def bind(self, session: Session, resource: str, resource_id: int) -> None:
        return None

    def finish(self, session: Session, result: object, error: SettlementError | None) -> None:
        return None

    def discard(self) -> None:
        return None


@dataclass
class Context:
    """What the flows need: the database, the rails, the terms, a clock."""

    factory: SessionFactory
    rails: Rails
    terms: PaymentTerms = field(default_factory=PaymentTerms)
    clock: Callable[[], dt.datetime] = utcnow
    #: Outcomes recorded in one transaction at most (PostgreSQL; see :mod:`.groups`).
    group: int = 1

    @classmethod
    def from_settings(cls, factory: SessionFactory, rails: Rails, settings: Settings) -> Context:
        return cls(factory, rails, PaymentTerms(
            fx_spread=settings.fx_spread, fx_quote_ttl_seconds=settings.fx_quote_ttl_seconds,
            hold_timeout_seconds=settings.hold_timeout_seconds,
            janitor_grace_seconds=settings.janitor_grace_seconds), group=settings.outcome_group_size)

    def grouped(self) -> bool:
        """Whether outcomes are recorded in groups: PostgreSQL, groups above one."""
        if self.group <= 1:
            return False
        bind = self.factory.kw.get("bind")
        return bind is not None and bind.dialect.name == "postgresql"


@dataclass(frozen=True)
class _Call:
    """What step 2 needs, read in step 1."""

    attempt_id: int
    payment_id: int
    operation: Callable[[], RailResult]
    #: The payment and attempt as step 1 stored them, when it wrote them in one
    #: statement (step 3 then need not read them again).
    stored: tuple[Payment, PaymentAttempt] | None = None


def refusal_of(attempt: PaymentAttempt) -> SettlementError | None:
    """The refusal a caller sees for a failed attempt (None unless it failed)."""
    if attempt.state != AttemptState.FAILED.value:
        return None
    detail: dict[str, object] = {"payment_id": attempt.payment_id, "operation_id": attempt.id}
    if attempt.response_code:
        detail["rail_code"] = attempt.response_code
    return refusal_from(attempt.failure_code or "rail_error", attempt.failure_message or "the rail refused",
                        **detail)


def _finish(ctx: Context, call: _Call, hooks: Hooks, result_of: Callable[[Payment, PaymentAttempt], object]
            ) -> tuple[Payment, PaymentAttempt]:
    outcome = outcomes.call(call.operation)
    try:
        try:
            if ctx.grouped():
                payment, attempt, error = groups.grouper(ctx.factory, ctx.group).record(
                    lambda session: _step3(session, ctx, call, outcome, hooks=hooks, result_of=result_of,
                                           stored=call.stored))
            else:
                payment, attempt, error = _record(ctx, call, outcome, hooks, result_of, with_commit=True)
        except (BatchNotCommitted, groups.GroupNotCommitted):
            # The ledger batch sent with the COMMIT needs the general path, or the group
            # this outcome was in failed: nothing was written. Record the outcome again,
            # alone, the batch posted and answered as usual.
            hooks.discard()
            payment, attempt, error = _record(ctx, call, outcome, hooks, result_of, with_commit=False)
    except BaseException as exc:
        # The ledger is written at commit, after finish: a refusal there rolls back
        # the answer finish prepared (a durable one was committed with it).
        if not getattr(exc, "durable", False):
            hooks.discard()
        raise
    if error is not None:
        raise error
    return payment, attempt


def _record(ctx: Context, call: _Call, outcome: outcomes.Outcome, hooks: Hooks,
            result_of: Callable[[Payment, PaymentAttempt], object], *, with_commit: bool
            ) -> tuple[Payment, PaymentAttempt, SettlementError | None]:
    """Step 3 in one unit of work. ``with_commit``: the last ledger batch may go out
    with the COMMIT (see :func:`apply.commit_with_ledger`)."""
    with unit_of_work(ctx.factory) as session:
        if with_commit:
            apply.commit_with_ledger(session)
        recorded = _step3(session, ctx, call, outcome, hooks=hooks, result_of=result_of,
                          stored=call.stored if with_commit else None)
    return recorded


def _step3(session: Session, ctx: Context, call: _Call, outcome: outcomes.Outcome, *, hooks: Hooks,
           result_of: Callable[[Payment, PaymentAttempt], object],
           stored: tuple[Payment, PaymentAttempt] | None) -> tuple[Payment, PaymentAttempt, SettlementError | None]:
    """Apply the outcome and let ``hooks`` finish, in ``session``'s transaction."""
    payment, attempt = apply.apply_outcome(session, call.attempt_id, outcome, ctx.terms, ctx.clock(),
                                           payment_id=call.payment_id, stored=stored)
    error = refusal_of(attempt)
    hooks.finish(session, result_of(payment, attempt), error)
    return payment, attempt, error


def _payment(payment: Payment, _attempt: PaymentAttempt) -> object:
    return payment


def _authorize_call(rail: PaymentRail, payment: Payment, attempt: PaymentAttempt,
                    method_data: PaymentMethod, *, stored: bool = False) -> _Call:
    request = AuthorizeRequest(reference=attempt.reference, amount=payment.amount, currency=payment.currency,
                               method=method_data, capture=payment.capture_method == CaptureMethod.AUTOMATIC.value,
                               description=payment.description or f"payment {payment.id}",
                               metadata={"payment_id": str(payment.id)})
    return _Call(attempt.id, payment.id, lambda: rail.authorize(request),
                 stored=(payment, attempt) if stored and ops.fresh_rows(attempt) else None)


def create_payment(ctx: Context, command: NewPayment, *, confirm: bool = True,
                   hooks: Hooks | None = None) -> Payment:
    """Create a payment and (unless ``confirm`` is false) authorize it at its rail; a
    sale (automatic capture) is captured in the same rail operation."""
    hooks = hooks or NoHooks()
    rail = ctx.rails.get(command.rail)
    with unit_of_work(ctx.factory) as session:
        hooks.begin(session)
        now = ctx.clock()
        payment, attempt = ops.create_payment(session, command, rail, terms=ctx.terms, now=now, authorize=confirm)
        hooks.bind(session, "payment", payment.id)
        if attempt is None:
            hooks.finish(session, payment, None)
            return payment
        call = _authorize_call(rail, payment, attempt, command.method, stored=True)
    return _finish(ctx, call, hooks, _payment)[0]


def authorize(ctx: Context, payment_id: int, method: PaymentMethod, *, hooks: Hooks | None = None) -> Payment:
    """Authorize a payment created with ``confirm=False``."""
    hooks = hooks or NoHooks()
    with unit_of_work(ctx.factory) as session:
        hooks.begin(session, ("payment", payment_id))
        payment = ops.get_payment(session, payment_id)
        rail = ctx.rails.get(payment.rail)
        attempt = ops.begin_authorization(session, payment_id, ctx.terms, ctx.clock())
        call = _authorize_call(rail, payment, attempt, method)
    return _finish(ctx, call, hooks, _payment)[0]


def capture(ctx: Context, payment_id: int, amount: int | str | None = None, *, final: bool = False,
            hooks: Hooks | None = None) -> Payment:
    hooks = hooks or NoHooks()
    with unit_of_work(ctx.factory) as session:
        hooks.begin(session, ("payment", payment_id))
        attempt = ops.begin_capture(session, payment_id, amount, final=final, terms=ctx.terms, now=ctx.clock())
        payment = ops.get_payment(session, payment_id)
        rail = ctx.rails.get(payment.rail)
        request = CaptureRequest(reference=attempt.reference, rail_reference=payment.rail_reference or "",
                                 amount=attempt.amount, currency=payment.currency, final=attempt.final)
        call = _Call(attempt.id, payment_id, lambda: rail.capture(request))
    return _finish(ctx, call, hooks, _payment)[0]


def void(ctx: Context, payment_id: int, *, hooks: Hooks | None = None) -> Payment:
    hooks = hooks or NoHooks()
    with unit_of_work(ctx.factory) as session:
        hooks.begin(session, ("payment", payment_id))
        attempt = ops.begin_void(session, payment_id, ctx.terms, ctx.clock())
        payment = ops.get_payment(session, payment_id)
        rail = ctx.rails.get(payment.rail)
        request = VoidRequest(reference=attempt.reference, rail_reference=payment.rail_reference or "",
                              amount=attempt.amount, currency=payment.currency)
        call = _Call(attempt.id, payment_id, lambda: rail.void(request))
    return _finish(ctx, call, hooks, _payment)[0]


def refund(ctx: Context, payment_id: int, amount: int | str | None = None, *, reason: str = "",
           hooks: Hooks | None = None) -> PaymentAttempt:
    """Refund part or all of what was captured (``amount`` in minor units, or a decimal
    string in the payment's currency); returns the refund (an attempt)."""
    hooks = hooks or NoHooks()
    with unit_of_work(ctx.factory) as session:
        hooks.begin(session)
        attempt = ops.begin_refund(session, payment_id, amount, reason=reason, terms=ctx.terms, now=ctx.clock())
        payment = ops.get_payment(session, payment_id)
        hooks.bind(session, "refund", attempt.id)
        rail = ctx.rails.get(payment.rail)
        request = RefundRequest(reference=attempt.reference, rail_reference=payment.rail_reference or "",
                                amount=attempt.amount, currency=payment.currency, reason=reason)
        call = _Call(attempt.id, payment_id, lambda: rail.refund(request))
    return _finish(ctx, call, hooks, lambda _payment, attempt: attempt)[1]
