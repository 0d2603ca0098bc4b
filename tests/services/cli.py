"""The commands a user types, run as subprocesses from this interpreter's environment, and
the one-host inventory most command-line tests audit (the local host on an app tree)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

__all__ = ["BIN", "ROOT", "LiveCli", "local_inventory", "run_cli"]

BIN = Path(sys.executable).parent  # readiness and invoke of this environment
ROOT = Path(__file__).resolve().parents[2]  # the repository: its tasks.py and ./inventories


def local_inventory(path: Path, app_root: Path | str, **profile: Any) -> Path:
    """An inventory of one host, ``local`` (``ansible_connection: local``) on ``app_root``,
    with ``profile`` keys beside ``app_root`` in its ``readiness`` variable."""
    settings = {"app_root": str(app_root), **profile}
    host = {"ansible_connection": "local", "readiness": settings}
    path.write_text(yaml.safe_dump({"all": {"hosts": {"local": host}}}), encoding="utf-8")
    return path


def validate_check(inventory: Path, check: str) -> dict[str, Any]:
    """The first host's result of a real ``readiness validate -i INVENTORY -c CHECK --format
    json`` (exit 0 or 1 expected: anything else fails the test with its stderr)."""
    res = run_cli("validate", "-i", str(inventory), "-c", check, "--format", "json")
    assert res.returncode in (0, 1), res.stdout + res.stderr
    result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
    return result


def run_cli(
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    tool: str = "readiness",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``readiness ARGS`` (or ``invoke ARGS``) as a user runs it: stdin closed, text output,
    any exit code returned (``env``: the whole environment, None: this one)."""
    return subprocess.run(
        [str(BIN / tool), *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


class LiveCli:
    """``readiness ARGS`` as a user runs it, stdout and stderr read as they come (a test
    waits for a line instead of sleeping; a full pipe never blocks the process), always
    ended and its pipes closed (``close``). ``env``: the whole environment, None: this one."""

    def __init__(
        self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "readiness"), *args],
            cwd=cwd,
            env=None if env is None else dict(env),
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
        """Send ``sig``; the seconds until the process exited (a test failure past ``within``)."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        self._wait(within, f"after {sig!r}")
        return time.monotonic() - sent

    def finish(self, within: float) -> tuple[str, str]:
        """Wait for the exit (bounded), then the rest of both streams."""
        self._wait(within, "later")
        return self.streams()

    def _wait(self, within: float, when: str) -> None:
        try:
            self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {within:.0f}s {when}: {''.join(self.err)[-2000:]}")

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
