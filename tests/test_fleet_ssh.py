"""The fleet over real SSH: sshd processes on loopback, real keys, real known_hosts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from readiness import validate
from readiness.collect import FrameEnd, bootstrap_argv, bootstrap_stdin, split_output
from readiness.loopback import LoopbackFleet, keypair
from readiness.model import FleetReport, Status
from readiness.report import render
from readiness.runner import HostLike, RunOptions
from readiness.ssh import SshConnector, SshTransport
from readiness.transport import Transport

from .services.apps import audit_local
from .services.load import load_scaled
from .services.ports import closed_port
from .services.sshd import FLEET_STATES, NOPW_USER, host_entry, write_inventory

pytestmark = pytest.mark.ssh

CHECKS = ["environment", "configuration"]
REPO = Path(__file__).resolve().parent.parent

Options = Callable[..., RunOptions]


def _statuses(report: FleetReport) -> dict[str, Status]:
    return {h.host: h.status for h in report.hosts}


def _inventory(tmp_path: Path, fleet: LoopbackFleet, **extra: dict[str, Any]) -> Path:
    hosts = {h.name: host_entry(fleet, h) for h in fleet.hosts}
    hosts.update(extra)
    return write_inventory(tmp_path / "inventory.yml", hosts)


def _open(fleet: LoopbackFleet, options: RunOptions, index: int = 0) -> SshTransport:
    from readiness.inventory import load_inventory

    host = load_inventory(fleet.inventory).select(fleet.hosts[index].name)[0]
    transport = SshConnector(options).open(host)
    assert isinstance(transport, SshTransport)
    return transport


def test_healthy_degraded_and_not_ready_hosts_merge_into_one_report(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    report = validate("fleet", CHECKS, inventory=str(ssh_fleet.inventory), options=ssh_options())
    assert [h.host for h in report.hosts] == [h.name for h in ssh_fleet.hosts]
    expected = {
        "healthy": Status.READY,
        "degraded": Status.DEGRADED,
        "not_ready": Status.NOT_READY,
    }
    assert _statuses(report) == {
        h.name: expected[state] for h, state in zip(ssh_fleet.hosts, FLEET_STATES, strict=True)
    }
    assert report.exit_code() == 1
    table = render(report, "table")
    rows = [line.split()[0] for line in table.splitlines() if line.startswith("h0")]
    assert rows == [h.name for h in ssh_fleet.hosts]


def test_same_app_state_gives_the_same_results_locally_and_over_ssh(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    for host in ssh_fleet.hosts[:3]:
        remote = validate(
            host.name, CHECKS, inventory=str(ssh_fleet.inventory), options=ssh_options()
        )
        local = audit_local(host.app_root, CHECKS)
        assert [(r.check_name, r.status, r.message) for r in remote.results] == [
            (r.check_name, r.status, r.message) for r in local.results
        ]


def test_each_host_costs_one_connection_and_one_command(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    before = [h.accepted_logins() for h in ssh_fleet.hosts]
    options = ssh_options()
    connector = SshConnector(options)
    report = validate(
        "fleet", CHECKS, inventory=str(ssh_fleet.inventory), options=options, connector=connector
    )
    assert all(h.status is not Status.UNREACHABLE for h in report.hosts)
    names = [h.name for h in ssh_fleet.hosts]
    assert dict(connector.stats.connections) == dict.fromkeys(names, 1)
    # configuration's follow-up round (the OTLP endpoint) rides on the same command.
    assert dict(connector.stats.commands) == dict.fromkeys(names, 1)
    # sshd writes its log line asynchronously: wait for it (bounded), then count exactly
    deadline = time.monotonic() + 10
    while True:
        after = [h.accepted_logins() for h in ssh_fleet.hosts]
        if all(a > b for a, b in zip(after, before, strict=True)) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [a - b for a, b in zip(after, before, strict=True)] == [1] * len(names)


def test_closed_port_is_unreachable_quickly(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    port = closed_port()
    inv = write_inventory(
        tmp_path / "inv.yml", {"dead": {"ansible_host": "127.0.0.1", "ansible_port": port}}
    )
    t0 = time.monotonic()
    report = validate("dead", CHECKS, inventory=str(inv), options=ssh_options())
    assert time.monotonic() - t0 < 2
    assert report.hosts[0].status is Status.UNREACHABLE
    assert "connection refused" in (report.hosts[0].reason or "")


def test_silent_socket_is_unreachable_within_the_timeout_without_delaying_others(
    tmp_path: Path,
    ssh_fleet: LoopbackFleet,
    ssh_options: Options,
    silent_server: tuple[str, int],
) -> None:
    addr, port = silent_server
    inv = _inventory(tmp_path, ssh_fleet, silent={"ansible_host": addr, "ansible_port": port})
    t0 = time.monotonic()
    report = validate("fleet", CHECKS, inventory=str(inv), options=ssh_options(connect_timeout=1.5))
    wall = time.monotonic() - t0
    silent = report.hosts[-1]
    assert silent.host == "silent"
    assert silent.status is Status.UNREACHABLE
    assert "no SSH banner" in (silent.reason or "")
    assert wall < 1.5 + 3
    others = report.hosts[:-1]
    assert all(h.status is not Status.UNREACHABLE for h in others)
    assert max(h.duration_s for h in others) < 1.5


def test_unknown_host_key_is_unreachable_and_says_how_to_fix_it(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host = ssh_fleet.hosts[0]
    report = validate(
        host.name,
        CHECKS,
        inventory=str(ssh_fleet.inventory),
        options=ssh_options(known_hosts=str(empty)),
    )
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert "unknown host key" in reason
    assert "--accept-new-host-keys" in reason
    assert empty.read_text() == ""
    # The hint names this host's address, port and file, and works as printed.
    hint = re.search(r"add it \((ssh-keyscan .*?)\) or rerun", reason)
    assert hint, reason
    assert hint.group(1) == f"ssh-keyscan -p {host.port} -- {host.address} >> {empty}"
    subprocess.run(["sh", "-c", hint.group(1)], check=True, timeout=30, capture_output=True)
    again = validate(
        host.name,
        CHECKS,
        inventory=str(ssh_fleet.inventory),
        options=ssh_options(known_hosts=str(empty)),
    )
    assert again.hosts[0].status is not Status.UNREACHABLE, again.hosts[0].reason


def test_accept_new_host_keys_records_the_key_and_the_next_run_verifies_it(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    host = ssh_fleet.hosts[0]
    first = validate(
        host.name,
        CHECKS,
        inventory=str(ssh_fleet.inventory),
        options=ssh_options(known_hosts=str(known), accept_new_host_keys=True),
    )
    assert first.hosts[0].status is Status.READY
    assert known.read_text() == f"{host.known_hosts_name} {host.host_key_line}\n"
    second = validate(
        host.name,
        CHECKS,
        inventory=str(ssh_fleet.inventory),
        options=ssh_options(known_hosts=str(known)),
    )
    assert second.hosts[0].status is Status.READY


def test_changed_host_key_is_unreachable_even_with_accept_new(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    impostor = keypair(tmp_path / "other_key")
    known = tmp_path / "known_hosts"
    known.write_text(f"{host.known_hosts_name} {impostor}\n")
    before = known.read_text()
    report = validate(
        host.name,
        CHECKS,
        inventory=str(ssh_fleet.inventory),
        options=ssh_options(known_hosts=str(known), accept_new_host_keys=True),
    )
    reason = report.hosts[0].reason or ""
    assert report.hosts[0].status is Status.UNREACHABLE
    assert "host key CHANGED" in reason
    assert "man-in-the-middle" in reason
    assert known.read_text() == before


@pytest.mark.parametrize("what", ["key", "user"])
def test_wrong_key_or_user_is_unreachable_with_an_authentication_failure(
    what: str, tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    entry = host_entry(ssh_fleet, host)
    if what == "key":
        keypair(tmp_path / "stranger")
        entry["ansible_ssh_private_key_file"] = str(tmp_path / "stranger")
    else:
        entry["ansible_user"] = "nosuchuser"
    inv = write_inventory(tmp_path / "inv.yml", {"h": entry})
    report = validate("h", CHECKS, inventory=str(inv), options=ssh_options())
    assert report.hosts[0].status is Status.UNREACHABLE
    assert "authentication failed" in (report.hosts[0].reason or "")


def test_shell_metacharacters_in_inventory_values_are_never_executed(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    tag = uuid.uuid4().hex
    markers = [Path(f"/tmp/PWNED-{tag}-{i}") for i in range(3)]
    values = [
        f"/tmp/x; touch {markers[0]}",
        f"$(touch {markers[1]})",
        f"`touch {markers[2]}`",
    ]
    hosts = {}
    for i, value in enumerate(values):
        entry = host_entry(ssh_fleet, ssh_fleet.hosts[0], readiness={"app_root": value})
        hosts[f"evil{i}"] = entry
    inv = write_inventory(tmp_path / "inv.yml", hosts)
    report = validate("fleet", CHECKS, inventory=str(inv), options=ssh_options())
    assert [h.status for h in report.hosts] == [Status.NOT_READY] * 3
    assert not [m for m in markers if m.exists()]


def test_output_over_the_cap_is_truncated_quickly_with_bounded_memory(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    transport = _open(ssh_fleet, ssh_options())
    try:
        tracemalloc.start()
        t0 = time.monotonic()
        res = transport.run(
            ["python3", "-c", "import sys; sys.stdout.buffer.write(b'x' * 50_000_000)"],
            timeout=30,
            max_output=1_000_000,
        )
        elapsed = time.monotonic() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        transport.close()
    assert res.truncated
    assert len(res.stdout) == 1_000_000
    # 5 s on a quiet machine (reading 1 MB, not 50); stretched by the load as other
    # wall-clock promises are, never past 20 s, well short of the command's 30 s timeout
    limit = load_scaled(5.0, most=20.0)
    assert elapsed < limit, f"{elapsed:.2f}s (limit {limit:.1f}s at this load)"
    assert peak < 16_000_000


def test_probe_output_over_the_limit_is_an_error_not_a_crash(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    host = ssh_fleet.hosts[0]
    report = validate(
        host.name, CHECKS, inventory=str(ssh_fleet.inventory), options=ssh_options(max_output=100)
    )
    assert report.hosts[0].status is Status.ERROR
    assert "output exceeded limit" in report.results[0].message


def test_non_utf8_output_is_returned_as_bytes(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    transport = _open(ssh_fleet, ssh_options())
    try:
        res = transport.run(
            ["python3", "-c", "import sys; sys.stdout.buffer.write(b'\\xff\\xfe ok')"], timeout=10
        )
    finally:
        transport.close()
    assert res.ok
    assert res.stdout == b"\xff\xfe ok"


def test_remote_timeout_kills_the_remote_process(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    pidfile = tmp_path / "probe.pid"
    src = f"import os,time\nopen({str(pidfile)!r},'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    stdin = bootstrap_stdin(src.encode(), b"", deadline_s=1)
    transport = _open(ssh_fleet, ssh_options())
    try:
        t0 = time.monotonic()
        res = transport.run(bootstrap_argv(), stdin=stdin, timeout=15)
        elapsed = time.monotonic() - t0
    finally:
        transport.close()
    assert res.exit_code == 124
    assert elapsed < 5
    pid = int(pidfile.read_text())
    assert not _alive(pid, wait=3)


def test_a_command_past_its_timeout_is_reported_timed_out(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    transport = _open(ssh_fleet, ssh_options())
    try:
        t0 = time.monotonic()
        res = transport.run(["timeout", "5", "sleep", "5"], timeout=0.5)
        elapsed = time.monotonic() - t0
    finally:
        transport.close()
    assert res.timed_out
    assert elapsed < 2


def test_sudo_that_wants_a_password_is_a_clear_error_not_a_hang(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    entry = host_entry(ssh_fleet, ssh_fleet.hosts[0], ansible_user=NOPW_USER)
    inv = write_inventory(tmp_path / "inv.yml", {"nopw": entry})
    t0 = time.monotonic()
    report = validate("nopw", CHECKS, inventory=str(inv), options=ssh_options(sudo=True))
    assert time.monotonic() - t0 < 10
    assert report.hosts[0].status is Status.ERROR
    assert "sudo requires a password" in report.results[0].message


class _InterruptAt:
    """Connector that opens real SSH transports but raises Ctrl-C at one host."""

    def __init__(self, inner: SshConnector, stop_at: str) -> None:
        self.inner, self.stop_at = inner, stop_at

    def open(self, host: HostLike) -> Transport:
        if host.name == self.stop_at:
            raise KeyboardInterrupt
        return self.inner.open(host)

    def close(self) -> None:
        self.inner.close()


def test_ctrl_c_keeps_finished_hosts_and_marks_the_rest_not_audited(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    options = ssh_options(forks=1)
    names = [h.name for h in ssh_fleet.hosts]
    connector = _InterruptAt(SshConnector(options), stop_at=names[2])
    report = validate(
        "fleet", CHECKS, inventory=str(ssh_fleet.inventory), options=options, connector=connector
    )
    assert report.interrupted
    assert _statuses(report)[names[0]] is Status.READY
    assert _statuses(report)[names[1]] is Status.DEGRADED
    for h in report.hosts[2:]:
        assert h.status is Status.INTERRUPTED
        assert "not audited" in h.results[0].message


def test_invoke_cli_validates_the_fleet_as_json(
    ssh_fleet: LoopbackFleet,
) -> None:
    proc = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "invoke"),
            "validate",
            "--hosts",
            "fleet",
            "--check",
            "environment,configuration",
            "-i",
            str(ssh_fleet.inventory),
            "--format",
            "json",
            "--known-hosts",
            str(ssh_fleet.known_hosts),
            "--quiet",
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(ssh_fleet.root / "home")},
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert [h["host"] for h in doc["hosts"]] == [h.name for h in ssh_fleet.hosts]
    assert [h["status"] for h in doc["hosts"]] == ["ready", "degraded", "not_ready", "ready"]


def _alive(pid: int, *, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            return False  # exited, waiting to be reaped by its (remote) parent
        time.sleep(0.05)
    return True


def test_invoke_yaml_readiness_section_supplies_inventory_known_hosts_and_timeouts(
    tmp_path: Path, ssh_fleet: LoopbackFleet
) -> None:
    """``-f`` loads the same ``readiness:`` section a project's invoke.yaml would hold."""
    config = tmp_path / "invoke.yaml"
    config.write_text(
        json.dumps(
            {
                "readiness": {
                    "inventory": str(ssh_fleet.inventory),
                    "known_hosts": str(ssh_fleet.known_hosts),
                    "ssh_config": "",
                    "forks": 2,
                    "connect_timeout": 5,
                    "quiet": True,
                }
            }
        )
    )
    proc = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "invoke"),
            "-f",
            str(config),
            "validate",
            "--hosts",
            "fleet",
            "--check",
            "environment",
            "--format",
            "json",
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    # quiet: no progress line, only the one-line summary CI logs rely on
    assert re.fullmatch(r"\[readiness\] 4 hosts in \d+s: 3 ready, 1 not ready\n", proc.stderr)
    doc = json.loads(proc.stdout)
    assert [h["status"] for h in doc["hosts"]] == ["ready", "ready", "not_ready", "ready"]


def test_connections_built_in_parallel_each_hold_only_their_own_settings(tmp_path: Path) -> None:
    """Connections are built by many threads at once (it was a shared Fabric Config that
    invoke re-merged on every write, so threads saw it empty): each keeps its own
    address, port, user, key and known_hosts entry, never another host's."""
    from concurrent.futures import ThreadPoolExecutor

    from readiness.ssh import SshTarget

    keys = [tmp_path / f"key{i}" for i in range(4)]
    publics = [keypair(k) for k in keys]  # the hosts' keys too, for the known_hosts lines
    known = tmp_path / "known_hosts"
    known.write_text(
        "".join(f"[127.0.0.{1 + i}]:{2200 + i} {publics[i % 4]}\n" for i in range(250))
    )
    connector = SshConnector(RunOptions(known_hosts=str(known), ssh_config=""))

    def build(i: int) -> int:
        target = SshTarget(f"h{i}", f"127.0.0.{1 + i}", 2200 + i, f"user{i}", (str(keys[i % 4]),))
        conn, _ = connector._authenticated(target)
        for _ in range(20):  # read while other threads build theirs
            kwargs = conn._connect_kwargs
            assert (kwargs["hostname"], kwargs["port"], kwargs["username"]) == (
                f"127.0.0.{1 + i}",
                2200 + i,
                f"user{i}",
            )
            assert kwargs["pkey"] is connector.load_key(str(keys[i % 4]))
            host_keys = conn.client.get_host_keys()
            assert list(host_keys) == [f"[127.0.0.{1 + i}]:{2200 + i}"]
            (key,) = host_keys[f"[127.0.0.{1 + i}]:{2200 + i}"].values()
            assert f"{key.get_name()} {key.get_base64()}" == publics[i % 4]
        return 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to widen the race
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            assert sum(pool.map(build, range(250))) == 250
    finally:
        sys.setswitchinterval(interval)


def test_hosts_opened_together_log_in_with_their_own_user_port_and_key(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    """Three hosts opened at once through one connector, each with another user, port and
    key file: each logs in as its own user on its own sshd, and the one given a key the
    hosts do not know fails with that key's name, not with another host's settings."""
    from concurrent.futures import ThreadPoolExecutor

    from readiness.errors import TransportError
    from readiness.inventory import load_inventory

    copy = tmp_path / "same_key_elsewhere"
    copy.write_bytes(ssh_fleet.client_key.read_bytes())
    copy.chmod(0o600)
    stranger = tmp_path / "unknown_key"
    keypair(stranger)
    h0, h1, h2 = ssh_fleet.hosts[:3]
    inv = write_inventory(
        tmp_path / "inv.yml",
        {
            "as_root": host_entry(ssh_fleet, h0),
            "as_nopw": host_entry(
                ssh_fleet, h1, ansible_user=NOPW_USER, ansible_ssh_private_key_file=str(copy)
            ),
            "stranger": host_entry(ssh_fleet, h2, ansible_ssh_private_key_file=str(stranger)),
        },
    )
    hosts = load_inventory(inv).select("all")
    connector = SshConnector(ssh_options())

    def login(host: HostLike) -> tuple[str, tuple[str, int]] | str:
        try:
            transport = connector.open(host)
        except TransportError as exc:
            return str(exc)
        try:
            assert isinstance(transport, SshTransport)
            peer = transport.conn.transport.getpeername()  # type: ignore[union-attr]
            res = transport.run(["id", "-un"], timeout=15)
            # the last line: sshd may say first that the account has no home directory
            return res.stdout.decode().split()[-1], (peer[0], peer[1])
        finally:
            transport.close()

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=3) as pool:
            got = dict(zip([h.name for h in hosts], pool.map(login, hosts), strict=True))
        assert got["as_root"] == (ssh_fleet.user, (h0.address, h0.port))
        assert got["as_nopw"] == (NOPW_USER, (h1.address, h1.port))
        assert got["stranger"] == (
            f"authentication failed for {ssh_fleet.user}@{h2.address}:{h2.port} ({stranger})"
        )


def test_a_probe_process_waiting_for_its_next_round_ends_when_the_connection_drops(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    """Both probe rounds run in one remote process (one command per host); between them it
    waits on its pty, and a hang-up ends it as it ends a running probe."""
    pidfile = tmp_path / "probe.pid"
    first = f"import os\nopen({str(pidfile)!r},'w').write(str(os.getpid()))\nprint('one')\n"
    transport = _open(ssh_fleet, ssh_options())
    try:
        session = transport.start(bootstrap_argv(), timeout=15)
        res = session.exchange(
            bootstrap_stdin(first.encode(), b"", deadline_s=30, more=True),
            until=FrameEnd(),
            timeout=15,
        )
        assert res.running and split_output(res).answer == b"one\n"
        pid = int(pidfile.read_text())
        again = session.exchange(
            bootstrap_stdin(b"import os\nprint(os.getpid())", b"", deadline_s=30, more=True),
            until=FrameEnd(),
            timeout=15,
        )
        assert split_output(again).answer == f"{pid}\n".encode()  # the same process
        assert _alive(pid, wait=0.3)  # waiting for a third request
        assert transport.stats.commands[ssh_fleet.hosts[0].name] == 1
    finally:
        transport.close()  # no "no more requests": a hang-up
    assert not _alive(pid, wait=3)


def _spy_transport(transport: SshTransport) -> list[tuple[list[str], bytes]]:
    calls: list[tuple[list[str], bytes]] = []
    real_start, real_run = transport.start, transport.run

    def start(argv: Any, *, timeout: float, stdin: bytes = b"") -> Any:
        calls.append((list(argv), stdin))
        return real_start(argv, timeout=timeout, stdin=stdin)

    def run(argv: Any, **kw: Any) -> Any:
        calls.append((list(argv), kw.get("stdin", b"")))
        return real_run(argv, **kw)

    transport.start = start  # type: ignore[method-assign]
    transport.run = run  # type: ignore[method-assign]
    return calls


def _without_timings(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: {f: v for f, v in fact.items() if f != "_elapsed_s"} for k, fact in answer.items()}


def test_the_first_probe_request_travels_in_the_exec_and_answers_as_on_stdin(
    tmp_path: Path, ssh_fleet: LoopbackFleet, ssh_options: Options, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sshd opens a session's input window only once the command runs: a first request on
    stdin would wait a round trip for it. In the exec request it costs none, and the host
    answers exactly what it answers to the same request on stdin."""
    from readiness import collect

    (tmp_path / "settings.yml").write_text("a: 1\n")
    first = {
        "settings": {"op": "file", "path": str(tmp_path / "settings.yml")},
        "dir": {"op": "list", "path": str(tmp_path), "patterns": ["*.yml"]},
        "port": {"op": "tcp", "host": "127.0.0.1", "port": closed_port(), "timeout": 2.0},
    }
    second = {"missing": {"op": "stat", "path": str(tmp_path / "nope")}}

    def both_rounds() -> tuple[list[tuple[list[str], bytes]], list[dict[str, Any]]]:
        transport = _open(ssh_fleet, ssh_options())
        calls = _spy_transport(transport)
        try:
            with collect.ProbeSession(transport, timeout_s=20) as probe:
                answers = [probe.ask(first, more=True), probe.ask(second, more=False)]
            assert transport.stats.commands[ssh_fleet.hosts[0].name] == 1
        finally:
            transport.close()
        return calls, [_without_timings(a["facts"]) for a in answers]

    inline_calls, inline_answers = both_rounds()
    [(argv, stdin)] = inline_calls
    assert (
        argv[: len(bootstrap_argv())] == bootstrap_argv() and len(argv) == len(bootstrap_argv()) + 3
    )
    assert stdin == b""
    monkeypatch.setattr(collect, "inline_request", lambda *a, **k: None)
    stdin_calls, stdin_answers = both_rounds()
    assert stdin_calls[0][0] == bootstrap_argv() and stdin_calls[0][1]
    assert inline_answers == stdin_answers
    assert inline_answers[0]["settings"]["text"] == "a: 1\n"
    assert "error" in inline_answers[0]["port"] or inline_answers[0]["port"].get("ok") is False


def test_a_probe_request_that_may_carry_a_credential_stays_off_the_command_line(
    ssh_fleet: LoopbackFleet, ssh_options: Options
) -> None:
    """Other users of a host can read its processes' command lines: an ``http`` op (its
    headers may hold a token) keeps the whole request on stdin."""
    from readiness.collect import ProbeSession

    token = "Bearer inline-" + uuid.uuid4().hex
    facts = {
        "hello": {
            "op": "http",
            "url": f"http://127.0.0.1:{closed_port()}/",
            "headers": {"Authorization": token},
            "timeout": 2,
        }
    }
    transport = _open(ssh_fleet, ssh_options())
    calls = _spy_transport(transport)
    try:
        with ProbeSession(transport, timeout_s=20) as probe:
            answer = probe.ask(facts, more=False)
    finally:
        transport.close()
    assert "hello" in answer["facts"]
    [(argv, stdin)] = calls
    assert argv == bootstrap_argv() and stdin
