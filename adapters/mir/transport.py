"""One request, one answer, over TCP: on a fresh connection (:func:`exchange`), or on
one of a few persistent connections to the host (:class:`Link`, what the client uses:
host-to-host links stay open, and a connection per operation cost the host about as
much CPU as the operation itself).

A connection carries one request at a time and is put back only after a whole answer
arrived; after anything else (an error, a timeout, a broken answer) it is closed, so
a broken peer never poisons a later call. A kept connection is reused only while it
is quiet (nothing to read: the host has not closed it) and younger in idleness than
:data:`MAX_IDLE_SECONDS`, well inside the host's own idle timeout.

How failures map to the SPI's errors:

* connecting fails or times out: :class:`RailUnavailable` (nothing was sent);
* the request was sent but no answer came before the deadline, or the host closed
  the connection without a byte of answer: :class:`RailTimeout` (the host may have
  processed it; ask ``query``);
* an answer started but is cut short (truncated), or its length prefix is zero or
  above :data:`~adapters.mir.protocol.MAX_MESSAGE_LENGTH` (oversized):
  :class:`Malformed`. The request may have been processed here too, so a caller
  treats it like a timeout and asks ``query``.
"""

from __future__ import annotations

import select
import socket
import threading
import time

from adapters.base import Malformed, RailTimeout, RailUnavailable
from adapters.mir.protocol import ProtocolError, frame, frame_length
from adapters.mir.terms import RAIL

#: How long a kept connection may sit unused and still be reused (the host closes
#: connections idle for 30 seconds).
MAX_IDLE_SECONDS = 10.0
#: Idle connections kept per link; more are closed when they come back.
MAX_IDLE_CONNECTIONS = 32


def exchange(host: str, port: int, body: bytes, timeout: float) -> bytes:  # float-ok: seconds
    """Send ``body`` framed on a fresh connection and return the body of the answer
    frame, all within ``timeout`` seconds (one deadline for connect, send and receive,
    so a host that drips bytes cannot stretch it)."""
    deadline = time.monotonic() + timeout
    with _connect(host, port, timeout) as sock:
        return _exchange_on(sock, host, port, body, deadline)


class Link:
    """Persistent connections to one host, each carrying one request at a time
    (thread-safe: concurrent callers use different connections)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:  # float-ok: seconds
        self.host, self.port, self.timeout = host, port, timeout
        self._idle: list[tuple[socket.socket, float]] = []
        self._lock = threading.Lock()

    def exchange(self, body: bytes) -> bytes:
        """:func:`exchange` on a kept connection when one is ready, else a new one."""
        deadline = time.monotonic() + self.timeout
        sock = self._take() or _connect(self.host, self.port, self.timeout)
        try:
            answer = _exchange_on(sock, self.host, self.port, body, deadline)
        except BaseException:
            sock.close()
            raise
        self._give_back(sock)
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sock, _ in idle:
            sock.close()

    def _take(self) -> socket.socket | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                sock, since = self._idle.pop()
            if time.monotonic() - since <= MAX_IDLE_SECONDS and _quiet(sock):
                return sock
            sock.close()

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append((sock, time.monotonic()))
                return
        sock.close()


def _quiet(sock: socket.socket) -> bool:
    """Nothing to read on an idle connection: the host has not closed it (a closed one
    reads as ready, at its end) and sent nothing unasked."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _connect(host: str, port: int, timeout: float) -> socket.socket:  # float-ok: seconds
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise RailUnavailable(f"no connection to {host}:{port} within {timeout}s", rail=RAIL) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RailUnavailable(f"cannot connect to {host}:{port}: {reason}", rail=RAIL) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _exchange_on(sock: socket.socket, host: str, port: int, body: bytes,
                 deadline: float) -> bytes:  # float-ok: seconds
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        sock.sendall(frame(body))
    except ProtocolError as exc:
        raise Malformed(str(exc), rail=RAIL) from None
    except OSError as exc:
        # Part of the request may have reached the host: the outcome is unknown.
        raise RailTimeout(f"sending to {host}:{port} failed: {type(exc).__name__}", rail=RAIL) from None
    prefix = _receive(sock, 2, deadline, started=False)
    try:
        length = frame_length(prefix)
    except ProtocolError as exc:
        raise Malformed(f"answer rejected: {exc}", rail=RAIL) from None
    return _receive(sock, length, deadline, started=True)


def _receive(sock: socket.socket, size: int, deadline: float, *, started: bool) -> bytes:  # float-ok: seconds
    """Exactly ``size`` bytes before ``deadline``. ``started`` says whether part of the
    answer already arrived (then a short read is a truncated answer, not silence)."""
    chunks: list[bytes] = []
    received = 0
    while received < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _silence(started or received > 0)
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(size - received)
        except TimeoutError:
            raise _silence(started or received > 0) from None
        except OSError:
            chunk = b""   # a reset peer is handled like one that closed
        if not chunk:
            if started or received:
                raise Malformed(f"truncated answer: {received} of {size} bytes before the host "
                                "closed the connection", rail=RAIL)
            raise RailTimeout("the host closed the connection without answering", rail=RAIL)
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def _silence(partial: bool) -> RailTimeout:
    what = "the rest of the answer" if partial else "an answer"
    return RailTimeout(f"no {what} within the timeout", rail=RAIL)
