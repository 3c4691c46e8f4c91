"""Request dependencies: the unit of work and the caller's identity.

Every endpoint declares the scopes it accepts with ``Security(Guard(...))``; the
guard is also how the scope-matrix test finds each endpoint's scopes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from settlement.auth import cache
from settlement.auth.service import Forbidden, Principal, Scope, Unauthenticated, authenticate, digest
from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work

#: The largest id a table holds (PostgreSQL bigint).
MAX_ID = 2**63 - 1
#: A row id in a path: larger ones are refused as invalid (422), never sent to the
#: database, where they do not fit a bigint.
Id = Annotated[int, Path(ge=1, le=MAX_ID)]

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sk_...`")


# Dependencies that do no I/O are async: FastAPI runs a sync one in the thread pool,
# a hop per dependency per request.
async def session_factory(request: Request) -> SessionFactory:
    factory = request.app.state.factory
    assert factory is not None
    return factory  # type: ignore[no-any-return]


async def settings(request: Request) -> Settings:
    value = request.app.state.settings
    assert isinstance(value, Settings)
    return value


def get_session(factory: Annotated[SessionFactory, Depends(session_factory)]) -> Iterator[Session]:
    """The request's unit of work: committed when the endpoint returns, rolled back
    when it raises (a durable ledger refusal is committed, then re-raised)."""
    with unit_of_work(factory) as session:
        yield session


#: ``scope="function"``: the unit of work ends (commits) when the endpoint returns,
#: before the response is sent, so a client is never told of a change whose commit
#: then failed (the default "request" scope would commit after sending).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class Guard:
    """Authenticate the bearer key and require one of ``scopes`` (admin passes all).

    A key found valid is trusted for a few seconds without asking the database again
    (:mod:`settlement.auth.cache`: a revocation in this process applies at once, in
    another within the cache's time to live). The guard runs on the event loop, so a
    cached key costs no thread hop and no transaction."""

    def __init__(self, *scopes: Scope) -> None:
        self.scopes = frozenset(scopes)

    async def __call__(self, request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        key = credentials.credentials if credentials else None
        if not key:
            raise Unauthenticated("send the API key as 'Authorization: Bearer <key>'")
        database = _database(request)
        hashed = digest(key)
        principal = cache.keys.get(database, hashed)
        if principal is None:
            generation = cache.keys.generation()
            principal = await run_in_threadpool(_lookup, request.app.state.factory, key)
            cache.keys.put(database, hashed, principal, generation)
        if not principal.allows(self.scopes):
            needed = " or ".join(sorted(s.value for s in self.scopes))
            raise Forbidden(f"this endpoint needs the {needed} scope", needed=sorted(s.value for s in self.scopes))
        return principal

    def __repr__(self) -> str:
        return f"Guard({', '.join(sorted(s.value for s in self.scopes))})"


def _lookup(factory: SessionFactory, key: str) -> Principal:
    # A short session of its own: authentication must not share the request's
    # unit of work, whose commit or rollback depends on the endpoint.
    with factory() as session:
        return authenticate(session, key)


def _database(request: Request) -> str:
    """The app's database, naming its entries in the key cache."""
    state = request.app.state
    name = getattr(state, "database_name", None)
    if name is None:
        name = state.database_name = state.engine.url.render_as_string(hide_password=True)
    assert isinstance(name, str)
    return name


#: Common guards. Reads also admit the auditor, who can read everything.
CHECKOUT = Guard(Scope.CHECKOUT)
CHECKOUT_READ = Guard(Scope.CHECKOUT, Scope.FINANCE, Scope.AUDITOR)
FINANCE = Guard(Scope.FINANCE)
FINANCE_READ = Guard(Scope.FINANCE, Scope.AUDITOR)
AUDITOR_READ = Guard(Scope.AUDITOR, Scope.FINANCE)
ADMIN = Guard(Scope.ADMIN)
