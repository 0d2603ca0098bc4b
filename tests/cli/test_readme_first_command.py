"""README.md, "Try it": on a fresh checkout, `examples/mahavishnu/bin/mahavishnu-demo
--daemon && .venv/bin/invoke validate` prints the text report with a mix of READY,
DEGRADED and NOT_READY and exits 1. Run on a copy of the checkout's files the command
touches (the demo writes its pidfile under examples/mahavishnu/run/)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from tests.services.cli import BIN, ROOT


def test_the_readme_first_command_audits_the_running_demo_with_a_mix_and_exits_1(
    tmp_path: Path,
) -> None:
    clone = tmp_path / "readiness"
    shutil.copytree(
        ROOT / "examples" / "mahavishnu",
        clone / "examples" / "mahavishnu",
        ignore=shutil.ignore_patterns("run", "__pycache__"),
    )
    shutil.copytree(ROOT / "inventories", clone / "inventories")
    shutil.copy2(ROOT / "tasks.py", clone / "tasks.py")
    env = {**os.environ, "READINESS_STORE": "none"}  # the README's run would record one
    env.pop("READINESS_INVENTORY", None)
    demo = clone / "examples" / "mahavishnu" / "bin" / "mahavishnu-demo"
    started = subprocess.run(
        [str(demo), "--daemon"],
        cwd=clone,
        env=env,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stderr
    pidfile = clone / "examples" / "mahavishnu" / "run" / "mahavishnu.pid"
    try:
        res = subprocess.run(
            [str(BIN / "invoke"), "validate"],
            cwd=clone,
            env=env,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
    finally:
        os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)  # the README's kill
    assert res.returncode == 1, res.stderr
    assert "PRODUCTION READINESS VALIDATION REPORT" in res.stdout
    counts = {
        name: int(n)
        for name, n in re.findall(r"^  (Ready|Degraded|Not Ready): +(\d+)", res.stdout, re.M)
    }
    assert counts.keys() == {"Ready", "Degraded", "Not Ready"}
    assert all(n > 0 for n in counts.values()), counts
    assert "✓ GRACEFUL_SHUTDOWN" in res.stdout  # the demo service was found and judged
