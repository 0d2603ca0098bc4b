"""The tunnel's local port serves only the controller process (#18 item 7).

While a host's tunnel is open, the host's loopback-only service is reachable at a port on
the controller's loopback. Another local user (``nobody``), or any process that is not
the controller or one it started, connecting there must get nothing: the connection is
closed before a channel to the host is opened, and the tunnel counts it as refused.
Over a real loopback sshd host; the other user is a real ``runuser -u nobody`` process.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest

from readiness.inventory import load_inventory
from readiness.loopback import LoopbackFleet, start_fleet
from readiness.runner import RunOptions
from readiness.ssh import SshConnector, SshTransport

pytestmark = pytest.mark.ssh

SECRET_REPLY = b"loopback-only service of the host\n"

# Connects to the tunnel port, sends a request, prints what came back (repr of bytes).
_CLIENT = """
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
data = b""
try:
    s.sendall(b"GET\\n")
    s.shutdown(socket.SHUT_WR)
except OSError:
    pass  # already closed by the tunnel
try:
    while chunk := s.recv(4096):
        data += chunk
except OSError:
    pass
print(repr(data))
"""


class HostService:
    """A service on the host's loopback that answers every client with SECRET_REPLY."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.served = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                self.served += 1
                conn.sendall(SECRET_REPLY)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture(scope="module")
def fleet() -> Iterator[LoopbackFleet]:
    with start_fleet(1) as made:
        yield made


@pytest.fixture
def ssh(fleet: LoopbackFleet) -> Iterator[SshTransport]:
    host = load_inventory(fleet.inventory).select(fleet.hosts[0].name)[0]
    options = RunOptions(
        known_hosts=str(fleet.known_hosts), ssh_config="", connect_timeout=5.0, progress=False
    )
    transport = SshConnector(options).open(host)
    assert isinstance(transport, SshTransport)
    try:
        yield transport
    finally:
        transport.close()


@pytest.fixture
def service() -> Iterator[HostService]:
    srv = HostService()
    try:
        yield srv
    finally:
        srv.stop()


def _read_all(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        data = b""
        while chunk := c.recv(4096):
            data += chunk
    return data


def _client(*prefix: str, port: int) -> str:
    res = subprocess.run(
        [*prefix, "/usr/bin/python3", "-I", "-c", _CLIENT, str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return res.stdout.strip() + res.stderr.strip()


def test_another_local_user_connecting_to_the_tunnel_port_is_refused(
    ssh: SshTransport, service: HostService
) -> None:
    _, port = ssh.tunnel("127.0.0.1", service.port)
    tunnel = ssh.tunnels[("127.0.0.1", service.port)]
    served_before = service.served

    stranger = _client("runuser", "-u", "nobody", "--", port=port)

    assert stranger == "b''", stranger  # closed at once: nothing from the host's service
    assert tunnel.stats.refused == 1
    assert service.served == served_before  # no channel to the host was ever opened
    # The controller itself still gets through the same tunnel.
    assert _read_all(port) == SECRET_REPLY
    assert tunnel.stats.connections == 1


def test_a_process_the_controller_did_not_start_is_refused_even_as_the_same_user(
    ssh: SshTransport, service: HostService
) -> None:
    """``setsid --fork``: the client's parent exits at once, so it is no longer in the
    controller's process tree; a child of the controller (like pg_dump) is served."""
    _, port = ssh.tunnel("127.0.0.1", service.port)
    tunnel = ssh.tunnels[("127.0.0.1", service.port)]
    detached = _client("setsid", "--fork", port=port)
    assert detached == "b''", detached
    assert tunnel.stats.refused == 1
    assert _client(port=port) == repr(SECRET_REPLY)
    assert tunnel.stats.connections == 1


def test_the_tunnel_port_closes_with_the_hosts_connection(
    ssh: SshTransport, service: HostService
) -> None:
    _, port = ssh.tunnel("127.0.0.1", service.port)
    assert _read_all(port) == SECRET_REPLY
    ssh.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
