"""An API app over a fresh PostgreSQL database, and keys of every scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from settlement.api.app import create_app
from settlement.auth.service import create_key
from settlement.config import Settings
from settlement.db import unit_of_work
from settlement.tasks.base import use_session_factory
from tests.conftest import Database


@pytest.fixture
def app(pg_database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    settings = Settings(database_url=pg_database.url, data_dir=tmp_path_factory.mktemp("data"))
    application = create_app(settings, engine=pg_database.engine)
    use_session_factory(application.state.factory)
    yield application
    use_session_factory(None)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_key(pg_database: Database) -> Callable[..., str]:
    """``make_key("checkout")`` -> a bearer key with those scopes."""

    def make(*scopes: str, name: str = "test") -> str:
        with unit_of_work(pg_database.factory) as session:
            key, _ = create_key(session, name, scopes)
        return key

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- payments: rail simulators, rails configured against them, a client that uses them ---

from tests.payments.fixtures import ctx, rails, rails_config_file, simulators  # noqa: E402

__all__ = ["bearer", "ctx", "rails", "rails_config_file", "simulators"]


@pytest.fixture
def pay(app: FastAPI, client: TestClient, rails: object) -> TestClient:
    """The API client, with the app's rails talking to the simulators."""
    app.state.rails = rails
    return client


@pytest.fixture
def checkout(make_key: Callable[..., str]) -> dict[str, str]:
    """Headers of a checkout key."""
    return bearer(make_key("checkout"))
