"""`readiness bench --engine celery --workers N`: a real run, small enough for CI.

The numbers in docs/distributed.md come from the same command on 100 hosts; here it must
run end to end (fleet, redis-server, workers), agree with the local run row for row, and
leave nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.ssh


def _processes_under(root: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if str(root) in str((proc / "cwd").readlink()):
                    found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


@pytest.mark.timeout(180)
def test_bench_engine_celery_measures_local_and_each_worker_count(tmp_path: Path) -> None:
    res = subprocess.run(
        [
            str(BIN / "readiness"),
            "bench",
            "--engine=celery",
            "--workers=1,2",
            "--hosts=4",
            "--check=environment",
        ],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=170,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [
        line.split() for line in res.stdout.splitlines() if line.startswith(("local", "celery"))
    ]
    assert [(r[0], r[1]) for r in rows] == [("local", "-"), ("celery", "1"), ("celery", "2")]
    assert all(r[-1] == "yes" for r in rows)  # rows equal to the local run's
    assert all(float(r[3]) > 0 for r in rows)  # hosts/s
    # nothing left: no worker, no redis-server (both ran with their cwd under tmp_path)
    assert _processes_under(tmp_path) == []


def test_bench_workers_must_be_counts() -> None:
    res = subprocess.run(
        [str(BIN / "readiness"), "bench", "--engine=celery", "--workers=1,x"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert res.returncode == 2
    assert (
        res.stderr.strip()
        == "readiness: --workers: expected worker counts 1..16 like 1,2,4, got 'x'"
    )
