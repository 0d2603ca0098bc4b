"""A real, threaded HTTP server on 127.0.0.1:<free port> whose answers a test declares.

Reusable for anything that speaks HTTP to a loopback service: Grafana's
``/api/health``, adapter health endpoints, workflow APIs, a ``/metrics`` page
for Prometheus to scrape. A test registers routes, then points the check at
``server.url``::

    def test_x(http_server):
        srv = http_server()
        srv.route("/api/health", json={"database": "ok"})
        srv.route("/slow", body="late", delay=5.0)       # answers after 5 s
        srv.route("/jobs", method="POST", status=201, handler=lambda req: {"id": 1})

Every request is recorded in ``srv.requests``. Delays wait on an event that is
set at shutdown, so a slow route never outlives its test.
"""

from __future__ import annotations

import json as jsonlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = [
    "HttpServer",
    "RecordedRequest",
    "Route",
    "http_server",
    "session_http_server",
    "start_http_server",
]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Route:
    """What one (method, path) answers. ``handler`` (request → body or (status, body)) wins."""

    status: int = 200
    body: str | bytes | None = None
    json: Any = None
    delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    handler: Callable[[RecordedRequest], Any] | None = None


class HttpServer:
    """A started server: ``url``, ``route()``, ``requests``; ``stop()`` is idempotent."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        address = self._server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def route(
        self,
        path: str,
        *,
        status: int = 200,
        body: str | bytes | None = None,
        json: Any = None,
        delay: float = 0.0,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        method: str = "GET",
        handler: Callable[[RecordedRequest], Any] | None = None,
    ) -> HttpServer:
        """Register (or replace) the answer for ``method path``; returns self for chaining."""
        verb = method.upper()
        if verb not in METHODS:
            raise ValueError(f"unsupported method {method!r}")
        with self._lock:
            self.routes[(verb, path)] = Route(
                status, body, json, delay, dict(headers or {}), content_type, handler
            )
        return self

    def requests_to(self, path: str, method: str = "GET") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path and r.method == method.upper()]

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- used by the handler -------------------------------------------------
    def _lookup(self, method: str, path: str) -> Route | None:
        with self._lock:
            return self.routes.get((method, path))

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _encode(route: Route, req: RecordedRequest) -> tuple[int, bytes, str]:
    status, payload = route.status, route.body if route.json is None else route.json
    kind = route.content_type
    if route.handler is not None:
        answer = route.handler(req)
        if isinstance(answer, tuple):
            status, payload = answer
        else:
            payload = answer
    if isinstance(payload, bytes):
        return status, payload, kind or "application/octet-stream"
    if isinstance(payload, str):
        return status, payload.encode("utf-8"), kind or "text/plain; charset=utf-8"
    if payload is None:
        return status, b"", kind or "text/plain; charset=utf-8"
    return status, jsonlib.dumps(payload).encode("utf-8"), kind or "application/json"


def _handler_class(server: HttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            req = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers=dict(self.headers.items()),
                body=self.rfile.read(length) if length else b"",
            )
            server._record(req)
            route = server._lookup("GET" if self.command == "HEAD" else self.command, parts.path)
            if route is None:
                status, data, kind = 404, b"not found\n", "text/plain; charset=utf-8"
                extra: Mapping[str, str] = {}
            else:
                if route.delay > 0:
                    server._sleep(route.delay)
                status, data, kind = _encode(route, req)
                extra = route.headers
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except OSError:  # the client gave up (e.g. its timeout expired)
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


@contextmanager
def start_http_server() -> Iterator[HttpServer]:
    """A started server for the duration of the ``with`` block (for other fixtures)."""
    srv = HttpServer()
    try:
        yield srv
    finally:
        srv.stop()


@contextmanager
def _factory() -> Iterator[Callable[[], HttpServer]]:
    started: list[HttpServer] = []

    def make() -> HttpServer:
        srv = HttpServer()
        started.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture
def http_server() -> Iterator[Callable[[], HttpServer]]:
    """Factory: ``srv = http_server()`` starts a server, stopped when the test ends."""
    with _factory() as make:
        yield make


@pytest.fixture(scope="session")
def session_http_server() -> Iterator[Callable[[], HttpServer]]:
    """Factory for servers shared by a whole session (stopped at session end)."""
    with _factory() as make:
        yield make
