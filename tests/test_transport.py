"""readiness.transport: LocalTransport ends what it started when it is closed."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from readiness.collect import run_probe
from readiness.loopback import census
from readiness.transport import LocalTransport

from .services.cli import BIN, local_inventory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_closing_a_local_transport_ends_a_running_probe_and_the_commands_it_started(
    tmp_path: Path,
) -> None:
    """As a hang-up does on a host: the probe's own commands run in their own sessions."""
    pidfile = tmp_path / "child.pid"
    script = f"import os,time; open({str(pidfile)!r},'w').write(str(os.getpid())); time.sleep(100)"
    transport = LocalTransport()
    errors: list[BaseException] = []

    def probe() -> None:
        try:
            run_probe(
                transport,
                {"smoke": {"op": "run", "argv": [sys.executable, "-c", script], "timeout": 100}},
                timeout_s=100,
            )
        except Exception as exc:  # the probe dies: a ProbeError is the expected outcome
            errors.append(exc)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    deadline = time.monotonic() + 20
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline, "the probe never started its command"
        time.sleep(0.05)
    child = int(pidfile.read_text())
    started = time.monotonic()
    transport.close()
    worker.join(10)
    assert not worker.is_alive()
    assert time.monotonic() - started < 3
    assert errors, "a hung-up probe must not look like an answer"
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


@pytest.mark.timeout(180)  # the old code failed only when the workflow's 100 s were over
def test_a_local_probe_ends_promptly_when_the_controller_is_killed(tmp_path: Path) -> None:
    """A real `readiness validate` on a local host (pipes, no SSH pty to hang up) killed
    with SIGKILL while the probe runs a smoke workflow. Before: the probe and its command
    ran on until the probe's own deadline (here 120 s)."""
    marker = f"READINESS_TEST_RUN={secrets.token_hex(8)}"
    name, value = marker.split("=", 1)
    smoke = {
        "command": ["sh", "-c", "setsid sleep 431 </dev/null >/dev/null 2>&1 & sleep 100"],
        "expect_state": "completed",
        "timeout_s": 100,
    }
    inventory = local_inventory(tmp_path / "inv.yml", tmp_path, smoke_workflow=smoke)
    args = ["validate", "-i", str(inventory), "-c", "workflow_execution"]
    proc = subprocess.Popen(
        [str(BIN / "readiness"), *args, "--command-timeout", "120"],
        cwd=tmp_path,
        env={**os.environ, name: value},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Nothing of the run can end by itself before the workflow's own 100 s are over (the
    # probe's deadline is later still): every wait is bounded by that moment, not a guess.
    ends_by_itself = time.monotonic() + float(smoke["timeout_s"])
    try:
        while not any(b"431" in _cmdline(pid) for pid in census(marker)):
            assert time.monotonic() < ends_by_itself, "the smoke workflow never started"
            time.sleep(0.05)
        proc.kill()
        proc.wait(10)
        while census(marker) and time.monotonic() < ends_by_itself - 1:
            time.sleep(0.05)
        left = {pid: _cmdline(pid) for pid in census(marker)}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for pid in census(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert left == {}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_local_command_whose_pipe_outlives_its_hang_up_cannot_hold_the_run(
    tmp_path: Path,
) -> None:
    """After its deadline the command's group is hung up and killed, then the rest of its
    output was read with no bound: a command that traps SIGHUP and leaves a process of its
    own session holding the pipe (``setsid``) held the controller until that process
    ended (here 60 s). Now the read after the hang-up is bounded too."""
    pidfile = tmp_path / "holder.pid"
    script = (
        "trap '' HUP; "
        f"setsid sh -c 'trap \"\" HUP; echo $$ > {pidfile}; exec sleep 60' & "
        "echo started; sleep 100"
    )
    started = time.monotonic()
    try:
        res = LocalTransport().run(["sh", "-c", script], timeout=1)
        took = time.monotonic() - started
    finally:
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert res.timed_out
    assert took < 1 + 3, took  # the deadline, the hang-up's grace, the bounded read
    assert b"started" in res.stdout  # what it wrote before the hang-up is kept
