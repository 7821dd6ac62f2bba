"""HTTP servers on 127.0.0.1 for the remote tests, started and stopped by a context manager."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler] | functools.partial) -> Iterator[str]:  # type: ignore[type-arg]
    """``http://127.0.0.1:PORT`` of a threading server with ``handler``, for the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    """``python -m http.server``: no range requests; counts the bytes of the bodies it sends."""

    sent: ClassVar[list[int]] = []

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        while chunk := source.read(64 << 10):
            try:
                outputfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return
            Quiet.sent.append(len(chunk))

    def log_message(self, *args: object) -> None:
        pass


def files_at(directory: Path) -> functools.partial:  # type: ignore[type-arg]
    Quiet.sent = []
    return functools.partial(Quiet, directory=str(directory))


class Failing(http.server.BaseHTTPRequestHandler):
    """Every request answered with 500 Internal Server Error."""

    def _fail(self) -> None:
        body = b"internal error"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _fail

    def log_message(self, *args: object) -> None:
        pass


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (an unreachable endpoint)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
