"""Payouts to sellers over their payout rail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel

from settlement.api.deps import Id, SessionDep
from settlement.api.idempotency import Idempotency, idempotency
from settlement.api.routes.payments import Ctx, Reader, Writer, problems, recover
from settlement.money import to_minor
from settlement.payments.models import Payout, PayoutState
from settlement.payments.schemas import PayoutCreate, PayoutList, PayoutOut, decode_cursor, next_cursor
from settlement.payments.service import payouts as service
from settlement.payments.service.merchants import get_merchant

router = APIRouter(prefix="/v1/payouts", tags=["payouts"])
Idem = Annotated[Idempotency, Depends(idempotency)]


def _render(payout: object) -> tuple[int, BaseModel]:
    assert isinstance(payout, Payout)
    return (201 if payout.state == PayoutState.PAID.value else 202), PayoutOut.of(payout)


@router.post("", summary="Pay a seller's available balance out over its payout rail", status_code=201,
             response_model=PayoutOut, responses={202: {"model": PayoutOut, "description": "Awaiting the rail"},
                                                   200: {"model": PayoutOut}, **problems(402, 409, 502, 503)})
def create_payout(body: PayoutCreate, principal: Writer, idem: Idem, ctx: Ctx) -> Response:
    def flow(hooks: Idempotency) -> object:
        currency = body.currency
        if currency is None:
            with ctx.factory() as session:
                currency = get_merchant(session, body.merchant_id).settlement_currency
        amount = to_minor(body.amount, currency, positive=True)
        return service.create_payout(ctx, body.merchant_id, amount, body.currency, hooks=hooks)
    return idem.run(principal.key_id, flow, _render, recover=recover)


@router.get("", summary="List payouts, newest first", response_model=PayoutList, responses=problems())
def list_payouts(session: SessionDep, _: Reader, merchant_id: Annotated[int | None, Query(ge=1)] = None,
                 state: Annotated[PayoutState | None, Query()] = None,
                 cursor: Annotated[str | None, Query(max_length=200)] = None,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50) -> PayoutList:
    rows = service.list_payouts(session, merchant_id=merchant_id, state=state.value if state else None,
                                after=decode_cursor(cursor), limit=limit)
    return PayoutList(data=[PayoutOut.of(p) for p in rows], next_cursor=next_cursor(rows, limit))


@router.get("/{payout_id}", summary="One payout", response_model=PayoutOut, responses=problems())
def get_payout(payout_id: Id, session: SessionDep, _: Reader) -> PayoutOut:
    return PayoutOut.of(service.get_payout(session, payout_id))
