"""Endpoints run on at most as many threads per process as the pool has connections."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter
from fastapi.testclient import TestClient

from settlement.api.app import create_app
from settlement.config import Settings
from tests.conftest import Database


def test_endpoint_threads_match_the_connection_pool(pg_database: Database) -> None:
    app = create_app(Settings(database_url=pg_database.url, database_pool_size=3), engine=pg_database.engine)
    router = APIRouter()

    @router.get("/test/threads")
    async def threads() -> dict[str, float]:
        return {"tokens": to_thread.current_default_thread_limiter().total_tokens}

    app.include_router(router)
    with TestClient(app) as client:
        assert client.get("/test/threads").json() == {"tokens": 3}
