"""The API key cache: valid keys are trusted for a few seconds; a revocation through
revoke_key applies at once in this process, one made elsewhere within the TTL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from settlement.auth import cache
from settlement.auth.service import Principal, Scope, revoke_key
from settlement.db import unit_of_work
from tests.api.conftest import bearer
from tests.conftest import Database


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The process's key cache, on a clock the test moves."""
    ticking = Clock()
    monkeypatch.setattr(cache, "keys", cache.KeyCache(ttl=10, clock=ticking))
    return ticking


def _key_id(db: Database) -> int:
    with db.factory() as session:
        return int(session.execute(text("SELECT max(id) FROM api_keys")).scalar_one())


def _revoke_elsewhere(db: Database, key_id: int) -> None:
    """What another process (the CLI, another worker) does: the row changes, this
    process's cache is not told."""
    with unit_of_work(db.factory) as session:
        session.execute(text("UPDATE api_keys SET revoked_at = now() WHERE id = :id"), {"id": key_id})


def test_revocation_elsewhere_applies_within_the_ttl(client: TestClient, make_key: Callable[..., str],
                                                      pg_database: Database, clock: Clock) -> None:
    headers = bearer(make_key("checkout"))
    assert client.get("/v1/accounts", headers=headers).status_code == 200
    _revoke_elsewhere(pg_database, _key_id(pg_database))
    clock.now += 9.9
    assert client.get("/v1/accounts", headers=headers).status_code == 200   # still cached
    clock.now += 0.2
    response = client.get("/v1/accounts", headers=headers)
    assert response.status_code == 401
    assert response.json()["type"] == "/problems/unauthenticated"
    clock.now += 60
    assert client.get("/v1/accounts", headers=headers).status_code == 401   # refusals are not cached


def test_revoke_key_applies_at_once_in_its_process(client: TestClient, make_key: Callable[..., str],
                                                    pg_database: Database, clock: Clock) -> None:
    headers = bearer(make_key("checkout"))
    other = bearer(make_key("finance"))
    assert client.get("/v1/accounts", headers=headers).status_code == 200
    assert client.get("/v1/accounts", headers=other).status_code == 200
    with unit_of_work(pg_database.factory) as session:
        revoke_key(session, _key_id(pg_database) - 1)
    assert client.get("/v1/accounts", headers=headers).status_code == 401
    assert client.get("/v1/accounts", headers=other).status_code == 200


def test_scopes_are_checked_on_cached_keys(client: TestClient, make_key: Callable[..., str], clock: Clock) -> None:
    headers = bearer(make_key("auditor"))
    assert client.get("/v1/accounts", headers=headers).status_code == 200
    response = client.post("/v1/merchants", headers={**headers, "Idempotency-Key": "k"},
                           json={"name": "x", "settlement_currency": "RUB"})
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/forbidden"


def test_a_lookup_that_raced_a_clearing_is_not_stored() -> None:
    clock = Clock()
    keys = cache.KeyCache(ttl=10, clock=clock)
    principal = Principal(1, "k", frozenset({Scope.CHECKOUT}))
    started = keys.generation()
    keys.clear()                                # a revocation committed meanwhile
    keys.put("db", "digest", principal, started)
    assert keys.get("db", "digest") is None
    keys.put("db", "digest", principal, keys.generation())
    assert keys.get("db", "digest") == principal
    assert keys.get("other-db", "digest") is None
    clock.now += 10
    assert keys.get("db", "digest") is None


def test_a_zero_ttl_caches_nothing() -> None:
    keys = cache.KeyCache(ttl=0)
    keys.put("db", "digest", Principal(1, "k", frozenset({Scope.ADMIN})), keys.generation())
    assert keys.get("db", "digest") is None
