"""The bench over a real loopback sshd fleet: what it measures, not how fast (no timings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from readiness.bench import EXAMPLE_DIR, format_result, run_bench, write_example_app

pytestmark = pytest.mark.ssh

REPO = Path(__file__).resolve().parent.parent


def test_the_example_app_writer_copies_the_bundled_deployment(tmp_path: Path) -> None:
    write_example_app(0, tmp_path / "app")
    copied = sorted(str(p.relative_to(tmp_path / "app")) for p in (tmp_path / "app").rglob("*"))
    bundled = sorted(
        str(p.relative_to(EXAMPLE_DIR))
        for p in EXAMPLE_DIR.rglob("*")
        if "run" not in p.relative_to(EXAMPLE_DIR).parts and p.suffix != ".pyc"
    )
    assert copied == bundled
    assert (tmp_path / "app" / ".env").read_text() == (EXAMPLE_DIR / ".env").read_text()


def test_both_apps_cost_one_connection_and_one_command_per_host() -> None:
    res = run_bench(3, rounds=1, ansible=False)
    assert set(res.apps) == {"minimal", "example"}
    assert res.suite is res.apps["example"]  # the bundled example is the headline
    names = [f"h{i:04d}" for i in range(3)]
    for phase in [*res.floor, *res.apps["minimal"], *res.apps["example"]]:
        # The client's own counters and each sshd's log agree: one login per host.
        assert phase.connections == dict.fromkeys(names, 1), phase.name
        assert phase.logins == dict.fromkeys(names, 1), phase.name
        assert phase.commands == dict.fromkeys(names, 1), (phase.name, phase.commands)
        assert phase.cpu_s > 0 and phase.host_cpu_s > 0 and phase.peak_rss_mb > 0
    assert not res.problems
    assert sum(res.statuses.values()) == 3
    (extra,) = res.extra  # recording the run and writing every report format, measured
    assert extra.cpu_s > 0 and not extra.logins.get("h0000")
    text = format_result(res)
    for needle in ("floor", "suite:minimal", "suite:example", "record+reports", "ratio"):
        assert needle in text


def test_invoke_bench_reports_both_apps_and_the_ansible_reference_rows(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": os.environ.get("TMPDIR", "/tmp")}
    res = subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), "bench", "--hosts", "2"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    rows = {line.split("  ")[0].strip() for line in res.stdout.splitlines()}
    expected = {"floor", "suite:minimal", "suite:example", "ansible raw", "ansible command"}
    assert expected <= rows, res.stdout
    assert "suite:example/floor wall ratio" in res.stdout
    assert "ansible raw / suite:example wall" in res.stdout
    assert "not installed" not in res.stdout  # ansible-core is a dev dependency: CI has it
