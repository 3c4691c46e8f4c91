"""A response is only sent after the request's transaction committed."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from settlement.api.deps import SessionDep
from tests.api.conftest import bearer


def test_failed_commit_is_an_error_not_a_success(app: FastAPI, make_key: Callable[..., str]) -> None:
    router = APIRouter()

    @router.post("/test/write")
    def write(session: SessionDep) -> dict[str, str]:
        session.execute(text("SELECT 1"))

        @event.listens_for(session, "before_commit")
        def _fail(_: Session) -> None:
            raise RuntimeError("the database refused the commit")

        return {"status": "written"}

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/test/write", headers=bearer(make_key("admin")))
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
