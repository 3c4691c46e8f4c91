"""Real databases for the test suite.

Each pytest-xdist worker runs the Alembic migrations once into a template database
(PostgreSQL) and a template file (SQLite); every test that asks for a database gets
a fresh copy of it (PostgreSQL ``CREATE DATABASE ... TEMPLATE``, about 70 ms), so
tests commit for real, the deferred constraint triggers fire, and nothing leaks
between tests. No test builds the schema any other way.

PostgreSQL is required: a test that needs it fails when the server does not answer.
Set ``SETTLEMENT_TEST_SKIP_PG=1`` to skip those tests on a machine without it (CI
never sets it).
"""

from __future__ import annotations

import itertools
import os
import queue
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from settlement.db import SessionFactory, make_engine, make_session_factory
from settlement.db.migrate import upgrade

PG_HOST = os.environ.get("SETTLEMENT_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("SETTLEMENT_TEST_PG_PORT", "5432")
PG_USER = os.environ.get("SETTLEMENT_TEST_PG_USER", "postgres")
SKIP_PG = os.environ.get("SETTLEMENT_TEST_SKIP_PG") == "1"

_counter = itertools.count()


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True)


class _Dropper:
    """Drops finished test databases on a background thread: a DROP DATABASE waits on
    a checkpoint (a second or more on a busy machine), and no test needs to wait for
    the previous test's database to be gone. The session's last teardown waits for
    the pending drops (xdist workers may exit without running atexit handlers)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def drop(self, name: str) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="drop-test-databases", daemon=True)
            self._thread.start()
        self._queue.put(name)

    def _run(self) -> None:
        while (name := self._queue.get()) is not None:
            try:
                with _admin() as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error:
                pass  # a leftover test database is harmless; the next run drops its own

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=120)
            self._thread = None


_dropper = _Dropper()


@dataclass
class Database:
    """A migrated database of one dialect, private to one test."""

    url: str
    dialect: str
    engine: Engine
    factory: SessionFactory


@pytest.fixture(scope="session")
def worker_tag(worker_id: str) -> str:
    return f"{worker_id}_{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def _drain_database_drops() -> Iterator[None]:
    yield
    _dropper.close()


@pytest.fixture(scope="session")
def pg_template(worker_tag: str) -> Iterator[str]:
    if SKIP_PG:
        pytest.skip("SETTLEMENT_TEST_SKIP_PG=1")
    name = f"settlement_tpl_{worker_tag}"
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    upgrade(pg_url(name))
    yield name
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _fresh_pg(template: str, worker_tag: str) -> Iterator[Database]:
    name = f"settlement_t_{worker_tag}_{next(_counter)}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    url = pg_url(name)
    engine = make_engine(url, pool_size=12)
    try:
        yield Database(url, "postgresql", engine, make_session_factory(engine))
    finally:
        engine.dispose()
        _dropper.drop(name)


def _fresh_sqlite(template: Path, directory: Path) -> Database:
    path = directory / f"settlement-{next(_counter)}.db"
    shutil.copyfile(template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    return Database(url, "sqlite", engine, make_session_factory(engine))


@pytest.fixture
def pg_database(pg_template: str, worker_tag: str) -> Iterator[Database]:
    """A fresh, migrated PostgreSQL database."""
    yield from _fresh_pg(pg_template, worker_tag)


@pytest.fixture
def sqlite_database(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated SQLite file."""
    db = _fresh_sqlite(sqlite_template, tmp_path)
    yield db
    db.engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest) -> Database:
    """The core ledger tests run on both supported databases."""
    name = "pg_database" if request.param == "postgresql" else "sqlite_database"
    db: Database = request.getfixturevalue(name)
    return db
