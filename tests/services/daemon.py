"""Start a real service binary for a test and never let it outlive the test.

Shared by the Prometheus and Alertmanager fixtures (and any future one): a free
loopback port, a pidfile under a known root (``.ci/run``'s exit trap kills what a
dying pytest left behind), a bounded wait until the service says it is ready, the
log's tail in the failure message, and SIGTERM-then-SIGKILL on the way out.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from .ports import free_ports

__all__ = ["PIDFILE_ROOT", "background_service", "free_port", "stop"]

PIDFILE_ROOT = Path(tempfile.gettempdir()) / "readiness-test-services"


def free_port() -> int:
    """A loopback port nothing listens on right now, for a server to bind (:func:`free_ports`)."""
    return free_ports(1)[0]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def background_service(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    ready: Callable[[], bool],
    *,
    wait_s: float,
    poll_s: float = 0.1,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` (logging to ``workdir/<name>.log``) until ``ready()``; stop it on exit."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        PIDFILE_ROOT.mkdir(parents=True, exist_ok=True)
        pidfile = PIDFILE_ROOT / f"{name}-{proc.pid}.pid"
        pidfile.write_text(f"{proc.pid}\n")
        try:
            deadline = time.monotonic() + wait_s
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = log_path.read_text(errors="replace")[-2000:]
                    pytest.fail(f"{name} not ready within {wait_s:.0f}s:\n{tail}")
                time.sleep(poll_s)
            yield proc
        finally:
            stop(proc)
            pidfile.unlink(missing_ok=True)
