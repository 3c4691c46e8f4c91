"""Health, authentication, problem details."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from settlement.auth.service import revoke_key
from settlement.db import unit_of_work
from tests.api.conftest import bearer
from tests.conftest import Database


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_missing_bad_and_revoked_keys_are_401(client: TestClient, make_key: Callable[..., str],
                                               pg_database: Database) -> None:
    for headers in ({}, bearer("sk_not-a-key"), {"Authorization": "Basic abc"}):
        response = client.get("/v1/accounts", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/unauthenticated"
    key = make_key("checkout")
    assert client.get("/v1/accounts", headers=bearer(key)).status_code == 200
    with unit_of_work(pg_database.factory) as session:
        from sqlalchemy import text

        key_id = session.execute(text("SELECT max(id) FROM api_keys")).scalar_one()
        revoke_key(session, key_id)
    assert client.get("/v1/accounts", headers=bearer(key)).status_code == 401


def test_only_a_digest_is_stored(client: TestClient, make_key: Callable[..., str], pg_database: Database) -> None:
    key = make_key("finance")
    with pg_database.factory() as session:
        from sqlalchemy import text

        stored = session.execute(text("SELECT digest, prefix FROM api_keys")).one()
    assert key not in stored[0]
    assert stored[0] != key
    assert key.startswith(stored[1])


def test_problem_pages_describe_codes(client: TestClient) -> None:
    page = client.get("/problems/insufficient_funds").json()
    assert page["status"] == 402
    assert "limit" in page["description"]
    assert client.get("/problems/no_such_code").status_code == 404
