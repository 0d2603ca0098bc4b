"""Real OpenSSH servers on loopback (readiness.loopback) and helpers for odd hosts.

``ssh_fleet`` is one session-wide fleet of four sshd hosts whose app trees are in
distinct states: h0000 healthy, h0001 degraded, h0002 not ready, h0003 healthy (spare).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.loopback import (
    LoopbackFleet,
    LoopbackHost,
    hang_forced_command,
    hang_python,
    start_fleet,
)
from readiness.runner import RunOptions
from readiness.ssh import SshConnector, SshTransport

from .apps import write_app
from .cli import run_cli

NOPW_USER = "readiness-nopw"  # a real non-root account without sudo rights

APP_STATES: dict[str, dict[str, Any]] = {
    "healthy": {},  # plus an OTLP endpoint that answers: see ssh_fleet
    "degraded": {"settings": {"observability": {"metrics_enabled": False}}},
    "not_ready": {"env": {"MAHAVISHNU_AUTH__SECRET": None}},
}
FLEET_STATES = ["healthy", "degraded", "not_ready", "healthy"]


def _writer(otlp: str) -> Callable[[int, Path], None]:
    def write(index: int, root: Path) -> None:
        state = FLEET_STATES[index]
        kwargs = dict(APP_STATES[state])
        if state == "healthy":
            kwargs["settings"] = {"observability": {"otlp_endpoint": otlp}}
        write_app(root, **kwargs)
        _share(root)

    return write


def _share(root: Path) -> None:
    for p in [root, *root.rglob("*")]:  # readable by the non-root test account
        p.chmod(0o755 if p.is_dir() else (0o600 if p.name == ".env" else 0o644))


def _ensure_user(name: str) -> None:
    # "*": no password, but not locked ("!"), which sshd without PAM would refuse outright.
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-M", "-p", "*", "-s", "/bin/sh", name], check=True, timeout=30)
    else:
        subprocess.run(["usermod", "-p", "*", name], check=True, timeout=30)


@pytest.fixture(scope="session")
def ssh_fleet() -> Iterator[LoopbackFleet]:
    """Four real sshd hosts (see module docstring); stopped by PID at session end."""
    _ensure_user(NOPW_USER)
    # A TCP listener standing in for the OTLP collector (the healthy hosts' endpoint must answer).
    otlp = socket.socket()
    otlp.bind(("127.0.0.1", 0))
    otlp.listen(512)
    try:
        url = f"http://127.0.0.1:{otlp.getsockname()[1]}"
        fleet = start_fleet(len(FLEET_STATES), app_writer=_writer(url), extra_users=[NOPW_USER])
        try:
            yield fleet
        finally:
            fleet.stop()
    finally:
        otlp.close()


HOSTILE_KINDS = ("healthy", "python_hangs", "forced_command_hangs")


def _hostile(index: int, host: LoopbackHost) -> None:
    kind = HOSTILE_KINDS[index % len(HOSTILE_KINDS)]
    if kind == "python_hangs":
        hang_python(host)
    elif kind == "forced_command_hangs":
        hang_forced_command(host)


@pytest.fixture(scope="module")
def hostile_fleet() -> Iterator[LoopbackFleet]:
    """h0000 healthy, h0001 whose python3 hangs before Python runs, h0002 whose sshd has a
    ForceCommand that hangs. Every session carries a census marker (LoopbackHost.census);
    whatever a test leaves behind is killed at the end (and counted by the test first).
    """
    fleet = start_fleet(
        len(HOSTILE_KINDS), app_writer=lambda _i, root: write_app(root), host_setup=_hostile
    )
    try:
        yield fleet
    finally:
        for pids in fleet.leftovers().values():
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
        fleet.stop()


def wait_for_no_leftovers(fleet: LoopbackFleet, within: float = 5.0) -> dict[str, list[int]]:
    """Poll the census until no host has a process left, or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while True:
        left = fleet.leftovers()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def fleet_options(fleet: LoopbackFleet, **kw: Any) -> RunOptions:
    """RunOptions verified against ``fleet``'s known_hosts, no user ssh_config, short
    timeouts (``kw`` overrides any of them)."""
    base: dict[str, Any] = {
        "known_hosts": str(fleet.known_hosts),
        "ssh_config": "",
        "connect_timeout": 5.0,
        "command_timeout": 20.0,
        "host_deadline": 40.0,
        "progress": False,
    }
    return RunOptions(**{**base, **kw})


def fleet_config(fleet: LoopbackFleet, path: Path, **keys: Any) -> Path:
    """An invoke/readiness configuration file for a ``readiness -f PATH ...`` subprocess:
    host keys verified against ``fleet``'s known_hosts, no user ssh_config, and ``keys``
    (e.g. ``command_timeout``, ``progress_interval``) under ``readiness:``."""
    settings = {"known_hosts": str(fleet.known_hosts), "ssh_config": "", **keys}
    path.write_text(yaml.safe_dump({"readiness": settings}))
    return path


@contextlib.contextmanager
def fleet_transport(fleet: LoopbackFleet, index: int = 0) -> Iterator[SshTransport]:
    """An open SSH transport to ``fleet.hosts[index]`` (through its inventory), closed after."""
    from readiness.inventory import load_inventory

    host = load_inventory(fleet.inventory).select(fleet.hosts[index].name)[0]
    transport = SshConnector(fleet_options(fleet)).open(host)
    assert isinstance(transport, SshTransport)
    try:
        yield transport
    finally:
        transport.close()


@pytest.fixture
def ssh_options(ssh_fleet: LoopbackFleet) -> Callable[..., RunOptions]:
    """:func:`fleet_options` of the session fleet."""

    def make(**kw: Any) -> RunOptions:
        return fleet_options(ssh_fleet, **kw)

    return make


def host_entry(fleet: LoopbackFleet, host: LoopbackHost, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ansible_host": host.address,
        "ansible_port": host.port,
        "ansible_user": fleet.user,
        "ansible_ssh_private_key_file": str(fleet.client_key),
        "readiness": {"app_root": str(host.app_root)},
    }
    entry.update(extra)
    return entry


def write_inventory(path: Path, hosts: Mapping[str, Mapping[str, Any]]) -> Path:
    """An inventory with ``hosts`` (name → vars, in order) in group ``fleet``."""
    doc = {"all": {"children": {"fleet": {"hosts": {k: dict(v) for k, v in hosts.items()}}}}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A TCP socket that accepts connections (kernel backlog) and never speaks SSH."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield "127.0.0.1", int(sock.getsockname()[1])
    finally:
        with contextlib.suppress(OSError):
            sock.close()


def commands_started(host: LoopbackHost) -> int:
    """How many commands sshd on ``host`` has started (its "Starting session: command" lines:
    the host's sshd must log at ``LogLevel VERBOSE`` or above)."""
    return host.log.read_text(errors="replace").count("Starting session: command")


def validate_fleet_json(fleet: LoopbackFleet) -> subprocess.CompletedProcess[str]:
    """``readiness validate`` of every host of ``fleet`` as a user runs it: JSON on stdout,
    nothing recorded, the fleet's own known_hosts and home."""
    return run_cli(
        "validate",
        "--hosts",
        "fleet",
        "-i",
        str(fleet.inventory),
        "--known-hosts",
        str(fleet.known_hosts),
        "--format",
        "json",
        "--store",
        "none",
        "--quiet",
        env={**os.environ, "HOME": str(fleet.root / "home")},
    )
