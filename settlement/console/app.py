"""The console as an application of its own, mounted by the API app under ``/console``.

Its own app so that its refusals are pages, not problem documents, and its routes stay
out of the API's OpenAPI document and scope matrix: the console authenticates with a
session cookie, not a bearer key. It shares the API's settings and database.

Every response carries a strict Content-Security-Policy (scripts, styles and images
from the console itself only), and pages are never cached.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from settlement.config import Settings
from settlement.console.deps import SESSION_COOKIE
from settlement.console.errors import NotSignedIn
from settlement.console.rendering import base_path, render, sentence
from settlement.console.routes import routers
from settlement.db import SessionFactory
from settlement.errors import SettlementError

log = logging.getLogger("settlement.console")

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
TITLES = {401: "Sign in needed", 403: "Not allowed", 404: "Not found", 405: "Not allowed", 409: "Cannot do that now",
          422: "Cannot use these values", 500: "Something went wrong"}


def create_console(settings: Settings, factory: SessionFactory) -> FastAPI:
    console = FastAPI(title="Settlement console", docs_url=None, redoc_url=None, openapi_url=None)
    console.state.settings = settings
    console.state.factory = factory
    console.add_exception_handler(NotSignedIn, _not_signed_in)
    console.add_exception_handler(SettlementError, _refused)
    console.add_exception_handler(RequestValidationError, _bad_address)
    console.add_exception_handler(StarletteHTTPException, _http_error)
    console.add_exception_handler(Exception, _failed)
    console.middleware("http")(_headers)
    for router in routers():
        console.include_router(router)
    return console


async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.url.path.startswith(base_path(request) + "/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", viewer=None, status=status,
                  context={"title": TITLES.get(status, "Request refused"), "message": message})


def _not_signed_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotSignedIn)
    base = base_path(request)
    reason = str(exc.detail.get("reason", "no_session"))
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = RedirectResponse(f"{base}/sign-in?next={quote(target, safe='')}&reason={reason}",
                                              status_code=303)
    else:
        response = error_page(request, 401, sentence(exc))
    if reason != "no_session":
        response.delete_cookie(SESSION_COOKIE, path=base or "/")
    return response


def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SettlementError)
    return error_page(request, exc.status, sentence(exc))


def _bad_address(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("loc", ("",))[0] == "path" for error in exc.errors()):
        return error_page(request, 404, "There is no such page.")
    fields = ", ".join(sorted({str(e.get("loc", ("", ""))[-1]) for e in exc.errors()}))
    return error_page(request, 422, f"This page cannot use the values given for: {fields}.")


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    messages = {404: "There is no such page.", 405: "This page does not take that kind of request."}
    return error_page(request, exc.status_code, messages.get(exc.status_code, str(exc.detail)))


def _failed(request: Request, exc: Exception) -> Response:
    log.exception("console error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "The console failed to show this page. The error was logged; "
                                    "try again, or tell the team that runs the service.")
