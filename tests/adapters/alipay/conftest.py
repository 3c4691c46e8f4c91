"""Fixtures for the Alipay rail: simulators on free loopback ports, rails configured
for them, and a merchant-side notification endpoint that can be told to fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from adapters.alipay import AlipayRail, AlipaySimulator, plugin
from adapters.alipay.signing import generate_key, private_pem
from adapters.base import AuthorizeRequest, MethodKind, PaymentMethod, TxnStatus
from adapters.simulation import LoggingHTTPServer
from adapters.testing import new_reference

StartSim = Callable[..., tuple[AlipaySimulator, AlipayRail]]

#: Fast enough that Alipay's 4m/10m/10m first retries take 24/60/60 ms.
TEST_TIME_SCALE = "0.0001"


def wallet(buyer_id: str) -> PaymentMethod:
    return PaymentMethod(kind=MethodKind.WALLET, buyer_id=buyer_id)


def freeze(rail: AlipayRail, sim: AlipaySimulator, amount: int, currency: str = "CNY") -> tuple[str, str]:
    """Freeze ``amount`` for the approving buyer: (our reference, auth_no)."""
    reference = new_reference("auth")
    result = rail.authorize(AuthorizeRequest(reference=reference, amount=amount, currency=currency,
                                             method=sim.approving_method()))
    assert result.status is TxnStatus.AUTHORIZED
    return reference, result.rail_reference


@pytest.fixture(scope="session")
def key_options() -> dict[str, str]:
    """Keys made once per test process and handed to every simulator a test starts:
    RSA key generation would otherwise dominate the suite's run time."""
    return {"alipay_private_key": private_pem(generate_key()), "app_private_key": private_pem(generate_key())}


@pytest.fixture(scope="module")
def sim(key_options: dict[str, str]) -> Iterator[AlipaySimulator]:
    simulator = plugin.create_simulator(notify_time_scale=TEST_TIME_SCALE, **key_options)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def rail(sim: AlipaySimulator) -> Iterator[AlipayRail]:
    client = plugin.create_rail(sim.adapter_config())
    yield client
    client.close()


@pytest.fixture
def start_sim(key_options: dict[str, str]) -> Iterator[StartSim]:
    """Start a simulator with options of the test's choosing; stopped afterwards."""
    started: list[tuple[AlipaySimulator, AlipayRail]] = []

    def start(**options: str) -> tuple[AlipaySimulator, AlipayRail]:
        options = {"notify_time_scale": TEST_TIME_SCALE, **key_options, **options}
        simulator = plugin.create_simulator(**options)
        simulator.start()
        client = plugin.create_rail(simulator.adapter_config())
        started.append((simulator, client))
        return simulator, client

    yield start
    for simulator, client in started:
        client.close()
        simulator.stop()


@dataclass
class Receiver:
    """The merchant's notify_url. Answers ``fail`` (HTTP 200, as a merchant whose
    handler rejected the event would) to the first ``failures`` deliveries, then
    ``success``; records every body it received."""

    failures: int = 0
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: LoggingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                reply = receiver.record(dict(self.headers.items()), body)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = LoggingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval: shutting down waits for the serving loop to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/alipay/notify"

    def record(self, headers: dict[str, str], body: bytes) -> bytes:
        with self._lock:
            self.bodies.append(body)
            self.headers.append(headers)
            return b"fail" if len(self.bodies) <= self.failures else b"success"

    def received(self) -> list[bytes]:
        with self._lock:
            return list(self.bodies)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bodies = self.received()
            if len(bodies) >= count:
                return bodies
            time.sleep(0.01)
        raise AssertionError(f"expected {count} deliveries within {timeout}s, got {len(self.received())}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    endpoint.start()
    yield endpoint
    endpoint.stop()
