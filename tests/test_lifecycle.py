"""The run lifecycle of the tasks a user types, outside validate's own fleet loop tests
(tests/test_ssh.py): a signal to ``bench``, ``watch`` and ``remediate``, and a hang-up of
the controller's terminal, leave no process, listener or temporary file behind, answer
fast, and exit 128 + the signal number.

Each test runs the real command (``readiness ...`` as a subprocess) against real sshd
hosts on loopback, and looks for what is left with the census the hosts' sessions carry
(``READINESS_LOOPBACK_HOST``) and by PID and command line on the controller.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest

from .services.cli import BIN, ROOT
from .services.load import load_scaled

pytestmark = pytest.mark.ssh


class _Command:
    """``readiness ARGS`` as a user runs it, stdout and stderr read as they come (a test
    waits for a line instead of sleeping), always ended and its pipes closed."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "readiness"), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.changed = threading.Condition()
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            with self.changed:
                lines.append(line)
                self.changed.notify_all()

    def wait_for_stderr(self, pattern: str, within: float) -> None:
        with self.changed:
            seen = self.changed.wait_for(
                lambda: any(re.search(pattern, line) for line in self.err), timeout=within
            )
        assert seen, f"no {pattern!r} on stderr within {within}s: {''.join(self.err)[-2000:]}"

    def signal_and_time_the_exit(self, sig: int, within: float) -> float:
        sent = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {within:.0f}s after {sig!r}: {''.join(self.err)[-2000:]}")
        return time.monotonic() - sent

    def streams(self) -> tuple[str, str]:
        for reader in self.readers:
            reader.join(timeout=10)
        return "".join(self.out), "".join(self.err)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for reader in self.readers:
            reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _processes_mentioning(text: str) -> list[str]:
    """Live processes whose command line holds ``text`` (an sshd given a config under it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name} {cmdline}")
    return found


def _wait_for(predicate: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {within}s"
        time.sleep(0.05)


def _bench_logins(temp: Path) -> int:
    return sum(
        log.read_text(errors="replace").count("Accepted publickey")
        for log in temp.glob("readiness-loopback/fleet-*/hosts/*/sshd.log")
    )


# --- bench -----------------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_bench_and_stops_its_loopback_fleet(
    tmp_path: Path, sig: int, code: int
) -> None:
    """Before: SIGTERM killed bench outright and left its sshd listeners and their fleet
    directory behind; SIGINT ended only the measured run it landed in, and the bench went
    on to the next one and printed its table, exit 0."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    bench = _Command(
        ["bench", "--hosts", "2", "--app", "minimal", "--rounds", "5", "--skip-ansible"],
        cwd=ROOT,
        env=env,
    )
    try:
        # The fleet is up and being measured: its sshd logs record the first logins.
        _wait_for(lambda: _bench_logins(temp) >= 2, 60, "no bench login")
        assert _processes_mentioning(str(temp / "readiness-loopback"))
        took = bench.signal_and_time_the_exit(sig, within=30)
        out, err = bench.streams()
    finally:
        bench.close()
    assert bench.proc.returncode == code, err
    assert took < load_scaled(2.0, most=20.0), f"exit {took:.2f}s after the signal"
    assert "Traceback" not in err
    assert "readiness: interrupted" in err
    assert "phase" not in out  # no table of a measurement cut short
    assert _processes_mentioning(str(temp / "readiness-loopback")) == []
    assert list((temp / "readiness-loopback").glob("fleet-*")) == []
