"""Errors as RFC 9457 problem details (``application/problem+json``).

Every refusal the service raises is a :class:`~settlement.errors.SettlementError`
with a stable code; its problem ``type`` is ``/problems/<code>``, a page this API
serves describing the error. Business refusals are 4xx; only a bug is a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from settlement.errors import SettlementError, all_error_classes

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("settlement.api")

#: Codes the HTTP layer itself produces, with their titles.
HTTP_CODES: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "The request body is not valid JSON"),
    "validation_error": (422, "The request does not match the schema"),
    "unknown_field": (422, "The request has a field this endpoint does not take"),
    "not_found": (404, "No such resource"),
    "method_not_allowed": (405, "Method not allowed"),
    "internal_error": (500, "Internal error"),
}


def problem_type(code: str) -> str:
    return f"/problems/{code}"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": problem_type(code), "title": title, "status": status, "detail": detail,
                            "code": code}
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _settlement_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SettlementError)
    return problem(exc.status, exc.code, exc.title, exc.message, instance=str(request.url.path),
                   errors=exc.detail or None, replayed=True if exc.replayed else None)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = [{"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""),
               "kind": e.get("type", "")} for e in exc.errors()]
    kinds = {i["kind"] for i in issues}
    if "json_invalid" in kinds:
        code = "malformed_json"
    elif kinds == {"extra_forbidden"}:
        code = "unknown_field"
    else:
        code = "validation_error"
    status, title = HTTP_CODES[code]
    summary = "; ".join(f"{i['location']}: {i['message']}" for i in issues[:5])
    return problem(status, code, title, summary, instance=str(request.url.path), errors=issues)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
    title = HTTP_CODES.get(code, (exc.status_code, "HTTP error"))[1]
    return problem(exc.status_code, code, title, str(exc.detail), instance=str(request.url.path))


def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal_error", "Internal error", "the service failed; the error was logged",
                   instance=str(request.url.path))


def install(app: FastAPI) -> None:
    app.add_exception_handler(SettlementError, _settlement_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)


def describe(code: str) -> dict[str, Any] | None:
    """What ``/problems/<code>`` shows."""
    if code in HTTP_CODES:
        status, title = HTTP_CODES[code]
        return {"code": code, "status": status, "title": title, "description": title}
    cls = all_error_classes().get(code)
    if cls is None:
        return None
    return {"code": code, "status": cls.status, "title": cls.title,
            "description": " ".join((cls.__doc__ or cls.title).split())}
