"""A reconciliation harness over a fresh PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Database
from tests.reconciliation.factories import Harness, settings_for


@pytest.fixture
def recon(pg_database: Database, tmp_path: Path) -> Harness:
    return Harness(pg_database.factory, settings_for(pg_database.url, tmp_path / "data"))


# The API app, its client and keys (tests/api/conftest.py).
from tests.api.conftest import app, client, make_key  # noqa: E402

__all__ = ["app", "client", "make_key", "recon"]
