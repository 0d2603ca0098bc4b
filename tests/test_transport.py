"""readiness.transport: LocalTransport ends what it started when it is closed."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from readiness.collect import run_probe
from readiness.transport import LocalTransport


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
