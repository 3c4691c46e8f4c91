"""The simulator's HTTP front: a stdlib handler that hands each POST body to a
function and writes back what it returns."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from adapters.unionpay.messages import MAX_REQUEST_BYTES

Handle = Callable[[str, bytes], tuple[int, bytes, str]]


def handler_for(handle: Handle) -> type[BaseHTTPRequestHandler]:
    """A handler class bound to ``handle(path, body) -> (status, body, content type)``.
    Bodies over 64 KiB are refused with 413 without being read."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self._reply(411, b"length required", "text/plain")
                return
            if int(length) > MAX_REQUEST_BYTES:
                self.close_connection = True
                self._reply(413, b"request too large", "text/plain")
                return
            status, body, content_type = handle(self.path, self.rfile.read(int(length)))
            self._reply(status, body, content_type)

        def do_GET(self) -> None:
            self._reply(405, b"POST only", "text/plain")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read outcomes, not access logs."""

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
