"""The bench over a real loopback sshd fleet: what it measures, not how fast (no timings)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from readiness.bench import EXAMPLE_DIR, format_result, run_bench, write_example_app
from readiness.loopback import start_fleet

from .services.sshd import fleet_transport

pytestmark = pytest.mark.ssh

REPO = Path(__file__).resolve().parent.parent


def test_the_example_app_writer_copies_the_bundled_deployment(tmp_path: Path) -> None:
    write_example_app(0, tmp_path / "app")
    copied = sorted(str(p.relative_to(tmp_path / "app")) for p in (tmp_path / "app").rglob("*"))
    bundled = sorted(
        str(p.relative_to(EXAMPLE_DIR))
        for p in EXAMPLE_DIR.rglob("*")
        if "run" not in p.relative_to(EXAMPLE_DIR).parts and p.suffix != ".pyc"
    )
    assert copied == bundled
    assert (tmp_path / "app" / ".env").read_text() == (EXAMPLE_DIR / ".env").read_text()


def test_both_apps_cost_one_connection_and_one_command_per_host() -> None:
    res = run_bench(3, rounds=1, ansible=False, delay_ms=0)
    assert set(res.apps) == {"minimal", "example"}
    assert res.suite is res.apps["example"]  # the bundled example is the headline
    names = [f"h{i:04d}" for i in range(3)]
    for phase in [*res.floor, *res.apps["minimal"], *res.apps["example"]]:
        # The client's own counters and each sshd's log agree: one login per host.
        assert phase.connections == dict.fromkeys(names, 1), phase.name
        assert phase.logins == dict.fromkeys(names, 1), phase.name
        assert phase.commands == dict.fromkeys(names, 1), (phase.name, phase.commands)
        assert phase.cpu_s > 0 and phase.host_cpu_s > 0 and phase.peak_rss_mb > 0
        assert phase.sessions_reaped, phase.name
    assert not res.problems
    assert sum(res.statuses.values()) == 3
    (extra,) = res.extra  # recording the run and writing every report format, measured
    assert extra.cpu_s > 0 and not extra.logins.get("h0000")
    text = format_result(res)
    for needle in ("floor", "suite:minimal", "suite:example", "record+reports", "ratio"):
        assert needle in text


def test_invoke_bench_reports_both_apps_and_the_ansible_reference_rows(tmp_path: Path) -> None:
    # a TMPDIR of its own, 0755 as /tmp (the fleet's users cross it), to see what is left
    scratch = Path(tempfile.mkdtemp(prefix="bench-tmp-", dir=os.environ.get("TMPDIR", "/tmp")))
    scratch.chmod(0o755)
    try:
        res = subprocess.run(
            [str(Path(sys.executable).parent / "invoke"), "bench", "--hosts", "2"],
            cwd=REPO,
            env={**os.environ, "TMPDIR": str(scratch)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        # nothing left behind, not even the fleets' shared readiness-loopback directory
        left = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert res.returncode == 0, res.stderr
    assert left == [], left
    rows = {line.split("  ")[0].strip() for line in res.stdout.splitlines()}
    expected = {"floor", "suite:minimal", "suite:example", "ansible raw", "ansible command"}
    assert expected <= rows, res.stdout
    assert "suite:example/floor wall ratio" in res.stdout
    assert "ansible raw / suite:example wall" in res.stdout
    assert "not installed" not in res.stdout  # ansible-core is a dev dependency: CI has it
    assert "[readiness]" not in res.stderr  # no summary line per measured run


def test_the_delay_proxy_holds_bytes_both_ways_in_order_and_only_on_loopback() -> None:
    import socket
    import threading
    import time

    from readiness.bench import DelayProxy

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    proxy = DelayProxy([("127.0.0.1", server.getsockname()[1])], delay_s=0.05)
    try:
        with socket.create_connection(proxy.listeners[0], timeout=5) as client:
            t0 = time.monotonic()
            client.sendall(b"one ")
            client.sendall(b"two")
            got = b""
            while len(got) < 7:
                got += client.recv(4096)
            elapsed = time.monotonic() - t0
        assert got == b"one two"
        assert elapsed >= 0.1  # 50 ms there, 50 ms back
    finally:
        proxy.close()
        server.close()
    with pytest.raises(ValueError, match="loopback"):
        DelayProxy([("10.0.0.1", 22)], delay_s=0.01)


def test_round_trips_are_measured_against_the_floor_through_the_proxy() -> None:
    res = run_bench(1, rounds=1, ansible=False, apps=("example",), delay_ms=10)
    rt = res.round_trips
    assert rt is not None and rt.hosts == 1
    assert rt.floor_delayed_s > rt.floor_s and rt.suite_delayed_s > rt.suite_s
    assert rt.floor > 2  # TCP, key exchange, authentication, session, exec: several
    assert "round trips per host with 10 ms added each way" in format_result(res)


def test_host_cpu_is_read_once_every_session_is_reaped() -> None:
    """A connection's CPU reaches its sshd's counters only once sshd has reaped it: the
    bench waits for exactly that (bounded), not for a fixed time."""
    with start_fleet(1) as fleet:
        before = fleet.cpu_seconds()
        with fleet_transport(fleet) as ssh:
            assert ssh.run(["python3", "-c", "sum(range(3_000_000))"], timeout=60).ok
            assert not fleet.wait_until_sessions_reaped(timeout=0.2)  # the connection is open
        assert fleet.wait_until_sessions_reaped(timeout=30)
        assert fleet.cpu_seconds() - before >= 0.02  # the remote python's work, counted
