"""Liveness, readiness and problem type pages (no authentication)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy import text

from settlement.api.deps import session_factory, settings
from settlement.api.problems import describe
from settlement.config import Settings
from settlement.db import SessionFactory

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and the broker answer", responses={503: {"description": "not ready"}})
def readyz(factory: Annotated[SessionFactory, Depends(session_factory)],
           config: Annotated[Settings, Depends(settings)]) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with factory() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure to reach the database
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if config.broker_url:
        from settlement.tasks.app import broker_reachable

        checks["broker"] = "ok" if broker_reachable(config.broker_url) else "unavailable"
    else:
        checks["broker"] = "inline (no broker configured)"
    ready = all(v == "ok" or v.startswith("inline") for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/problems/{code}", summary="What an error code means")
def problem_page(code: str) -> dict[str, Any]:
    described = describe(code)
    if described is None:
        raise HTTPException(404, f"no error code {code!r}")
    return described
