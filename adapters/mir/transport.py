"""One request, one answer, over a fresh TCP connection.

A connection per call keeps the adapter thread-safe without a pool (the host accepts
any number of connections) and means a broken peer can never poison a later call.
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

import socket
import time

from adapters.base import Malformed, RailTimeout, RailUnavailable
from adapters.mir.protocol import ProtocolError, frame, frame_length
from adapters.mir.terms import RAIL


def exchange(host: str, port: int, body: bytes, timeout: float) -> bytes:  # float-ok: seconds
    """Send ``body`` framed and return the body of the answer frame, all within
    ``timeout`` seconds (one deadline for connect, send and receive, so a host that
    drips bytes cannot stretch it)."""
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise RailUnavailable(f"no connection to {host}:{port} within {timeout}s", rail=RAIL) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RailUnavailable(f"cannot connect to {host}:{port}: {reason}", rail=RAIL) from None
    with sock:
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
