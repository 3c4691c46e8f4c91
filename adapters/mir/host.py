"""A length-prefixed TCP server on the loopback interface, run by asyncio in a
background thread so that :meth:`FramedServer.start` and :meth:`FramedServer.stop`
are plain synchronous calls.

The server knows frames, not ISO 8583: it reads a 2-byte big-endian length and that
many bytes, hands the body to ``on_frame`` and writes back whatever bytes it returns.
A peer that sends a truncated frame, a zero length or a length above
:data:`~adapters.mir.protocol.MAX_MESSAGE_LENGTH` is reported to ``on_error`` and
disconnected (there is no frame to answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from adapters.mir.protocol import ProtocolError, frame_length

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """Bytes to write back as they are (normally one framed message) and whether to
    close the connection after them."""

    data: bytes
    close: bool = False


class FramedServer:
    """Serve ``on_frame`` on 127.0.0.1:``port`` (0 picks a free port). ``on_frame``
    returns a :class:`Reply`, or None to stay silent and wait for the next frame; it
    runs on the server thread, one frame at a time."""

    def __init__(self, on_frame: Callable[[bytes], Reply | None], on_error: Callable[[str, str], None],
                 *, port: int = 0, idle_timeout: float = 30.0) -> None:  # float-ok: seconds
        self._on_frame = on_frame
        self._on_error = on_error
        self._wanted_port = port
        self._idle_timeout = idle_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    def start(self) -> None:
        if self._server is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="mir-host", daemon=True)
        thread.start()
        try:
            self._server = asyncio.run_coroutine_threadsafe(self._open(), loop).result(timeout=10)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            raise
        self._loop, self._thread = loop, thread

    def stop(self) -> None:
        """Close the listener and every open connection, then end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._server = None

    async def _open(self) -> asyncio.Server:
        return await asyncio.start_server(self._accepted, "127.0.0.1", self._wanted_port)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback (not a coroutine) runs inside connection_made, so every
        # connection is known before any of its code runs and stop() can close it.
        self._writers.add(writer)
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _close(self) -> None:
        # A connection the kernel accepted just before stop() is still being set up
        # inside asyncio for a few loop turns. Let it reach _accepted before closing
        # the listener: asyncio 3.11 never closes a socket whose setup finishes after
        # the server closed, and its client would hang.
        for _ in range(5):
            await asyncio.sleep(0)
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        # Let the transports run their connection_lost callbacks before the loop stops.
        await asyncio.sleep(0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (body := await self._read_frame(reader)) is not None:
                reply = self._on_frame(body)
                if reply is None:
                    continue
                writer.write(reply.data)
                await writer.drain()
                if reply.close:
                    break
        except ConnectionError:
            pass   # the client went away; nothing to answer
        finally:
            writer.close()
            self._writers.discard(writer)
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _read_frame(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next frame's body, or None when the connection should end (clean
        close, idle timeout, or a broken frame already reported)."""
        try:
            prefix = await asyncio.wait_for(reader.readexactly(2), self._idle_timeout)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                self._on_error("truncated", "connection closed inside a length prefix")
            return None
        except TimeoutError:
            return None
        try:
            length = frame_length(prefix)
        except ProtocolError as exc:
            self._on_error("oversized" if prefix != b"\0\0" else "empty", str(exc))
            return None
        try:
            return await asyncio.wait_for(reader.readexactly(length), self._idle_timeout)
        except asyncio.IncompleteReadError as exc:
            self._on_error("truncated", f"{len(exc.partial)} of {length} bytes before the client closed")
        except TimeoutError:
            self._on_error("truncated", f"fewer than {length} bytes within {self._idle_timeout}s")
        return None
