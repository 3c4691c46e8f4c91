"""An API over a fresh PostgreSQL database with a journal signing key made for the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from settlement.api.app import create_app
from settlement.tasks.base import use_session_factory
from tests.api.conftest import make_key
from tests.conftest import Database
from tests.journal.factories import Keys, make_keys, settings_for

__all__ = ["journal_api", "keys", "make_key"]


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return make_keys(tmp_path)


@pytest.fixture
def journal_api(pg_database: Database, keys: Keys, tmp_path: Path) -> Iterator[TestClient]:
    application: FastAPI = create_app(settings_for(pg_database.url, keys, tmp_path / "data"), engine=pg_database.engine)
    use_session_factory(application.state.factory)
    with TestClient(application, raise_server_exceptions=False) as client:
        yield client
    use_session_factory(None)
