"""HTTP: the request handler that hands every request to FakeKustomer.serve() and writes its Reply, resets and cut
bodies included."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    """What the HTTP handler sends for one request."""
    status: int  # meaningless when reset
    headers: dict[str, str]
    body: bytes = b""
    reset: bool = False  # close the connection without answering
    cut: int | None = None  # send only this many bytes of the body (Content-Length still says all), then close


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive like the real API; every response sets Content-Length
    disable_nagle_algorithm = True  # otherwise Nagle + delayed ACK stall each response by ~40 ms

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _handle(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}  # repeated key: first wins
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""  # always drain it, so the kept-alive connection stays in sync
        fake = self.server.fake
        with fake._lock:
            fake.stats.in_flight += 1
            fake.stats.most_in_flight = max(fake.stats.most_in_flight, fake.stats.in_flight)
        try:
            reply = fake.serve(self.command, url.path, query, self.headers.get("Authorization"), body, url.query)
        finally:
            with fake._lock:
                fake.stats.in_flight -= 1
        if reply.reset:
            # Linger 0 makes close() send a RST rather than a FIN: the client sees a connection reset by peer.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body[:reply.cut])
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first, e.g. its read timed out
            self.close_connection = True
        if reply.cut is not None:
            self.close_connection = True  # the client waits for the rest of Content-Length until the socket closes

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


