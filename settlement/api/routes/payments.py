"""Payments: create (and authorize), capture, void, refund; reads with filters and
cursor pagination. Every POST that moves money takes an ``Idempotency-Key``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from settlement.api.deps import CHECKOUT, CHECKOUT_READ, Id, SessionDep
from settlement.api.idempotency import Idempotency, idempotency
from settlement.auth.service import Principal
from settlement.money import to_minor
from settlement.payments.errors import PaymentNotFound, RefundNotFound
from settlement.payments.models import AttemptState, CaptureMethod, Operation, Payment, PaymentAttempt, PaymentState
from settlement.payments.rails import Rails, rails_from_settings
from settlement.payments.schemas import (
    AuthorizeIn,
    CaptureIn,
    OperationList,
    OperationOut,
    PaymentCreate,
    PaymentList,
    PaymentOut,
    RefundCreate,
    VoidIn,
    decode_cursor,
    next_cursor,
)
from settlement.payments.service import flows
from settlement.payments.service import payments as service
from settlement.payments.service.flows import Context
from settlement.payments.service.payments import NewPayment, PaymentFilter

router = APIRouter(prefix="/v1/payments", tags=["payments"])


class Problem(BaseModel):
    """RFC 9457 problem details; ``type`` is ``/problems/<code>``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: Any = None
    replayed: bool | None = None


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem documents an endpoint may answer."""
    described = {400: "Bad request (malformed JSON, missing Idempotency-Key, bad cursor)",
                 401: "Missing or invalid API key", 403: "The key lacks the scope", 404: "Not found",
                 402: "Declined or insufficient funds", 409: "Conflict with the current state",
                 422: "Invalid request", 413: "Body too large", 502: "The rail failed", 503: "The rail is unavailable"}
    return {status: {"description": described[status], "model": Problem,
                     "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in (400, 401, 403, 404, 422, *statuses)}


async def rails(request: Request) -> Rails:
    """The app's rail clients, built on first use from the settings (async: no I/O
    worth a thread-pool hop)."""
    state = request.app.state
    found = getattr(state, "rails", None)
    if found is None:
        found = rails_from_settings(state.settings)
        state.rails = found
    assert isinstance(found, Rails)
    return found


async def context(request: Request, rail_set: Annotated[Rails, Depends(rails)]) -> Context:
    return Context.from_settings(request.app.state.factory, rail_set, request.app.state.settings)


Ctx = Annotated[Context, Depends(context)]
Idem = Annotated[Idempotency, Depends(idempotency)]
Writer = Annotated[Principal, Security(CHECKOUT)]
Reader = Annotated[Principal, Security(CHECKOUT_READ)]

IN_PROGRESS = (PaymentState.AUTHORIZING.value, PaymentState.UNKNOWN.value)


def _payment(created: bool) -> Any:
    def render(payment: Any) -> tuple[int, BaseModel]:
        busy = payment.state in IN_PROGRESS or payment.in_flight_attempt_id is not None
        return (202 if busy else 201 if created else 200), PaymentOut.of(payment)
    return render


def _refund(attempt: Any) -> tuple[int, BaseModel]:
    return (202 if attempt.state != AttemptState.SUCCEEDED.value else 201), OperationOut.of(attempt)


def recover(session: Session, resource: str, resource_id: int) -> BaseModel:
    """The resource a dead request left behind, as it is now."""
    if resource == "refund":
        return OperationOut.of(service.get_attempt(session, resource_id))
    if resource == "payout":
        from settlement.payments.schemas import PayoutOut
        from settlement.payments.service.payouts import get_payout

        return PayoutOut.of(get_payout(session, resource_id))
    return PaymentOut.of(service.get_payment(session, resource_id))


@router.post("", summary="Create a payment and authorize it at its rail", status_code=201,
             response_model=PaymentOut,
             responses={200: {"model": PaymentOut, "description": "Recovered after an interrupted request"},
                        202: {"model": PaymentOut, "description": "The rail's answer is pending or was lost"},
                        **problems(402, 409, 502, 503)})
def create_payment(body: PaymentCreate, principal: Writer, idem: Idem, ctx: Ctx) -> Response:
    def flow(hooks: flows.Hooks) -> object:
        command = NewPayment(merchant_id=body.merchant_id, amount=to_minor(body.amount, body.currency, positive=True),
                             currency=body.currency, rail=body.rail, method=body.payment_method.method(),
                             capture_method=CaptureMethod(body.capture_method), fx_quote_id=body.fx_quote_id,
                             description=body.description, buyer_reference=body.buyer_reference,
                             metadata=body.metadata)
        return flows.create_payment(ctx, command, confirm=body.confirm, hooks=hooks)
    return idem.run(principal.key_id, flow, _payment(True), recover=recover)


@router.get("", summary="List payments, newest first", response_model=PaymentList, responses=problems())
def list_payments(session: SessionDep, _: Reader, *,
                  state: Annotated[PaymentState | None, Query()] = None,
                  merchant_id: Annotated[int | None, Query(ge=1)] = None,
                  rail: Annotated[str | None, Query(max_length=32)] = None,
                  currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")] = None,
                  created_from: Annotated[dt.datetime | None, Query(description="inclusive")] = None,
                  created_to: Annotated[dt.datetime | None, Query(description="exclusive")] = None,
                  cursor: Annotated[str | None, Query(max_length=200)] = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50) -> PaymentList:
    filters = PaymentFilter(state=state.value if state else None, merchant_id=merchant_id, rail=rail,
                            currency=currency, created_from=_aware(created_from), created_to=_aware(created_to))
    rows = service.list_payments(session, filters, after=decode_cursor(cursor), limit=limit)
    return PaymentList(data=[PaymentOut.of(p) for p in rows], next_cursor=next_cursor(rows, limit))


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


@router.get("/{payment_id}", summary="One payment", response_model=PaymentOut, responses=problems())
def get_payment(payment_id: Id, session: SessionDep, _: Reader) -> PaymentOut:
    return PaymentOut.of(service.get_payment(session, payment_id))


@router.post("/{payment_id}/authorize", summary="Authorize a payment created with confirm=false",
             response_model=PaymentOut, responses={202: {"model": PaymentOut}, **problems(402, 409, 502, 503)})
def authorize(payment_id: Id, body: AuthorizeIn, principal: Writer, idem: Idem, ctx: Ctx) -> Response:
    return idem.run(principal.key_id, lambda hooks: flows.authorize(ctx, payment_id, body.payment_method.method(),
                                                                    hooks=hooks), _payment(False), recover=recover)


@router.post("/{payment_id}/capture", summary="Capture part or all of what remains authorized",
             response_model=PaymentOut, responses={202: {"model": PaymentOut}, **problems(402, 409, 502, 503)})
def capture(payment_id: Id, body: CaptureIn, principal: Writer, idem: Idem, ctx: Ctx) -> Response:
    return idem.run(principal.key_id, lambda hooks: flows.capture(ctx, payment_id, body.amount, final=body.final,
                                                                  hooks=hooks), _payment(False), recover=recover)


@router.post("/{payment_id}/void", summary="Release what remains authorized", response_model=PaymentOut,
             responses={202: {"model": PaymentOut}, **problems(402, 409, 502, 503)})
def void(payment_id: Id, principal: Writer, idem: Idem, ctx: Ctx, body: VoidIn | None = None) -> Response:
    return idem.run(principal.key_id, lambda hooks: flows.void(ctx, payment_id, hooks=hooks), _payment(False),
                    recover=recover)


@router.post("/{payment_id}/refunds", summary="Refund part or all of what was captured", status_code=201,
             response_model=OperationOut, responses={202: {"model": OperationOut}, 200: {"model": OperationOut},
                                                     **problems(402, 409, 502, 503)})
def refund(payment_id: Id, body: RefundCreate, principal: Writer, idem: Idem, ctx: Ctx) -> Response:
    return idem.run(principal.key_id, lambda hooks: flows.refund(ctx, payment_id, body.amount, reason=body.reason,
                                                                 hooks=hooks), _refund, recover=recover)


@router.get("/{payment_id}/refunds", summary="The payment's refunds", response_model=OperationList,
            responses=problems())
def list_refunds(payment_id: Id, session: SessionDep, _: Reader) -> OperationList:
    service.get_payment(session, payment_id)
    return OperationList(data=[OperationOut.of(a) for a in service.attempts_of(session, payment_id,
                                                                                 Operation.REFUND)])


@router.get("/{payment_id}/refunds/{refund_id}", summary="One refund", response_model=OperationOut,
            responses=problems())
def get_refund(payment_id: Id, refund_id: Id, session: SessionDep, _: Reader) -> OperationOut:
    attempt = session.get(PaymentAttempt, refund_id)
    if attempt is None or attempt.payment_id != payment_id or attempt.operation != Operation.REFUND.value:
        raise RefundNotFound(f"payment {payment_id} has no refund {refund_id}", refund_id=refund_id)
    return OperationOut.of(attempt)


@router.get("/{payment_id}/operations", summary="Every operation sent to the rail for the payment",
            response_model=OperationList, responses=problems())
def list_operations(payment_id: Id, session: SessionDep, _: Reader) -> OperationList:
    if session.get(Payment, payment_id) is None:
        raise PaymentNotFound(f"no payment {payment_id}", payment_id=payment_id)
    return OperationList(data=[OperationOut.of(a) for a in service.attempts_of(session, payment_id)])
