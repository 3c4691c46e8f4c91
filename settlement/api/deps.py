"""Request dependencies: the unit of work and the caller's identity.

Every endpoint declares the scopes it accepts with ``Security(Guard(...))``; the
guard is also how the scope-matrix test finds each endpoint's scopes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from settlement.auth.service import Forbidden, Principal, Scope, authenticate
from settlement.config import Settings
from settlement.db import SessionFactory, unit_of_work

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sk_...`")


def session_factory(request: Request) -> SessionFactory:
    factory = request.app.state.factory
    assert factory is not None
    return factory  # type: ignore[no-any-return]


def settings(request: Request) -> Settings:
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
    """Authenticate the bearer key and require one of ``scopes`` (admin passes all)."""

    def __init__(self, *scopes: Scope) -> None:
        self.scopes = frozenset(scopes)

    def __call__(self, factory: Annotated[SessionFactory, Depends(session_factory)],
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        # A short session of its own: authentication must not share the request's
        # unit of work, whose commit or rollback depends on the endpoint.
        with factory() as session:
            principal = authenticate(session, credentials.credentials if credentials else None)
        if not principal.allows(self.scopes):
            needed = " or ".join(sorted(s.value for s in self.scopes))
            raise Forbidden(f"this endpoint needs the {needed} scope", needed=sorted(s.value for s in self.scopes))
        return principal

    def __repr__(self) -> str:
        return f"Guard({', '.join(sorted(s.value for s in self.scopes))})"


#: Common guards. Reads also admit the auditor, who can read everything.
CHECKOUT = Guard(Scope.CHECKOUT)
CHECKOUT_READ = Guard(Scope.CHECKOUT, Scope.FINANCE, Scope.AUDITOR)
FINANCE = Guard(Scope.FINANCE)
FINANCE_READ = Guard(Scope.FINANCE, Scope.AUDITOR)
AUDITOR_READ = Guard(Scope.AUDITOR, Scope.FINANCE)
ADMIN = Guard(Scope.ADMIN)
