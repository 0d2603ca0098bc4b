"""A fake PostgreSQL server on loopback that records the password a client sends.

It speaks just enough of the v3 protocol: it declines SSL/GSS encryption, reads the
startup packet (user, database), asks for a cleartext password, records what arrives and
answers with an authentication error. Used to prove that the controller never hands a
host-supplied DSN its own ``PGPASSWORD`` / ``~/.pgpass`` / service-file credentials.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_PROTOCOL_3 = 196608


@dataclass
class Attempt:
    """One client connection: its startup parameters and the password it sent (if any)."""

    params: dict[str, str] = field(default_factory=dict)
    password: str | None = None
    ssl_requested: bool = False  # the client asked for TLS first (sslmode prefer/require/...)


class FakePostgres:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self.attempts: list[Attempt] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def passwords(self) -> list[str]:
        return [a.password for a in self.attempts if a.password is not None]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(3)
                with contextlib.suppress(OSError, struct.error, ValueError):
                    self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        attempt = Attempt()
        for _ in range(4):  # SSL and GSS requests come before the real startup packet
            body = _read_message(conn)
            (code,) = struct.unpack("!I", body[:4])
            if code in (_SSL_REQUEST, _GSS_REQUEST):
                attempt.ssl_requested = attempt.ssl_requested or code == _SSL_REQUEST
                conn.sendall(b"N")
                continue
            if code != _PROTOCOL_3:
                return
            items = body[4:].split(b"\0")
            attempt.params = {
                items[i].decode(): items[i + 1].decode()
                for i in range(0, len(items) - 1, 2)
                if items[i]
            }
            break
        self.attempts.append(attempt)
        conn.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
        kind = conn.recv(1)
        if kind != b"p":
            return
        (length,) = struct.unpack("!I", _recv_exact(conn, 4))
        attempt.password = _recv_exact(conn, length - 4).rstrip(b"\0").decode(errors="replace")
        fields = b"SFATAL\0C28P01\0Mpassword authentication failed (fake server)\0\0"
        conn.sendall(b"E" + struct.pack("!I", len(fields) + 4) + fields)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ValueError("client closed the connection")
        data += chunk
    return data


def _read_message(conn: socket.socket) -> bytes:
    (length,) = struct.unpack("!I", _recv_exact(conn, 4))
    if not 8 <= length <= 10_000:
        raise ValueError("bad startup length")
    return _recv_exact(conn, length - 4)
