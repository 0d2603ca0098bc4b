"""remediate runs on the one fleet loop (readiness.remediate.run): deadlines and Ctrl-C act.

Hostile hosts (tests/services/sshd.py ``hostile_fleet``): h0000 healthy, h0001 whose
python3 hangs before Python runs, h0002 whose sshd has a ForceCommand that hangs.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from readiness.loopback import LoopbackFleet
from readiness.remediate.run import remediate
from readiness.runner import RunOptions

from ..services.load import load_scaled
from ..services.sshd import wait_for_no_leftovers


def _options(fleet: LoopbackFleet, **kw: object) -> RunOptions:
    base: dict[str, object] = {
        "known_hosts": str(fleet.known_hosts),
        "ssh_config": "",
        "connect_timeout": 5.0,
        "command_timeout": 60.0,
        "host_deadline": 60.0,
        "progress": False,
    }
    return RunOptions(**{**base, **kw})  # type: ignore[arg-type]


def test_host_deadline_ends_hung_hosts_in_time_and_leaves_nothing_there(
    hostile_fleet: LoopbackFleet,
) -> None:
    t0 = time.monotonic()
    report = remediate(
        "fleet",
        inventory=str(hostile_fleet.inventory),
        options=_options(hostile_fleet, host_deadline=3.0),
    )
    assert time.monotonic() - t0 < 15
    by_host = {h.host: h for h in report.hosts}
    assert [h.host for h in report.hosts] == ["h0000", "h0001", "h0002"]
    assert by_host["h0000"].unreachable == ""
    for name in ("h0001", "h0002"):
        assert "host deadline of 3s exceeded" in by_host[name].unreachable
    assert report.exit_code == 1
    assert wait_for_no_leftovers(hostile_fleet) == {}


def test_ctrl_c_keeps_the_hosts_already_remediated(
    hostile_fleet: LoopbackFleet, tmp_path: Path
) -> None:
    config = tmp_path / "invoke.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "readiness": {
                    "known_hosts": str(hostile_fleet.known_hosts),
                    "ssh_config": "",
                    "connect_timeout": 5,
                    "command_timeout": 60,
                    "progress_interval": 0.1,  # "[readiness] 1/3 done, ..." lines
                }
            }
        )
    )
    readiness = Path(sys.executable).with_name("readiness")
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err_file:
        proc = subprocess.Popen(
            [
                str(readiness),
                "-f",
                str(config),
                "remediate",
                "-i",
                str(hostile_fleet.inventory),
                "--hosts",
                "fleet",
                "--format",
                "json",
            ],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
        )
    try:
        deadline = time.monotonic() + 60
        while len(hostile_fleet.leftovers()) < 2:  # both hung hosts are hanging now
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.1)
        # the healthy host has finished: waited for, not guessed (a loaded machine is slow)
        while not re.search(r"\b1/3 done\b", stderr.read_text()):
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.1)
        # the promised 2 s at this load, never past 8 s (inside communicate's 10 s)
        limit = load_scaled(2.0, most=8.0)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    err = stderr.read_text()
    assert proc.returncode == 130, err
    assert took < limit, f"exit {took:.2f}s after the signal (limit {limit:.1f}s at this load)"
    assert "Traceback" not in err
    doc = json.loads(out)
    assert doc["interrupted_by"] == "SIGINT"
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert hosts["h0000"]["unreachable"] is None and hosts["h0000"]["interrupted"] is None
    assert "status_before" in hosts["h0000"] and hosts["h0000"]["status_before"]
    for name in ("h0001", "h0002"):
        assert "run interrupted" in hosts[name]["interrupted"]
    assert wait_for_no_leftovers(hostile_fleet) == {}
