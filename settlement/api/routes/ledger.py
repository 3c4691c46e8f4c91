"""Ledger reads: accounts, balances (now or as of a time), an account's postings."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Security

from settlement.api.deps import CHECKOUT_READ, Id, SessionDep
from settlement.auth.service import Principal
from settlement.ledger import Ledger
from settlement.ledger.schemas import AccountLineList, AccountLineOut, AccountList, AccountOut, BalanceOut

router = APIRouter(prefix="/v1/accounts", tags=["ledger"])
Reader = Annotated[Principal, Security(CHECKOUT_READ)]


@router.get("", summary="List ledger accounts", response_model=AccountList)
def list_accounts(session: SessionDep, _: Reader,
                  code_prefix: Annotated[str | None, Query(max_length=200)] = None,
                  currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
                  cursor: Annotated[str | None, Query(max_length=500)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> AccountList:
    page = Ledger(session).list_accounts(cursor=cursor, limit=limit, currency=currency, code_prefix=code_prefix)
    return AccountList(data=[AccountOut.of(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/{account_id}", summary="One ledger account", response_model=AccountOut)
def get_account(account_id: Id, session: SessionDep, _: Reader) -> AccountOut:
    return AccountOut.of(Ledger(session).get_account(account_id))


@router.get("/{account_id}/balance", summary="Balance now, or as recorded at a past time",
            response_model=BalanceOut)
def balance(account_id: Id, session: SessionDep, _: Reader,
            as_of: Annotated[dt.datetime | None, Query(description="ISO 8601 time with a zone")] = None
            ) -> BalanceOut:
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    return BalanceOut.of(Ledger(session).balance(account_id, as_of=as_of))


@router.get("/{account_id}/entries", summary="The account's postings, newest first",
            response_model=AccountLineList)
def entries(account_id: Id, session: SessionDep, _: Reader,
            cursor: Annotated[str | None, Query(max_length=500)] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> AccountLineList:
    page = Ledger(session).account_lines(account_id, cursor=cursor, limit=limit)
    return AccountLineList(data=[AccountLineOut.of(line) for line in page.items], next_cursor=page.next_cursor)
