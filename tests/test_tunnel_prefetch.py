"""A host's tunnels opened together before its checks run (docs/performance.md, round trips).

Over real loopback sshd hosts (LogLevel DEBUG1): sshd's own "server_request_direct_tcpip"
log lines show which destinations each host was asked for and how often.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from readiness import validate
from readiness.errors import TransportError, TunnelError
from readiness.loopback import LoopbackFleet, LoopbackHost, start_fleet
from readiness.model import CheckResult, Status
from readiness.ssh import SshTransport

from .services.apps import write_app
from .services.ports import closed_port, closed_ports
from .services.sshd import (
    fleet_options,
    fleet_transport,
    host_entry,
    write_inventory,
)

pytestmark = [pytest.mark.ssh]


@pytest.fixture(scope="module")
def fleet() -> Iterator[LoopbackFleet]:
    with start_fleet(2, sshd_options=["LogLevel DEBUG1"]) as started:
        yield started


# Where each host's sshd log stood when the running test started. The fleet and its logs
# are the module's, and a port number an earlier test used can come round again.
_log_start: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _count_from_the_test_start(fleet: LoopbackFleet) -> None:
    for host in fleet.hosts:
        _log_start[host.name] = host.log.stat().st_size


def _requests(host: LoopbackHost, port: int) -> int:
    """How many direct-tcpip channels sshd on ``host`` was asked to open to ``port`` since
    the running test started."""
    text = host.log_since(_log_start.get(host.name, 0))
    return len(re.findall(rf"server_request_direct_tcpip: .* target \S+ port {port}\b", text))


def _services(
    fleet: LoopbackFleet, tmp_path: Path, host: LoopbackHost, free: list[int]
) -> tuple[dict[str, Any], dict[str, int]]:
    """An inventory entry whose database, Prometheus and Grafana are closed ports of the host
    (taken from ``free``, so no two hosts share one)."""
    ports = {"db": free.pop(), "prometheus": free.pop(), "grafana": free.pop()}
    settings = {"database": {"url": f"postgresql://app:pw@localhost:{ports['db']}/app"}}
    root = write_app(tmp_path / host.name, settings=settings)
    entry = host_entry(fleet, host)
    entry["readiness"] = {
        "app_root": str(root),
        "prometheus_url": f"http://127.0.0.1:{ports['prometheus']}",
        "grafana_url": f"http://127.0.0.1:{ports['grafana']}",
    }
    return entry, ports


def _audit(
    fleet: LoopbackFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, dict[str, CheckResult]], dict[str, dict[str, int]], list[set[Any]]]:
    entries, ports = {}, {}
    free = closed_ports(3 * len(fleet.hosts))
    for h in fleet.hosts:
        entries[h.name], ports[h.name] = _services(fleet, tmp_path, h, free)
    inventory = write_inventory(tmp_path / "inventory.yml", entries)
    prefetched: list[set[Any]] = []
    original = SshTransport.prefetch

    def recording(self: SshTransport, destinations: Iterable[tuple[str, int]]) -> None:
        wanted = list(destinations)
        prefetched.append({self.target.name, *wanted})
        original(self, wanted)

    monkeypatch.setattr(SshTransport, "prefetch", recording)
    report = validate(
        "fleet",
        ["database_migration", "monitoring"],
        inventory=str(inventory),
        options=fleet_options(fleet),
    )
    results: dict[str, dict[str, CheckResult]] = {}
    for r in report.results:
        results.setdefault(r.host, {})[r.check_name] = r
    return results, ports, prefetched


def test_each_hosts_service_tunnels_are_opened_together_once_each_with_the_same_verdicts(
    fleet: LoopbackFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results, ports, prefetched = _audit(fleet, tmp_path, monkeypatch)
    for h in fleet.hosts:
        mine = ports[h.name]
        # what the checks will reach, named before they run: exactly this host's three
        assert {
            h.name,
            ("localhost", mine["db"]),
            ("127.0.0.1", mine["prometheus"]),
            ("127.0.0.1", mine["grafana"]),
        } in prefetched
        # one channel open per destination (the check reuses the prefetched answer) ...
        for port in mine.values():
            assert _requests(h, port) == 1
        # ... and never one to a destination another host's configuration named
        other = next(o for o in fleet.hosts if o is not h)
        for port in ports[other.name].values():
            assert _requests(h, port) == 0
        db, monitoring = results[h.name]["database_migration"], results[h.name]["monitoring"]
        assert db.status is Status.NOT_READY
        assert (
            f"database server is down or not listening at localhost:{mine['db']} "
            "(connection refused)" in db.message
        )
        assert monitoring.status is Status.NOT_READY
        assert (
            f"Prometheus at http://127.0.0.1:{mine['prometheus']} is not ready "
            "(connection refused)" in monitoring.message
        )
        grafana = (
            f"Grafana at http://127.0.0.1:{mine['grafana']} is not reachable (connection refused)"
        )
        assert grafana in repr(monitoring.to_dict()), monitoring.to_dict()


@pytest.fixture
def ssh(fleet: LoopbackFleet) -> Iterator[SshTransport]:
    with fleet_transport(fleet) as transport:
        yield transport


def test_checks_wanting_one_destination_at_once_share_one_open_and_one_tunnel(
    fleet: LoopbackFleet, ssh: SshTransport
) -> None:
    with socket.socket() as listener:  # the kernel completes connections into the backlog
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = int(listener.getsockname()[1])
        start = threading.Barrier(8)
        got: list[tuple[str, int]] = []

        def want() -> None:
            start.wait(5)
            got.append(ssh.tunnel("127.0.0.1", port))

        threads = [threading.Thread(target=want) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(got) == 8
        assert len(set(got)) == 1
        assert ssh.stats.tunnels[ssh.target.name] == 1
        assert _requests(fleet.hosts[0], port) == 1
        assert not ssh.tunnels[("127.0.0.1", port)].closed


def test_a_prefetched_refusal_is_the_same_error_and_a_later_request_asks_again(
    fleet: LoopbackFleet, ssh: SshTransport
) -> None:
    port = closed_port()
    ssh.prefetch([("127.0.0.1", port), ("127.0.0.1", port)])
    with pytest.raises(TunnelError) as first:
        ssh.tunnel("127.0.0.1", port)
    assert first.value.refused is True
    assert str(first.value).startswith(
        f"connection refused: {ssh.target.name} could not connect to 127.0.0.1:{port}"
    )
    assert _requests(fleet.hosts[0], port) == 1
    with pytest.raises(TunnelError) as again:
        ssh.tunnel("127.0.0.1", port)
    assert str(again.value) == str(first.value)
    assert _requests(fleet.hosts[0], port) == 2  # answered once: not cached for ever


def _opt_in_entry(
    fleet: LoopbackFleet, tmp_path: Path, host: LoopbackHost, free: list[int]
) -> dict[str, Any]:
    """The opt-in HTTP checks enabled, each URL a closed port of the host's loopback (taken
    from ``free``, so no two hosts share one)."""
    p = {k: free.pop() for k in ("rbac", "wf", "am", "recv", "bench")}
    entry = host_entry(fleet, host)
    entry["readiness"] = {
        "app_root": str(write_app(tmp_path / host.name)),
        "rbac": {
            "enabled": True,
            "token_env": "READINESS_TEST_RBAC_TOKEN",
            "forbidden": [{"method": "DELETE", "url": f"http://127.0.0.1:{p['rbac']}/x"}],
            "allowed": [{"method": "GET", "url": f"http://127.0.0.1:{p['rbac']}/y"}],
        },
        "workflow_state": {
            "enabled": True,
            "start_url": f"http://127.0.0.1:{p['wf']}/workflows",
            "status_url": f"http://127.0.0.1:{p['wf']}/workflows/{{id}}",
        },
        "alert_delivery": {
            "enabled": True,
            "alertmanager_url": f"http://127.0.0.1:{p['am']}",
            "receiver_query_url": f"http://127.0.0.1:{p['recv']}/got",
        },
        "http_benchmarks": [
            {"name": "health", "url": f"http://127.0.0.1:{p['bench']}/health", "requests": 5}
        ],
    }
    return {"entry": entry, "ports": p}


def _untimed(value: Any) -> Any:
    """A result without its timings (they differ between two runs)."""
    if isinstance(value, dict):
        return {
            k: _untimed(v)
            for k, v in value.items()
            if k != "timestamp" and not any(t in k for t in ("duration", "elapsed", "_ms", "_s"))
        }
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_the_opt_in_http_checks_share_the_hosts_prefetch_with_the_same_verdicts(
    fleet: LoopbackFleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rbac, workflow_state, alert_delivery and http_benchmark name their URLs' tunnel
    destinations: opened together once each, on this host only, and every verdict and
    message is what the checks say when each opens its own tunnel."""
    monkeypatch.setenv("READINESS_TEST_RBAC_TOKEN", "viewer-token")
    free = closed_ports(5 * len(fleet.hosts))
    planned = {h.name: _opt_in_entry(fleet, tmp_path, h, free) for h in fleet.hosts}
    inventory = write_inventory(
        tmp_path / "inventory.yml", {name: v["entry"] for name, v in planned.items()}
    )
    checks = ["rbac", "workflow_state", "alert_delivery", "http_benchmark"]

    def audit() -> dict[tuple[str, str], Any]:
        report = validate("fleet", checks, inventory=str(inventory), options=fleet_options(fleet))
        return {(r.host, r.check_name): _untimed(r.to_dict()) for r in report.results}

    prefetched: list[set[Any]] = []
    original = SshTransport.prefetch

    def recording(self: SshTransport, destinations: Iterable[tuple[str, int]]) -> None:
        wanted = list(destinations)
        prefetched.append({self.target.name, *wanted})
        original(self, wanted)

    monkeypatch.setattr(SshTransport, "prefetch", recording)
    together = audit()
    for h in fleet.hosts:
        mine = planned[h.name]["ports"]
        assert {h.name, *(("127.0.0.1", port) for port in mine.values())} in prefetched
        for port in mine.values():
            assert _requests(h, port) >= 1  # the prefetch, plus any later retry by a check
        other = next(o for o in fleet.hosts if o is not h)
        for port in planned[other.name]["ports"].values():
            assert _requests(h, port) == 0
    monkeypatch.setattr(SshTransport, "prefetch", lambda self, destinations: None)
    one_by_one = audit()
    for key, result in together.items():
        assert result == one_by_one[key], (key, result, one_by_one[key])
    assert len(together) == len(fleet.hosts) * len(checks)
    assert all(r["status"] == Status.NOT_READY.value for r in together.values()), together
    assert all("connection refused" in repr(r) for r in together.values()), together


def test_a_prefetch_starts_no_thread_and_its_first_caller_reads_the_answer(
    fleet: LoopbackFleet, ssh: SshTransport
) -> None:
    """The opens are only sent: no thread per destination. The callers that then want a
    listening destination at once share that one open and get one working tunnel."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = int(listener.getsockname()[1])
        refused = closed_port()
        # the listener holds its port while the refused one is found: two different ports
        earlier = {p: _requests(fleet.hosts[0], p) for p in (port, refused)}
        before = {t.ident for t in threading.enumerate()}
        ssh.prefetch([("127.0.0.1", port), ("127.0.0.1", refused)])
        assert {t.ident for t in threading.enumerate()} <= before
        start = threading.Barrier(6)
        got: list[tuple[str, int]] = []

        def want() -> None:
            start.wait(5)
            got.append(ssh.tunnel("127.0.0.1", port))

        threads = [threading.Thread(target=want) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(got) == 6
        assert len(set(got)) == 1
        listener.settimeout(5)
        listener.accept()[0].close()  # the prefetched open's connection (the check)
        with socket.create_connection(got[0], timeout=5):
            listener.accept()[0].close()  # the tunnel's client reaches the destination
        deadline = time.monotonic() + 5
        while _requests(fleet.hosts[0], port) - earlier[port] < 2:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)  # sshd's log line follows the connection
        # the prefetched open + the client's
        assert _requests(fleet.hosts[0], port) - earlier[port] == 2
        assert ssh.stats.tunnels[ssh.target.name] == 1
        with pytest.raises(TunnelError) as refusal:
            ssh.tunnel("127.0.0.1", refused)
        assert refusal.value.refused is True
        deadline = time.monotonic() + 5
        while _requests(fleet.hosts[0], refused) == earlier[refused]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert _requests(fleet.hosts[0], refused) - earlier[refused] == 1


def test_a_prefetched_destination_never_asked_for_goes_with_the_connection(
    fleet: LoopbackFleet,
) -> None:
    with socket.socket() as listener, fleet_transport(fleet) as ssh:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = int(listener.getsockname()[1])
        ssh.prefetch([("127.0.0.1", port)])
        listener.settimeout(5)
        served, _ = listener.accept()  # sshd connected for the prefetched open
        served.settimeout(5)
        ssh.close()
        assert served.recv(1) == b""  # closed with the connection: nothing stays open
        served.close()
        assert ssh.tunnels == {}
        with pytest.raises(TransportError):
            ssh.tunnel("127.0.0.1", port)
