"""The console over a fresh PostgreSQL database: settings (with a journal signing key
generated here and the tasks' environment pointing at the same places), API keys,
seeded data, a TestClient, and, for the browser tests, the app under uvicorn on a
free port and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from adapters.registry import get_rail_plugin
from settlement.api.app import create_app
from settlement.auth.service import create_key
from settlement.config import Settings, get_settings
from settlement.db import unit_of_work
from settlement.tasks.app import get_celery
from settlement.tasks.base import use_session_factory
from tests.conftest import Database
from tests.conftest import _fresh_pg as fresh_pg
from tests.console.seed import Seeded, seed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]


def configure(monkeypatch: pytest.MonkeyPatch, database: Database, data: Path) -> Settings:
    """Settings of the app; tasks run inline read theirs from the environment, so it
    says the same (database, data folder, a signing key generated here)."""
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    for name, value in {"DATABASE_URL": database.url, "DATA_DIR": str(data), "JOURNAL_SIGNING_KEY": pem,
                        "BROKER_URL": ""}.items():
        monkeypatch.setenv(f"SETTLEMENT_{name}", value)
    get_settings.cache_clear()
    get_celery.cache_clear()
    use_session_factory(database.factory)
    return Settings(database_url=database.url, data_dir=data, journal_signing_key=SecretStr(pem))


def unconfigure() -> None:
    use_session_factory(None)
    get_settings.cache_clear()
    get_celery.cache_clear()


@pytest.fixture
def console_settings(pg_database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    yield configure(monkeypatch, pg_database, tmp_path / "data")
    unconfigure()


@pytest.fixture
def app(pg_database: Database, console_settings: Settings) -> FastAPI:
    return create_app(console_settings, engine=pg_database.engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def make_key(pg_database: Database) -> Callable[..., str]:
    """``make_key("finance", name="alice")`` -> a new API key with those scopes."""

    def make(*scopes: str, name: str = "someone") -> str:
        with unit_of_work(pg_database.factory) as session:
            key, _ = create_key(session, name, scopes)
        return key

    return make


def seed_with_own_simulator(database: Database, settings: Settings) -> Seeded:
    """Seed through a Mir simulator of its own (a fresh book: no other test's sales in its file)."""
    simulator = get_rail_plugin("mir").create_simulator()
    simulator.start()
    try:
        return seed(database.factory, settings, simulator)
    finally:
        simulator.stop()


@pytest.fixture
def seeded(pg_database: Database, console_settings: Settings) -> Seeded:
    """Sales, a settlement register with discrepancies, reconciled: runs, matches,
    bookings and open exceptions."""
    return seed_with_own_simulator(pg_database, console_settings)


@dataclass
class Site:
    """A seeded console shared by the tests of one module that only read (and are
    refused): its database, app and data."""

    database: Database
    app: FastAPI
    seeded: Seeded

    def key(self, *scopes: str, name: str = "someone") -> str:
        with unit_of_work(self.database.factory) as session:
            key, _ = create_key(session, name, scopes)
        return key


@pytest.fixture(scope="module")
def shared_site(pg_template: str, worker_tag: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        for database in fresh_pg(pg_template, worker_tag):
            settings = configure(monkeypatch, database, tmp_path_factory.mktemp("data"))
            try:
                yield Site(database, create_app(settings, engine=database.engine),
                           seed_with_own_simulator(database, settings))
            finally:
                unconfigure()


# -- browser tests ---------------------------------------------------------------------


class LiveServer:
    """The app under uvicorn in a thread, on a socket bound before it starts."""

    def __init__(self, app: FastAPI) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium (never a downloaded browser), once per test process."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """Where a browser test writes its screenshots: ``test-output/console/<test>/`` (git-ignored)."""
    folder = ROOT / "test-output" / "console" / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder
