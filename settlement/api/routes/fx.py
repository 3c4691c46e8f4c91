"""FX: rates and quotes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Security
from fastapi.responses import Response
from pydantic import BaseModel

from settlement.api.deps import FINANCE, Id, SessionDep
from settlement.api.idempotency import Idempotency, idempotency
from settlement.api.routes.payments import Reader, Writer, problems, rails
from settlement.auth.service import Principal
from settlement.db import unit_of_work
from settlement.fx import service
from settlement.fx.schemas import QuoteCreate, QuoteOut, RateList, RateOut
from settlement.fx.sources import source_from_setting
from settlement.money import to_minor
from settlement.payments.rails import Rails

router = APIRouter(prefix="/v1/fx", tags=["fx"])
Idem = Annotated[Idempotency, Depends(idempotency)]


@router.post("/quotes", summary="Quote a conversion, valid until expires_at", status_code=201,
             response_model=QuoteOut, responses=problems(409))
def create_quote(body: QuoteCreate, principal: Writer, idem: Idem, request: Request) -> Response:
    settings = request.app.state.settings

    def flow(hooks: Idempotency) -> object:
        sell_minor = to_minor(body.sell_amount, body.sell_currency, positive=True) if body.sell_amount else None
        with unit_of_work(idem.factory) as session:
            hooks.begin(session)
            quote = service.create_quote(session, body.sell_currency, body.buy_currency, spread=settings.fx_spread,
                                         ttl_seconds=settings.fx_quote_ttl_seconds)
            hooks.finish(session, (quote, sell_minor), None)
        return quote

    def render(result: object) -> tuple[int, BaseModel]:
        assert isinstance(result, tuple)
        return 201, QuoteOut.of(*result)
    return idem.run(principal.key_id, flow, render, required=False)


@router.get("/quotes/{quote_id}", summary="One quote", response_model=QuoteOut, responses=problems())
def get_quote(quote_id: Id, session: SessionDep, _: Reader) -> QuoteOut:
    return QuoteOut.of(service.get_quote(session, quote_id))


@router.get("/rates", summary="The newest rate of every currency pair", response_model=RateList,
            responses=problems())
def latest_rates(session: SessionDep, _: Reader) -> RateList:
    return RateList(data=[RateOut.of(r) for r in service.latest_rates(session)])


@router.post("/rates/refresh", summary="Load a new rate snapshot from the configured source",
             response_model=RateList, responses=problems(409, 503))
def refresh_rates(session: SessionDep, _: Annotated[Principal, Security(FINANCE)], request: Request,
                  rail_set: Annotated[Rails, Depends(rails)]) -> RateList:
    source = source_from_setting(request.app.state.settings.fx_rates_source, rail_set.get)
    rows = service.refresh(session, source)
    out = RateList(data=[RateOut.of(r) for r in rows])
    session.commit()
    return out
