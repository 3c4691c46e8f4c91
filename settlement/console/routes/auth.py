"""Sign in with an API key, sign out.

The sign-in form has no session yet, so it is protected by a double-submit token: a
random value in an HttpOnly, SameSite=Strict cookie set with the form, and the same
value in the form. A successful sign-in replaces it by the session cookie.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from settlement.console import service
from settlement.console.deps import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    ViewerDep,
    check_form,
    check_origin,
    cookie_secure,
    factory_of,
    settings_of,
)
from settlement.console.errors import CsrfRefused, NotSignedIn
from settlement.console.rendering import base_path, render, sentence
from settlement.db import unit_of_work
from settlement.errors import SettlementError

router = APIRouter()

REASONS = {
    "expired": "Your session expired. Sign in again.",
    "idle": "Your session ended after a while without activity. Sign in again.",
    "signed_out": "You signed out.",
    "revoked": "The API key of your session was revoked.",
    "unknown": "Your session is no longer known. Sign in again.",
    "no_session": "Sign in to see that page.",
}
FormText = Annotated[str | None, Form(max_length=2000)]


def safe_next(request: Request, target: str | None) -> str:
    """Only a page of this console is a place to go after signing in."""
    base = base_path(request)
    if target and target.startswith(base + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return base + "/"


def _sign_in_page(request: Request, *, next_page: str, status: int = 200, error: str | None = None,
                  notice: str | None = None) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "sign_in.html", viewer=None, status=status,
                      context={"csrf": token, "next": next_page, "error": error, "notice": notice})
    response.set_cookie(SIGN_IN_COOKIE, token, max_age=3600, path=base_path(request) or "/", httponly=True,
                        samesite="strict", secure=cookie_secure(request))
    return response


@router.get("/sign-in", name="sign_in")
def sign_in_page(*, request: Request, next_page: Annotated[str | None, Query(alias="next", max_length=2000)] = None,
                 reason: Annotated[str | None, Query(max_length=32)] = None) -> Response:
    target = safe_next(request, next_page)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            with unit_of_work(factory_of(request)) as session:
                service.viewer(session, settings_of(request), token)
            return RedirectResponse(target, status_code=303)
        except NotSignedIn:
            pass
    return _sign_in_page(request, next_page=target, notice=REASONS.get(reason or ""))


@router.post("/sign-in")
def sign_in(*, request: Request, api_key: FormText = None, csrf_token: FormText = None,
            next_page: Annotated[str | None, Form(alias="next", max_length=2000)] = None) -> Response:
    target = safe_next(request, next_page)
    try:
        check_origin(request)
        expected = request.cookies.get(SIGN_IN_COOKIE) or ""
        if not csrf_token or not expected or not hmac.compare_digest(csrf_token.encode(), expected.encode()):
            raise CsrfRefused("the sign-in form's token does not match its cookie")
        if not (api_key or "").strip():
            return _sign_in_page(request, next_page=target, status=422,
                                 error="Enter your API key (it starts with sk_).")
        with unit_of_work(factory_of(request)) as session:
            token, _ = service.sign_in(session, settings_of(request), api_key or "")
    except SettlementError as error:
        return _sign_in_page(request, next_page=target, status=error.status, error=sentence(error))
    response = RedirectResponse(target, status_code=303)
    base = base_path(request) or "/"
    response.set_cookie(SESSION_COOKIE, token, max_age=settings_of(request).console_session_seconds, path=base,
                        httponly=True, samesite="strict", secure=cookie_secure(request))
    response.delete_cookie(SIGN_IN_COOKIE, path=base)
    return response


@router.post("/sign-out")
def sign_out(*, request: Request, viewer: ViewerDep, csrf_token: FormText = None) -> Response:
    check_form(request, viewer, csrf_token, acting=False)
    with unit_of_work(factory_of(request)) as session:
        service.sign_out(session, viewer.session_id)
    response = RedirectResponse(f"{base_path(request)}/sign-in?reason=signed_out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=base_path(request) or "/")
    return response
