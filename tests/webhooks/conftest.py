"""A real HTTP receiver on a free port, inline tasks on the test database, and
settings for compressed retry schedules."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from adapters.simulation import LoopbackHTTPServer
from settlement.config import get_settings
from settlement.tasks.base import use_session_factory
from tests.conftest import Database


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int


@dataclass
class Receiver:
    """What the receiver got, and how it answers: ``script`` holds the status codes
    of the next requests (then ``default``); ``delay`` seconds before answering."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_first(self, *codes: int) -> None:
        self.script = list(codes)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")


class _Current:
    """The receiver state the session's server answers with (one per test)."""

    state = Receiver()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver = _Current.state
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if receiver.delay:
            time.sleep(receiver.delay)
        with receiver.lock:
            status = receiver.script.pop(0) if receiver.script else receiver.default
            receiver.requests.append(Received(self.path, dict(self.headers.items()), body, status))
        payload = b'{"ok": true}' if 200 <= status < 300 else b"receiver says no"
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[LoopbackHTTPServer]:
    # One server per test process: stopping one takes half a second (its poll interval).
    server = LoopbackHTTPServer(_Handler)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receiver(receiver_server: LoopbackHTTPServer) -> Receiver:
    """An HTTP server on 127.0.0.1 and a free port, answering 200 unless scripted;
    each test gets a fresh state."""
    _Current.state = Receiver(url=receiver_server.url + "/hooks")
    return _Current.state


@pytest.fixture
def db(pg_database: Database) -> Iterator[Database]:
    """The test database, also used by tasks run inline in this process."""
    use_session_factory(pg_database.factory)
    yield pg_database
    use_session_factory(None)


@pytest.fixture
def webhook_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``webhook_settings(retry_schedule="[0]", max_attempts=3)``: settings the
    delivery task reads (through the environment, as a worker would)."""

    def configure(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"SETTLEMENT_WEBHOOK_{name.upper()}", str(value))
        get_settings.cache_clear()

    yield configure
    get_settings.cache_clear()


# The API fixtures (an app over a fresh PostgreSQL database, keys of every scope).
from tests.api.conftest import app, client, make_key  # noqa: E402, F401
