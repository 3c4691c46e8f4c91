"""The FastAPI application.

``create_app()`` builds one app per process from :class:`Settings` (``settlement
serve`` runs it under uvicorn with as many workers as configured). The engine and
session factory live on ``app.state``; nothing is configured at import time.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from settlement.api import problems
from settlement.api.routes import routers
from settlement.config import Settings, get_settings
from settlement.console import create_console
from settlement.db import make_session_factory

DESCRIPTION = """Cross-border payment settlement: payments over Mir, UnionPay and Alipay, one
double-entry ledger, reconciliation, and a verifiable journal.

Authenticate with `Authorization: Bearer <api key>`. Every POST that moves money takes an
`Idempotency-Key` header. Errors are RFC 9457 problem details; `type` is `/problems/<code>`.
Amounts are decimal strings with their currency."""


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    config = settings or get_settings()
    database = engine or config.engine()
    app = FastAPI(title="Settlement", version="0.1.0", description=DESCRIPTION, openapi_url="/openapi.json")
    app.state.settings = config
    app.state.engine = database
    app.state.factory = make_session_factory(database)
    problems.install(app)
    for router in routers():
        app.include_router(router)
    # The finance console: pages with a session cookie, outside the API's schema.
    app.mount("/console", create_console(config, app.state.factory))
    return app


def app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory settlement.api.app:app_from_environment``."""
    return create_app(Settings())
