"""A URL's host, however it is spelt, is "this machine" exactly when the HTTP client
connects to this machine (#3 of the input review).

``host_local`` asked ``ipaddress``, which knows only dotted quads: ``http://0x7f.1:PORT/``,
``2130706433``, ``127.1``, ``[::ffff:127.0.0.1]``, ``0`` were "not loopback", so a remote
host's URL in those spellings was asked directly from the controller, where requests
connected to the controller's own loopback. And ``%31%32%37.0.0.1`` was judged loopback but
tunnelled to the encoded text, which the host's sshd cannot resolve.

Differential: every spelling goes to real ``requests`` against listeners on ``127.0.0.1``
and ``::1``; the classifier must say loopback exactly when requests connected (all
listeners here are loopback). Then the command a user types, over a real sshd host.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from readiness.checks._access import host_local, http_session
from readiness.loopback import LoopbackFleet
from readiness.netaddr import loopback_host, url_host
from tests.services.cli import run_cli
from tests.services.httpd import HttpServer
from tests.services.sshd import fleet_config, host_entry, write_inventory

LOOPBACK_SPELLINGS = (
    "127.0.0.1",
    "%31%32%37.0.0.1",
    "0x7f.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "127.1",
    "0177.0.0.1",
    "127.000.000.001",
    "0",
    "0.0.0.0",
    "LOCALHOST",
    "%6c%6fcalhost",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::]",
    socket.gethostname(),  # this machine's own name, as /etc/hosts maps it
)
# Never connected to here (no route / not this machine): what the client's getaddrinfo
# makes of them is compared instead.
OTHER_SPELLINGS = ("192.0.2.1", "0xc0.0x2.1", "3221225985", "[2001:db8::1]", "[::ffff:192.0.2.1]")


class Listeners:
    """An HTTP/1.0 answer on 127.0.0.1 and ::1 (the same port); who connected, per request."""

    def __init__(self) -> None:
        self.v4 = socket.socket()
        self.v4.bind(("127.0.0.1", 0))
        self.port = int(self.v4.getsockname()[1])
        self.v6 = socket.socket(socket.AF_INET6)
        self.v6.bind(("::1", self.port))
        self.peers: list[str] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        for sock in (self.v4, self.v6):
            sock.listen(16)
            sock.settimeout(0.2)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        while not self.stopping.is_set():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self.peers.append(str(peer[0]))
                conn.sendall(b"HTTP/1.0 204 No Content\r\n\r\n")

    def close(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(5)
        self.v4.close()
        self.v6.close()


@pytest.fixture
def listeners() -> Iterator[Listeners]:
    made = Listeners()
    try:
        yield made
    finally:
        made.close()


def test_loopback_spellings_are_local_exactly_where_requests_connects_here(
    listeners: Listeners,
) -> None:
    session = http_session()
    disagreements = []
    for spelling in LOOPBACK_SPELLINGS:
        url = f"http://{spelling}:{listeners.port}/"
        before = len(listeners.peers)
        with contextlib.suppress(requests.RequestException):
            session.get(url, timeout=5).close()
        connected = len(listeners.peers) > before
        host = url_host(requests.utils.urlparse(url).hostname or "")
        if connected != host_local(host):
            disagreements.append((spelling, connected, host_local(host)))
    session.close()
    assert not disagreements, disagreements
    assert len(listeners.peers) == len(LOOPBACK_SPELLINGS)  # each one did connect here


def test_other_spellings_are_not_local_as_getaddrinfo_reads_them() -> None:
    for spelling in OTHER_SPELLINGS:
        bare = spelling.strip("[]")
        (address,) = {a[4][0] for a in socket.getaddrinfo(bare, 80, type=socket.SOCK_STREAM)}
        assert not address.startswith(("127.", "::1")), (spelling, address)
        assert loopback_host(spelling) is False, spelling


def test_a_name_nothing_resolves_is_not_local_and_localhost_names_are() -> None:
    assert loopback_host("no-such-name.invalid") is False
    for name in ("localhost.", "api.localhost", "LocalHost.", "/run/postgresql", ""):
        assert loopback_host(name) is True, name


@pytest.mark.parametrize(
    "spelling", ["0x7f.1", "2130706433", "127.1", "[::ffff:127.0.0.1]", "%31%32%37.0.0.1"]
)
def test_a_remote_hosts_loopback_url_in_any_spelling_goes_through_its_tunnel(
    spelling: str, ssh_fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """``readiness validate`` on a real sshd host whose Prometheus URL is its loopback in
    another spelling: asked through the host's SSH tunnel (the host's loopback), never
    directly from the controller (the controller's loopback)."""
    srv = HttpServer()
    try:
        srv.route("/-/ready", body="Prometheus Server is Ready.")
        host = ssh_fleet.hosts[0]
        url = f"http://{spelling}:{srv.port}"
        entry = host_entry(ssh_fleet, host)
        entry["readiness"] = {**entry.get("readiness", {}), "prometheus_url": url}
        entry["readiness"]["grafana_url"] = None
        inventory = write_inventory(tmp_path / "inv.yml", {host.name: entry})
        config = fleet_config(ssh_fleet, tmp_path / "readiness.yaml")
        done = run_cli(
            "-f", str(config), "validate", "--hosts", "all", "-i", str(inventory),
            "-c", "monitoring", "--json",
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        (row,) = json.loads(done.stdout)["hosts"][0]["checks"]
        prom = row["details"]["prometheus"]
        assert prom["access"] == f"through an SSH tunnel via {host.name}", row
        assert prom["ready"] is True, row
        assert srv.requests_to("/-/ready"), "the host's Prometheus was not asked"
    finally:
        srv.stop()
