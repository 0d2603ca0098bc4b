"""An apply that does not finish in time, over real SSH as root: the applier undoes the fix.

The host's `crontab` is a stand-in first on the session's PATH (`-l` answers "no
crontab", anything else hangs), so the backup fix creates its directory and then hangs
in `crontab -`: past the applier's deadline, or when the controller hangs up (the host's
deadline), what the fix already changed must be put back and the report must say so.
No real crontab is touched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness.loopback import LoopbackFleet, LoopbackHost, start_fleet

from ..services.apps import write_app
from ..services.cli import run_cli
from ..services.sshd import host_entry, wait_for_no_leftovers, write_inventory
from .helpers import tree_hash

pytestmark = pytest.mark.ssh

_HANGING_CRONTAB = (
    '#!/bin/sh\nfor a in "$@"; do [ "$a" = -l ] && { echo "no crontab" >&2; exit 1; }; done\n'
    "exec sleep 60\n"
)


def _hanging_crontab(_index: int, host: LoopbackHost) -> None:
    shim = host.dir / "cron-bin" / "crontab"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text(_HANGING_CRONTAB)
    shim.chmod(0o755)
    host.env["PATH"] = f"{shim.parent}:/usr/local/bin:/usr/bin:/bin"


@pytest.fixture(scope="module")
def cron_hangs() -> Iterator[LoopbackFleet]:
    with start_fleet(
        1, app_writer=lambda _i, root: write_app(root) and None, host_setup=_hanging_crontab
    ) as fleet:
        yield fleet


def _run(fleet: LoopbackFleet, tmp_path: Path, *args: str) -> tuple[int, str, list[dict]]:
    host = fleet.hosts[0]
    shutil.rmtree(host.app_root / "backups", ignore_errors=True)
    profile = {
        "app_root": str(host.app_root),
        "backup_command": "/usr/local/bin/app-backup",
        "backup_cron_user": "nobody",  # the stand-in's crontab: nothing real is written
    }
    inv = write_inventory(
        tmp_path / "inv.yml", {host.name: host_entry(fleet, host, readiness=profile)}
    )
    log = tmp_path / "audit.jsonl"
    res = run_cli(
        "remediate", "-i", str(inv), "-H", host.name, "-c", "backup_restore", "--apply",
        "-q", "--store", "none", "--known-hosts", str(fleet.known_hosts),
        "--audit-log", str(log), *args,
        env={**os.environ, "HOME": str(fleet.root / "home")},
    )  # fmt: skip
    entries = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return res.returncode, res.stdout + res.stderr, entries


@pytest.mark.timeout(120)
def test_an_apply_past_the_appliers_deadline_is_undone_and_the_report_says_what_was(
    cron_hangs: LoopbackFleet, tmp_path: Path
) -> None:
    """`--command-timeout 4`: the applier's deadline passes while `crontab -` hangs. Before,
    the bootstrap's deadline ended the applier at once: the backup directory the fix had
    just made stayed, and the report said only "applier timed out after 4s". Now the
    applier stops, removes what the fix made, and the report names the step it stopped in
    and what it undid."""
    host = cron_hangs.hosts[0]
    before = tree_hash(host.app_root)
    code, out, log = _run(cron_hangs, tmp_path, "--command-timeout", "4")
    assert code == 1, out
    assert not (host.app_root / "backups").exists(), out
    assert tree_hash(host.app_root) == before
    assert [e["outcome"] for e in log] == ["failed"], log
    message = log[0]["message"]
    assert message.startswith(
        "the applier stopped: its deadline of 4 s passed during `add to the crontab of nobody"
    ), message
    assert (
        f"everything this fix had changed was undone (removed {host.app_root}/backups)" in message
    )
    assert message in out
    assert wait_for_no_leftovers(cron_hangs) == {}


@pytest.mark.timeout(120)
def test_an_apply_hung_up_at_the_host_deadline_is_undone_on_the_host(
    cron_hangs: LoopbackFleet, tmp_path: Path
) -> None:
    """`--host-deadline 4`: the controller hangs up while `crontab -` hangs. Before, the
    hang-up ended the applier at once and the backup directory stayed, while the report
    said "unreachable: host deadline of 4s exceeded / nothing was audited or changed" and
    the audit log had no line. Now the applier undoes the fix before it exits, and the
    report and the log name the fix that was cut short and say to re-audit."""
    host = cron_hangs.hosts[0]
    before = tree_hash(host.app_root)
    code, out, log = _run(cron_hangs, tmp_path, "--command-timeout", "30", "--host-deadline", "4")
    assert code == 1, out
    assert "unreachable: host deadline of 4s exceeded, after remediation began" in out
    assert "nothing was audited or changed" not in out
    assert [(e["check"], e["outcome"]) for e in log] == [("backup_restore", "failed")], log
    assert log[0]["message"].startswith(
        "host deadline of 4s exceeded while the fix was being applied; the host was hung up. "
        "The applier undoes a fix it is stopped in, but that could not be confirmed: "
        "re-audit the host"
    ), log
    assert "backup_restore: failed" in out
    # the applier undoes the fix after the hang-up (bounded), then exits
    assert wait_for_no_leftovers(cron_hangs, within=20) == {}
    assert not (host.app_root / "backups").exists(), out
    assert tree_hash(host.app_root) == before
