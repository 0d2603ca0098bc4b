"""Nothing readiness starts on a host outlives the run (readiness.ssh, readiness.collect).

Hostile hosts from tests/services/sshd.py: one whose ``python3`` hangs before any Python
code runs, one whose sshd has a ``ForceCommand`` that hangs. Every session on a loopback
host carries a marker in its environment, so a /proc census finds what a run left behind,
whichever way it ended: a command timeout, a host deadline, or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from readiness import validate
from readiness.loopback import LoopbackFleet, hang_python, start_fleet
from readiness.model import Status
from readiness.runner import RunOptions
from readiness.ssh import SshConnector

from .services.apps import write_app
from .services.cli import LiveCli
from .services.sshd import fleet_config, wait_for_no_leftovers

REPO = Path(__file__).resolve().parents[1]
CHECKS = ["environment"]


def _options(fleet: LoopbackFleet, **kw: object) -> RunOptions:
    base: dict[str, object] = {
        "known_hosts": str(fleet.known_hosts),
        "ssh_config": "",
        "connect_timeout": 5.0,
        "command_timeout": 2.0,
        "host_deadline": 30.0,
        "progress": False,
    }
    return RunOptions(**{**base, **kw})  # type: ignore[arg-type]


def test_hung_python_and_forced_command_are_hung_up_after_a_command_timeout(
    hostile_fleet: LoopbackFleet,
) -> None:
    t0 = time.monotonic()
    report = validate(
        "fleet", CHECKS, inventory=str(hostile_fleet.inventory), options=_options(hostile_fleet)
    )
    assert time.monotonic() - t0 < 15
    by_host = {h.host: h for h in report.hosts}
    assert by_host["h0000"].status is not Status.ERROR
    for name in ("h0001", "h0002"):
        assert by_host[name].status is Status.ERROR
        assert "timed out" in by_host[name].results[0].message
    assert "Python never started" in by_host["h0001"].results[0].message
    assert wait_for_no_leftovers(hostile_fleet) == {}


def test_hung_hosts_are_hung_up_at_their_host_deadline(hostile_fleet: LoopbackFleet) -> None:
    options = _options(hostile_fleet, command_timeout=60.0, host_deadline=2.0)
    t0 = time.monotonic()
    report = validate("fleet", CHECKS, inventory=str(hostile_fleet.inventory), options=options)
    assert time.monotonic() - t0 < 15
    statuses = {h.host: h.status for h in report.hosts}
    assert statuses["h0001"] is Status.UNREACHABLE
    assert statuses["h0002"] is Status.UNREACHABLE
    assert "deadline" in report.hosts[1].reason
    assert wait_for_no_leftovers(hostile_fleet) == {}


def test_a_hung_command_started_by_the_probe_dies_with_it(hostile_fleet: LoopbackFleet) -> None:
    """The probe's commands run in their own sessions: the hang-up alone would miss them."""
    from readiness.collect import run_probe

    connector = SshConnector(_options(hostile_fleet))
    healthy = next(h for h in _hosts(hostile_fleet) if h.name == "h0000")
    transport = connector.open(healthy)
    try:
        with pytest.raises(Exception, match="timed out"):
            run_probe(
                transport,
                {"smoke": {"op": "run", "argv": ["sleep", "1000"], "timeout": 1000}},
                timeout_s=1,
            )
    finally:
        transport.close()
    assert wait_for_no_leftovers(hostile_fleet) == {}


# The window a hang-up must not miss: a command forked (in its own session) whose exec
# Popen still waits for, so its PID is not yet among the groups the bootstrap kills. It
# lasts a few milliseconds; this patch holds it open (after the real fork) until the test
# hangs up.
_SLOW_START = """\
import subprocess, time as _t
_fork = subprocess._fork_exec
def _held(*args, **kw):
    pid = _fork(*args, **kw)
    open(%r, "w").write(str(pid))
    _t.sleep(60)
    return pid
subprocess._fork_exec = _held
"""


def test_a_hang_up_while_a_command_is_being_started_ends_that_command_too(
    hostile_fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """Before: the command forked in that window escaped the hang-up and ran on, orphaned
    in its own session (the probe killed only the groups it had registered)."""
    import marshal
    import threading

    from readiness.collect import probe_source, run_bootstrapped

    started = hostile_fleet.hosts[0].dir / "started.pid"
    started.unlink(missing_ok=True)
    source = (_SLOW_START % str(started)).encode() + probe_source()
    payload = marshal.dumps({"facts": {"smoke": {"op": "run", "argv": ["sleep", "387"]}}}, 4)
    connector = SshConnector(_options(hostile_fleet))
    healthy = next(h for h in _hosts(hostile_fleet) if h.name == "h0000")
    transport = connector.open(healthy)

    def run() -> None:
        with contextlib.suppress(Exception):  # hung up: no answer is the expected outcome
            run_bootstrapped(transport, source, payload, timeout_s=60)

    runner = threading.Thread(target=run, daemon=True)
    try:
        runner.start()
        deadline = time.monotonic() + 30
        while not (started.exists() and started.read_text()):
            assert time.monotonic() < deadline, "the command was never forked"
            time.sleep(0.05)
        child = int(started.read_text())
    finally:
        transport.close()  # the hang-up, inside the window
    runner.join(10)
    left = wait_for_no_leftovers(hostile_fleet)
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGKILL)  # what the old code left behind
    assert left == {}


def _hosts(fleet: LoopbackFleet) -> list[object]:
    from readiness.inventory import load_inventory

    return list(load_inventory(fleet.inventory).select("fleet"))


# --- Ctrl-C and SIGTERM through the command a user types -----------------------------------


@pytest.fixture(scope="module")
def thirty_hosts() -> object:
    """30 hosts; every third one (10 in all) has a python3 that hangs."""

    def setup(index: int, host: object) -> None:
        if index % 3 == 1:
            hang_python(host)  # type: ignore[arg-type]

    fleet = start_fleet(30, app_writer=lambda _i, root: write_app(root), host_setup=setup)
    try:
        yield fleet
    finally:
        for pids in fleet.leftovers().values():
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        fleet.stop()


# The hung hosts' own end: the run gives them up at the command timeout (the host deadline
# is as long); until then only the signal can end them. Every wait below is bounded by that
# moment, the code's own deadline, not by a guess at how slow a loaded machine is: past it,
# what these tests prove (the signal, not a deadline, ended the hung hosts) could no longer
# be told apart, so waiting longer would prove nothing more.
HUNG_FOR_S = 200.0


class _Run:
    """``readiness validate`` over the fleet as a user runs it (``LiveCli``), with progress
    lines a test can wait on, and the moment its hung hosts would end by themselves."""

    def __init__(self, fleet: LoopbackFleet, tmp_path: Path, *extra: str) -> None:
        config = fleet_config(
            fleet,
            tmp_path / "invoke.yaml",
            connect_timeout=5,
            command_timeout=HUNG_FOR_S,
            host_deadline=HUNG_FOR_S,
            progress_interval=0.1,  # "[readiness] 20/30 done, ..." lines
        )
        args = ["-f", str(config), "validate", "-i", str(fleet.inventory), "--hosts", "fleet"]
        self.fleet = fleet
        self.cli = LiveCli([*args, "--check", "environment", *extra], cwd=tmp_path)
        # no probe starts before the command does: none of them times out before this
        self.hung_until = time.monotonic() + HUNG_FOR_S

    def left(self) -> float:
        """Seconds until a hung host could end by itself (a test failure once none are)."""
        left = self.hung_until - time.monotonic()
        assert left > 0, "the hung hosts' own command timeout came first: nothing to tell"
        return left

    def wait_until_hanging(self, count: int) -> None:
        while len(self.fleet.leftovers()) < count:
            assert self.left(), "the hanging hosts never started their probes"
            time.sleep(0.1)

    def cpu_s_until_exit(self) -> float:
        """The controller's CPU seconds (all threads) when it has exited: read from its
        zombie, before it is reaped (bounded by the hung hosts' own end)."""
        stat = Path(f"/proc/{self.cli.proc.pid}/stat")
        while True:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                return _cpu_s(fields)
            assert self.left()
            time.sleep(0.01)


def _cpu_s(fields: list[str]) -> float:
    """utime + stime of a /proc/PID/stat (the fields after the command name), in seconds."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_s_now(pid: int) -> float:
    return _cpu_s(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split())


def _quiet() -> bool:
    """No more runnable work than CPUs (the 1-minute load average): the 2 s was measured so."""
    return os.getloadavg()[0] <= (os.cpu_count() or 1)


@pytest.mark.timeout(360)  # module fleet start-up plus waits bounded by HUNG_FOR_S
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_writes_the_partial_report_in_two_seconds_and_leaves_nothing_on_hosts(
    thirty_hosts: LoopbackFleet, tmp_path: Path, sig: int, code: int
) -> None:
    fleet = thirty_hosts
    saved = tmp_path / "report.json"
    saved.write_text('{"previous": true}\n')
    run = _Run(fleet, tmp_path, "--json", "--save", str(saved))
    cli = run.cli
    try:
        run.wait_until_hanging(10)
        cli.wait_for_stderr(r"\b20/30 done\b", within=run.left())  # the 20 healthy hosts
        quiet = _quiet()
        cpu_before = _cpu_s_now(cli.proc.pid)
        sent = time.monotonic()
        cli.proc.send_signal(sig)
        cpu_after = run.cpu_s_until_exit() - cpu_before
        took = time.monotonic() - sent
        out, err = cli.finish(within=run.left())
        quiet = quiet and _quiet()
    finally:
        cli.close()
    assert cli.proc.returncode == code, err
    # Ended by the signal: before any hung host could have ended by itself, having done
    # less than 2 s of work on the way out (CPU: the same on a loaded machine) ...
    assert sent + took < run.hung_until
    assert cpu_after < 2.0, f"{cpu_after:.2f}s of CPU after the signal"
    # ... and in the promised 2 s of wall time when the machine is not overloaded (when it
    # is, waiting for a CPU is not readiness' time; the 1-minute load average lags a burst)
    assert took < 2.0 or not quiet, f"exit {took:.2f}s after the signal on a quiet machine"
    assert "Traceback" not in err
    doc = json.loads(out)
    assert json.loads(saved.read_text()) == doc  # the partial report replaced the old file
    assert doc["interrupted"] is True
    assert doc["exit_code"] == code
    statuses = [h["status"] for h in doc["hosts"]]
    assert len(statuses) == 30
    assert statuses.count("interrupted") == 10
    assert all(s != "interrupted" for i, s in enumerate(statuses) if i % 3 != 1)
    assert doc["summary"]["interrupted"] == 10  # one check per host
    assert wait_for_no_leftovers(fleet) == {}


def test_a_second_ctrl_c_while_saving_leaves_a_whole_report_file(
    thirty_hosts: LoopbackFleet, tmp_path: Path
) -> None:
    fleet = thirty_hosts
    saved = tmp_path / "report.json"
    saved.write_text('{"previous": true}\n')
    run = _Run(fleet, tmp_path, "--json", "--save", str(saved))
    cli = run.cli
    try:
        run.wait_until_hanging(10)
        cli.proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
        cli.proc.send_signal(signal.SIGINT)
        _out, err = cli.finish(within=run.left())
        assert time.monotonic() < run.hung_until  # the signals ended it, not a timeout
    finally:
        cli.close()
    assert cli.proc.returncode == 130, err
    assert "Traceback" not in err
    doc = json.loads(saved.read_text())  # the old file or the new one: never half of one
    assert doc == {"previous": True} or doc["interrupted"] is True
    assert not list(tmp_path.glob(".report.json.*"))  # no temporary file left behind
    assert wait_for_no_leftovers(fleet) == {}


def test_the_transport_layer_never_imports_the_runner_that_drives_it() -> None:
    """ssh.py and transport.py get HostLike, Connector and their settings from transport."""
    import ast

    for module in ("ssh.py", "transport.py", "collect.py"):
        tree = ast.parse((REPO / "readiness" / module).read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module is not None
        }
        assert "runner" not in imported, module


def test_run_options_hand_each_layer_only_its_own_settings() -> None:
    from readiness.collect import ProbeSettings
    from readiness.runner import FleetSettings
    from readiness.transport import ConnectionSettings

    options = RunOptions(forks=4, connect_timeout=3, command_timeout=7, sudo=True, quiet=True)
    assert options.connection == ConnectionSettings(connect_timeout=3)
    assert options.probe == ProbeSettings(command_timeout=7, sudo=True)
    assert options.fleet == FleetSettings(forks=4, quiet=True)
    assert SshConnector(options).options == options.connection


def test_a_server_that_refuses_a_pty_is_still_audited_without_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pty request is not waited for (the exec follows at once): its refusal must
    leave the channel open, the command run without a pty, and say so once."""

    def no_tty(_index: int, host: object) -> None:
        host.sshd_lines.append("PermitTTY no")  # type: ignore[attr-defined]

    fleet = start_fleet(1, app_writer=lambda _i, root: write_app(root), host_setup=no_tty)
    try:
        options = _options(fleet, command_timeout=20.0)
        connector = SshConnector(options)
        report = validate(
            "fleet", CHECKS, inventory=str(fleet.inventory), options=options, connector=connector
        )
        assert report.hosts[0].status not in (Status.ERROR, Status.UNREACHABLE), report.hosts[0]
        assert connector.stats.commands["h0000"] == 1  # the refused pty cost no extra command
        warned = [r for r in caplog.records if "refuses a pty" in r.getMessage()]
        assert len(warned) == 1
    finally:
        fleet.stop()


@pytest.mark.parametrize("permit_tty", [True, False])
def test_the_pty_request_is_pipelined_with_the_exec_either_way(permit_tty: bool) -> None:
    """pty-req and exec go back to back: granted, the command sees a terminal; refused
    (PermitTTY no), it runs on the same channel without one, its input ends, and the
    next command does not ask again."""
    from readiness.inventory import load_inventory
    from readiness.ssh import SshTransport

    def setup(_index: int, host: object) -> None:
        if not permit_tty:
            host.sshd_lines.append("PermitTTY no")  # type: ignore[attr-defined]

    fleet = start_fleet(1, host_setup=setup)
    try:
        host = load_inventory(fleet.inventory).select("fleet")[0]
        transport = SshConnector(_options(fleet, command_timeout=20.0)).open(host)
        assert isinstance(transport, SshTransport)
        try:
            for _ in range(2):
                res = transport.run(["sh", "-c", "tty; test -t 0 || cat"], stdin=b"", timeout=15)
                out = res.stdout.decode()
                if permit_tty:
                    assert out.startswith("/dev/pts/"), out
                else:
                    assert "not a tty" in out, out
                if not permit_tty:  # no terminal: the input ends, so cat does
                    res = transport.run(["cat"], stdin=b"abc", timeout=15)
                    assert res.stdout == b"abc" and res.exit_code == 0
            assert transport.pty is permit_tty
            assert transport.stats.commands[host.name] == (2 if permit_tty else 4)
        finally:
            transport.close()
    finally:
        fleet.stop()
