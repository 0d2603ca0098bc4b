"""readiness.progress: the live tty line, plain lines for CI logs, the summary line."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from readiness.loopback import LoopbackFleet
from readiness.model import Status
from readiness.progress import Progress, remediation_wording
from readiness.runner import RunOptions

from .services.cli import local_inventory, run_cli
from .services.sshd import fleet_config


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_has_done_total_not_ready_unreachable_elapsed_eta_and_the_slowest_host() -> None:
    clock = Clock()
    progress = Progress(["a", "b", "c", "d"], io.StringIO(), mode="plain", clock=clock)
    progress.started(0)
    clock.now += 1
    progress.started(1)
    progress.started(2)
    clock.now += 3
    progress.finished(1, Status.NOT_READY)
    progress.finished(2, Status.UNREACHABLE)
    clock.now += 2
    assert progress.line() == (
        "[readiness] 2/4 done, 1 not ready, 1 unreachable, 6s elapsed, ETA 6s, waiting on a (6s)"
    )


def test_without_a_tty_a_plain_line_comes_every_interval_and_not_more_often() -> None:
    clock, out = Clock(), io.StringIO()
    progress = Progress(["a", "b"], out, mode="plain", interval=10.0, clock=clock)
    for _ in range(50):  # the fleet loop ticks 20 times a second
        clock.now += 0.05
        progress.tick()
    assert out.getvalue() == ""
    clock.now += 8
    progress.tick()
    assert out.getvalue().count("\n") == 1
    assert "\r" not in out.getvalue()


def test_on_a_tty_the_line_is_redrawn_in_place_and_cleared_at_the_end() -> None:
    clock, out = Clock(), Tty()
    progress = Progress(["a", "b"], out, mode="tty", clock=clock)
    clock.now += 1
    progress.tick()
    progress.close()
    text = out.getvalue()
    assert text.startswith("\r[readiness] 0/2 done") and "\n" not in text
    assert text.endswith("\r\x1b[K")


def test_the_mode_follows_the_terminal_and_quiet_turns_it_off() -> None:
    hosts = [type("H", (), {"name": n})() for n in ("a", "b")]
    assert Progress.for_run(hosts, RunOptions(), Tty()).mode == "tty"
    assert Progress.for_run(hosts, RunOptions(), io.StringIO()).mode == "plain"
    assert Progress.for_run(hosts, RunOptions(quiet=True), Tty()).mode == "off"
    assert Progress.for_run(hosts, RunOptions(progress=False), Tty()).mode == "off"
    assert Progress.for_run(hosts[:1], RunOptions(), Tty()).mode == "off"  # one host: no line
    assert Progress.for_run(hosts, RunOptions(progress_interval=3), io.StringIO()).interval == 3


def test_the_summary_line_is_printed_even_when_quiet() -> None:
    out = io.StringIO()
    progress = Progress(["a", "b", "c"], out, mode="off", clock=Clock())
    progress.summary([Status.READY, Status.INTERRUPTED, Status.READY], "SIGTERM")
    assert out.getvalue() == (
        "[readiness] 3 hosts in 0s (interrupted by SIGTERM): 2 ready, 1 interrupted\n"
    )


def test_a_run_inside_another_prints_no_summary_line_unless_interrupted() -> None:
    """bench's measured runs printed `[readiness] 2 hosts in 0s: ...` once per run."""
    hosts = [type("H", (), {"name": n})() for n in ("a", "b")]
    out = io.StringIO()
    inner = Progress.for_run(hosts, RunOptions(progress=False, quiet=True), out)
    inner.summary([Status.READY, Status.READY])
    assert out.getvalue() == ""
    inner.summary([Status.READY, Status.INTERRUPTED], "SIGINT")  # a stop is always said
    assert "interrupted by SIGINT" in out.getvalue()
    quiet = Progress.for_run(hosts, RunOptions(quiet=True), out := io.StringIO())
    quiet.summary([Status.READY, Status.READY])
    assert out.getvalue().startswith("[readiness] 2 hosts in ")


def test_remediation_lines_say_what_happened_not_how_ready_hosts_are() -> None:
    out = io.StringIO()
    clock = Clock()
    applied = Progress(["a", "b", "c"], out, clock=clock, wording=remediation_wording(True))
    applied.finished(0, Status.NOT_READY)
    assert "1 failed, 0 unreachable" in applied.line()
    applied.summary([Status.READY, Status.NOT_READY, Status.UNREACHABLE])
    planned = Progress(["a", "b"], out, clock=clock, wording=remediation_wording(False))
    planned.summary([Status.READY, Status.NOT_READY])
    assert out.getvalue() == (
        "[readiness] remediation of 3 hosts in 0s: 1 succeeded, 1 failed, 1 unreachable\n"
        "[readiness] remediation plan for 2 hosts in 0s: 1 planned, 1 could not be planned\n"
    )


def test_a_closed_stderr_does_not_stop_the_run() -> None:
    out = io.StringIO()
    progress = Progress(["a", "b"], out, mode="plain", interval=0.0, clock=Clock())
    out.close()
    progress.tick()
    progress.summary([Status.READY, Status.READY])
    assert progress.mode == "off"


def test_a_ci_log_gets_a_plain_progress_line_while_a_hung_host_holds_the_run(
    hostile_fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """A real `readiness validate` without a terminal: periodic lines, then the summary."""
    fleet = hostile_fleet
    config = fleet_config(fleet, tmp_path / "invoke.yaml", command_timeout=2, progress_interval=0.5)
    readiness = Path(sys.executable).with_name("readiness")
    argv = [str(readiness), "-f", str(config), "validate", "--hosts", "fleet"]
    proc = subprocess.run(
        [*argv, "-c", "environment", "-i", str(fleet.inventory), "--json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = proc.stderr.splitlines()
    progress = [ln for ln in lines if " done, " in ln]
    assert progress, proc.stderr
    assert all("\r" not in ln and "\x1b" not in ln for ln in lines)
    assert "waiting on h000" in progress[-1]
    assert lines[-1].startswith("[readiness] 3 hosts in ")
    assert "2 error" in lines[-1]


def _one_long_host(
    tmp_path: Path, seconds: float, interval: float
) -> subprocess.CompletedProcess[str]:
    """`readiness validate` on one local host whose smoke workflow takes ``seconds``,
    stderr a pipe (a CI log), a plain line due every ``interval`` seconds."""
    answer = '{"state": "completed"}'
    smoke = {
        "command": ["sh", "-c", f"sleep {seconds}; echo '{answer}'"],
        "expect_state": "completed",
        "timeout_s": 60,
    }
    inventory = local_inventory(tmp_path / "inv.yml", tmp_path, smoke_workflow=smoke)
    config = tmp_path / "invoke.yaml"
    config.write_text(f"readiness:\n  progress_interval: {interval}\n")
    args = ["-f", str(config), "validate", "-i", str(inventory), "-c", "workflow_execution"]
    return run_cli(*args, cwd=tmp_path)


def test_a_ci_log_shows_a_long_run_of_one_host_is_alive(tmp_path: Path) -> None:
    """Before: a run of one host printed no progress line at all, however long it took (a
    one-host audit with a minutes-long workflow left a CI log silent), though lines for CI
    logs exist to show a long run is alive. Now its plain lines come as a fleet's do (none
    before the first interval: a short run prints nothing); the live tty line stays off."""
    res = _one_long_host(tmp_path, 2.5, interval=0.5)
    assert res.returncode in (0, 1), res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("[readiness] 0/1 done")]
    assert lines, res.stderr
    assert "waiting on local" in lines[0]
    quick = _one_long_host(tmp_path, 0, interval=60)  # done long before its first line
    assert "[readiness]" not in quick.stderr, quick.stderr
