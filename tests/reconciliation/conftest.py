"""A reconciliation harness, and the API app, over a fresh database: every test that
uses them runs on PostgreSQL and on SQLite (the ``database`` fixture), so the rules,
outcomes, bookings and the exceptions queue are shown to be the same on both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from settlement.api.app import create_app
from settlement.auth.service import create_key
from settlement.config import Settings
from settlement.db import unit_of_work
from settlement.tasks.base import use_session_factory
from tests.conftest import Database
from tests.reconciliation.factories import Harness, settings_for


@pytest.fixture
def recon(database: Database, tmp_path: Path) -> Harness:
    return Harness(database.factory, settings_for(database.url, tmp_path / "data"))


@pytest.fixture
def pg_recon(pg_database: Database, tmp_path: Path) -> Harness:
    """For what only PostgreSQL has (a Celery worker over Redis on the test server)."""
    return Harness(pg_database.factory, settings_for(pg_database.url, tmp_path / "data"))


@pytest.fixture
def app(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The API on the test's database (tests/api/conftest.py's, on both databases)."""
    settings = Settings(database_url=database.url, data_dir=tmp_path_factory.mktemp("data"))
    application = create_app(settings, engine=database.engine)
    use_session_factory(application.state.factory)
    yield application
    use_session_factory(None)


@pytest.fixture
def make_key(database: Database) -> Callable[..., str]:
    """``make_key("checkout")`` -> a bearer key with those scopes."""

    def make(*scopes: str, name: str = "test") -> str:
        with unit_of_work(database.factory) as session:
            key, _ = create_key(session, name, scopes)
        return key

    return make


# The API client (tests/api/conftest.py), over the app above.
from tests.api.conftest import client  # noqa: E402

__all__ = ["app", "client", "make_key", "pg_recon", "recon"]
