"""A frame-aware TCP relay put in front of the simulated host: it records every
request and answer as it crosses the wire and can alter them in flight."""

from __future__ import annotations

import threading
from collections.abc import Callable

from adapters.mir.host import FramedServer, Reply
from adapters.mir.protocol import frame
from adapters.mir.transport import exchange

Alter = Callable[[bytes], bytes]


def unchanged(body: bytes) -> bytes:
    return body


class Relay:
    """Listens on a free loopback port and forwards each frame to ``upstream_port``."""

    def __init__(self, upstream_port: int, *, alter_request: Alter = unchanged,
                 alter_answer: Alter = unchanged) -> None:
        self.requests: list[bytes] = []
        self.answers: list[bytes] = []
        self._lock = threading.Lock()
        self._upstream = upstream_port
        self._alter_request = alter_request
        self._alter_answer = alter_answer
        self._server = FramedServer(self._forward, lambda kind, detail: None)

    def __enter__(self) -> Relay:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    @property
    def port(self) -> int:
        return self._server.port

    def _forward(self, body: bytes) -> Reply:
        with self._lock:
            self.requests.append(body)
        answer = exchange("127.0.0.1", self._upstream, self._alter_request(body), timeout=5)
        with self._lock:
            self.answers.append(answer)
        return Reply(frame(self._alter_answer(answer)))
