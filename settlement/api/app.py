"""The FastAPI application.

``create_app()`` builds one app per process from :class:`Settings` (``settlement
serve`` runs it under uvicorn with as many workers as configured). The engine and
session factory live on ``app.state``; nothing is configured at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from anyio import to_thread
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
    app = FastAPI(title="Settlement", version="0.1.0", description=DESCRIPTION, openapi_url="/openapi.json",
                  lifespan=_threads_per_connection(config.database_pool_size))
    app.state.settings = config
    app.state.engine = database
    app.state.factory = make_session_factory(database)
    problems.install(app)
    for router in routers():
        app.include_router(router)
    # The finance console: pages with a session cookie, outside the API's schema.
    app.mount("/console", create_console(config, app.state.factory))
    return app


def _threads_per_connection(pool_size: int) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Run at most as many endpoints at once as the process has pooled database
    connections (anyio's default is 40 threads). A request beyond that waits for a
    thread, not for a connection: the pool never opens and closes overflow
    connections under load, and fewer transactions contend for the same rows."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = max(pool_size, 1)
        yield

    return lifespan


def app_from_environment() -> FastAPI:
    """Entry point for ``uvicorn --factory settlement.api.app:app_from_environment``."""
    return create_app(Settings())
