"""A real redis-server on loopback with a password: the Celery broker of tests/engine.

Started per test (or module) on a free port with ``--requirepass``, no persistence, its
dir under $TMPDIR and its pidfile under the shared PIDFILE_ROOT (``.ci/run``'s exit trap
kills what a dying pytest left). A missing redis-server fails the test: it is installed
by ``.ci/run``.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .daemon import background_service, free_port

__all__ = ["REDIS_SERVER", "RedisServer", "redis_server"]

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass
class RedisServer:
    port: int
    password: str
    dir: Path
    proc: object

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                s.settimeout(1)
                data = b""
                while b"PONG" not in data and len(data) < 200:
                    chunk = s.recv(100)
                    if not chunk:
                        break
                    data += chunk
                return b"PONG" in data
        except OSError:
            return False


@contextmanager
def redis_server(password: str | None = None) -> Iterator[RedisServer]:
    if not Path(REDIS_SERVER).exists():
        pytest.fail(f"{REDIS_SERVER} not found: apt-get install -y redis-server (see .ci/run)")
    workdir = Path(tempfile.mkdtemp(prefix="redis-"))
    port = free_port()
    pw = password or "canary-" + secrets.token_hex(12)
    argv = [
        REDIS_SERVER,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--requirepass", pw,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--protected-mode", "yes",
    ]  # fmt: skip
    server = RedisServer(port, pw, workdir, None)
    try:
        with background_service("redis", argv, workdir, server.answers, wait_s=10) as proc:
            server.proc = proc
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
