"""A provider's API on a loopback port, for the provider tests: it records every request and answers
the next scripted (status, headers, body), else ``reply(request)`` (``default`` unless a test's
server says otherwise). A body that is not bytes goes as JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs

Answer = tuple[int, dict[str, str], Any]


class Loopback(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.script: list[Answer] = []
        self.default: Answer = (200, {}, b"{}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reply(self, request: dict[str, Any]) -> Answer:
        """The answer when nothing is scripted."""
        return self.default

    def answer(self, status: int, body: object, **headers: str) -> None:
        """Script the next answer (JSON unless the headers say otherwise)."""
        self.script.append((status, {"Content-Type": "application/json", **headers}, body))

    def json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index]["body"])

    def form(self, index: int = 0) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.requests[index]["body"].decode()).items()}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Loopback

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = {"path": self.path, "headers": self.headers, "body": body}
        self.server.requests.append(request)
        status, headers, payload = (
            self.server.script.pop(0) if self.server.script else self.server.reply(request)
        )
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


L = TypeVar("L", bound=Loopback)


@contextmanager
def serving(server: L) -> Iterator[L]:
    """The server answering in a thread of its own, shut down afterwards."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
