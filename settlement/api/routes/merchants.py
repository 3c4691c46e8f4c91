"""Merchants (sellers): settlement currency, commission, payout rail and destination."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from settlement.api.deps import Id, SessionDep
from settlement.api.idempotency import Idempotency, idempotency
from settlement.api.routes.payments import Reader, Writer, problems
from settlement.db import unit_of_work
from settlement.money import format_minor
from settlement.payments.models import Merchant
from settlement.payments.schemas import (
    MerchantBalance,
    MerchantCreate,
    MerchantList,
    MerchantOut,
    MerchantUpdate,
    decode_cursor,
    next_cursor,
)
from settlement.payments.service import merchants as service

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])
Idem = Annotated[Idempotency, Depends(idempotency)]


def _created(merchant: object) -> tuple[int, BaseModel]:
    assert isinstance(merchant, Merchant)
    return 201, MerchantOut.of(merchant)


@router.post("", summary="Register a seller", status_code=201, response_model=MerchantOut,
             responses=problems(409))
def create_merchant(body: MerchantCreate, principal: Writer, idem: Idem, request: Request) -> Response:
    settings = request.app.state.settings
    spec = service.MerchantSpec(
        name=body.name, settlement_currency=body.settlement_currency,
        commission_rate=body.commission_rate if body.commission_rate is not None else settings.default_commission_rate,
        external_id=body.external_id, payout_rail=body.payout_rail, payout_destination=body.payout_destination,
        payout_beneficiary=body.payout_beneficiary, metadata=body.metadata)

    def flow(hooks: Idempotency) -> object:
        with unit_of_work(idem.factory) as session:
            hooks.begin(session)
            merchant = service.create_merchant(session, spec)
            hooks.finish(session, merchant, None)
        return merchant
    return idem.run(principal.key_id, flow, _created, required=False)


@router.get("", summary="List sellers, newest first", response_model=MerchantList, responses=problems())
def list_merchants(session: SessionDep, _: Reader, cursor: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> MerchantList:
    rows = service.list_merchants(session, after=decode_cursor(cursor), limit=limit)
    return MerchantList(data=[MerchantOut.of(m) for m in rows], next_cursor=next_cursor(rows, limit))


@router.get("/{merchant_id}", summary="One seller", response_model=MerchantOut, responses=problems())
def get_merchant(merchant_id: Id, session: SessionDep, _: Reader) -> MerchantOut:
    return MerchantOut.of(service.get_merchant(session, merchant_id))


@router.patch("/{merchant_id}", summary="Change a seller's commission or payout details", response_model=MerchantOut,
              responses=problems())
def update_merchant(merchant_id: Id, body: MerchantUpdate, session: SessionDep, _: Writer) -> MerchantOut:
    changes = body.model_dump(exclude_unset=True)
    merchant = service.update_merchant(session, merchant_id, changes)
    out = MerchantOut.of(merchant)
    session.commit()
    return out


@router.get("/{merchant_id}/balance", summary="What the seller is owed, and what is available to pay out",
            response_model=MerchantBalance, responses=problems())
def balance(merchant_id: Id, session: SessionDep, _: Reader) -> MerchantBalance:
    merchant = service.get_merchant(session, merchant_id)
    found = service.payable_balance(session, merchant)
    cur = merchant.settlement_currency
    return MerchantBalance(merchant_id=merchant.id, account=found.code, currency=cur,
                           balance=format_minor(found.balance, cur), available=format_minor(found.available, cur))
