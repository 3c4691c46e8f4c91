"""Fixtures: a running UnionPay simulator, a rail configured for it, and a local
HTTP receiver standing in for the merchant's ``backUrl``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from adapters.base import AuthorizeRequest, Notification, RailError
from adapters.simulation import LoopbackHTTPServer
from adapters.testing import new_reference
from adapters.unionpay import UnionPayRail, UnionPaySimulator, plugin

CNY = "CNY"


class Receiver:
    """The merchant's notification endpoint: answers 503 to the first ``fail_first``
    POSTs, then verifies each with the rail and answers what ``notification_ack`` says."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.rail: UnionPayRail | None = None
        self.bodies: list[bytes] = []
        self.statuses: list[int] = []
        self.accepted: list[Notification] = []
        self.rejected: list[RailError] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, reply = receiver.receive(dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = LoopbackHTTPServer(Handler)

    @property
    def url(self) -> str:
        return self._server.url + "/notify"

    def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        with self._lock:
            self.bodies.append(body)
            if len(self.bodies) <= self.fail_first or self.rail is None:
                self.statuses.append(503)
                return 503, b"busy"
        notification: Notification | None = None
        try:
            notification = self.rail.parse_notification(headers, body)
        except RailError as exc:
            with self._lock:
                self.rejected.append(exc)
        ack = self.rail.notification_ack(notification)
        with self._lock:
            self.statuses.append(ack.status_code)
            if notification is not None:
                self.accepted.append(notification)
        return ack.status_code, ack.body

    def wait_for(self, predicate: Callable[[list[Notification]], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(list(self.accepted)):
                    return
            time.sleep(0.02)
        raise AssertionError(f"no matching notification in {timeout}s; got {self.accepted}")

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture(scope="module")
def gateway() -> Iterator[UnionPaySimulator]:
    """One simulator per test module: every test uses its own references."""
    simulator = plugin.create_simulator()
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rail(gateway: UnionPaySimulator, receiver: Receiver) -> Iterator[UnionPayRail]:
    client = plugin.create_rail({**gateway.adapter_config(), "notify_url": receiver.url})
    receiver.rail = client
    yield client
    client.close()


def card_request(simulator: UnionPaySimulator, amount: int, *, capture: bool = False,
                 notify_url: str | None = None, **metadata: str) -> AuthorizeRequest:
    return AuthorizeRequest(reference=new_reference("up"), amount=amount, currency=CNY,
                            method=simulator.approving_method(), capture=capture, notify_url=notify_url,
                            metadata=metadata)
