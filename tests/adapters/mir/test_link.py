"""The client's persistent connections (``Link``): reused one request at a time,
never after an error, a close by the host or a long idle spell, and one per caller at
once. Against a small framed TCP host of the test's own that counts connections."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from adapters.base import Malformed
from adapters.mir import transport
from adapters.mir.transport import Link


class _Host:
    """Answers each frame with ``ok:<body>``; ``close_after`` answers then closes;
    ``truncate`` sends half an answer and closes; ``delay`` waits before answering."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.close_after = False
        self.truncate = False
        self.delay = 0.0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            while True:
                prefix = conn.recv(2, socket.MSG_WAITALL)
                if len(prefix) < 2:
                    return
                body = conn.recv(struct.unpack(">H", prefix)[0], socket.MSG_WAITALL)
                time.sleep(self.delay)
                answer = b"ok:" + body
                if self.truncate:
                    conn.sendall(struct.pack(">H", len(answer)) + answer[:2])
                    return
                conn.sendall(struct.pack(">H", len(answer)) + answer)
                if self.close_after:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def host() -> Iterator[_Host]:
    found = _Host()
    yield found
    found.close()


def test_one_connection_carries_request_after_request(host: _Host) -> None:
    link = Link("127.0.0.1", host.port, timeout=5)
    assert [link.exchange(f"m{n}".encode()) for n in range(5)] == [f"ok:m{n}".encode() for n in range(5)]
    assert host.accepted == 1
    link.close()


def test_a_connection_the_host_closed_is_replaced_without_an_error(host: _Host) -> None:
    link = Link("127.0.0.1", host.port, timeout=5)
    host.close_after = True
    assert link.exchange(b"first") == b"ok:first"
    time.sleep(0.05)   # the host's close reaches the client
    assert link.exchange(b"second") == b"ok:second"
    assert host.accepted == 2


def test_a_long_idle_connection_is_not_reused(host: _Host, monkeypatch: pytest.MonkeyPatch) -> None:
    link = Link("127.0.0.1", host.port, timeout=5)
    link.exchange(b"first")
    monkeypatch.setattr(transport, "MAX_IDLE_SECONDS", 0.0)
    time.sleep(0.01)
    link.exchange(b"second")
    assert host.accepted == 2


def test_a_connection_that_failed_is_never_reused(host: _Host) -> None:
    link = Link("127.0.0.1", host.port, timeout=5)
    link.exchange(b"first")
    host.truncate = True
    with pytest.raises(Malformed, match="truncated"):
        link.exchange(b"cut short")
    host.truncate = False
    assert link.exchange(b"again") == b"ok:again"
    assert host.accepted == 2


def test_callers_at_once_use_separate_connections(host: _Host) -> None:
    link = Link("127.0.0.1", host.port, timeout=5)
    host.delay = 0.2
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(link.exchange, [b"a", b"b", b"c"]))
    assert answers == [b"ok:a", b"ok:b", b"ok:c"]
    assert host.accepted == 3
    host.delay = 0.0
    assert link.exchange(b"d") == b"ok:d"   # kept ones are reused afterwards
    assert host.accepted == 3
