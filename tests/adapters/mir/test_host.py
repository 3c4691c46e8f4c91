"""The simulated host against broken peers: it drops what it cannot frame or decode,
says why, and keeps serving everyone else."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable

import pytest

from adapters.base import TxnStatus
from adapters.mir import MirSimulator

from .conftest import authorize_request, port_of, rail_for


def framed(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


def send_raw(port: int, data: bytes) -> bytes:
    """Send ``data``, stop writing, and return whatever the host sends before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(4096):
            received += chunk
        return received


@pytest.mark.parametrize(("data", "kind"), [
    (struct.pack(">H", 100) + b"0100" + b"0" * 6, "truncated"),
    (b"\x00", "truncated"),
    (struct.pack(">H", 5000) + b"0100", "oversized"),
    (struct.pack(">H", 0), "empty"),
    (framed(b"\xff\xfegarbage!!"), "garbage"),
    (framed(b"0800" + b"8" * 16), "garbage"),
    (framed(b"0800" + b"0" * 16), "unsupported"),
])
def test_broken_frames_are_dropped_and_reported(sim: MirSimulator, data: bytes, kind: str) -> None:
    assert send_raw(port_of(sim), data) == b"", "the host answered a frame it could not read"
    assert [k for k, _ in sim.protocol_errors()] == [kind]
    request = authorize_request(sim.approving_method(), 10_00)
    assert rail_for(sim).authorize(request).status is TxnStatus.AUTHORIZED, "the host stopped serving"


def test_a_clean_disconnect_is_not_an_error(sim: MirSimulator) -> None:
    assert send_raw(port_of(sim), b"") == b""
    assert sim.protocol_errors() == []


def test_stop_closes_idle_connections(make_sim: Callable[..., MirSimulator]) -> None:
    sim = make_sim()
    with socket.create_connection(("127.0.0.1", port_of(sim)), timeout=5) as idle:
        sim.stop()
        # b"" is a close; a reset means it was closed before it was even accepted.
        with contextlib.suppress(ConnectionResetError):
            assert idle.recv(16) == b""
    sim.start()
    assert rail_for(sim).authorize(authorize_request(sim.approving_method(), 10_00)).amount == 10_00
