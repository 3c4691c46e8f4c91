"""Request plumbing of the console: settings and sessions from the app, the signed-in
viewer from the session cookie, and the checks every form passes (CSRF token, same
origin, a key that may act)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from settlement.config import Settings
from settlement.console import service
from settlement.console.errors import CsrfRefused
from settlement.console.service import Viewer
from settlement.db import SessionFactory, unit_of_work

SESSION_COOKIE = "settlement_console"
SIGN_IN_COOKIE = "settlement_console_sign_in"


def settings_of(request: Request) -> Settings:
    value = request.app.state.settings
    assert isinstance(value, Settings)
    return value


def factory_of(request: Request) -> SessionFactory:
    return request.app.state.factory  # type: ignore[no-any-return]


@contextmanager
def reading(request: Request) -> Iterator[Session]:
    """A session for reading a page (rolled back when the page is rendered)."""
    with factory_of(request)() as session:
        yield session


def current_viewer(request: Request) -> Viewer:
    """The signed-in viewer; ``console_not_signed_in`` otherwise (GET pages turn it into
    a redirect to the sign-in page)."""
    with unit_of_work(factory_of(request)) as session:
        return service.viewer(session, settings_of(request), request.cookies.get(SESSION_COOKIE))


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def check_origin(request: Request) -> None:
    """A form posted from another site is refused even before its token is looked at
    (browsers send ``Origin`` with every POST; a request without one is left to the
    token check)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if origin == "null" or urlsplit(origin).netloc != request.headers.get("host", ""):
        raise CsrfRefused("the form was posted from another site", origin=origin)


def check_form(request: Request, viewer: Viewer, csrf_token: str | None, *, acting: bool) -> None:
    """Every POST: same origin and the session's token; ``acting``: a key that may change
    things (auditors are refused with 403)."""
    check_origin(request)
    viewer.check_csrf(csrf_token)
    if acting:
        viewer.require_actor()


def cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https" or settings_of(request).console_secure_cookies
