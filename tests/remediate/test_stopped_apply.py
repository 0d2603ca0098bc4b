"""Fixes undone over real SSH as root: an apply that does not finish in time, and a revert
that meets a file someone else changed after the fix.

The host's `crontab` is a stand-in first on the session's PATH (`-l` answers "no
crontab", anything else hangs), so the backup fix creates its directory and then hangs
in `crontab -`: past the applier's deadline, or when the controller hangs up (the host's
deadline), what the fix already changed must be put back and the report must say so.
No real crontab is touched. Its `python3` is a stand-in too, counting its runs and
sleeping on the run numbered in `slow-at` ("N [SECONDS]", 2 s by default; none when
the file says 0).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from readiness.loopback import LoopbackFleet, LoopbackHost, start_fleet

from ..services.apps import write_app
from ..services.cli import LiveCli, run_cli
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
    count, slow = host.dir / "count", host.dir / "slow-at"
    python = shim.parent / "python3"
    python.write_text(
        "#!/bin/sh\n"
        f"n=$(($(cat {count} 2>/dev/null || echo 0) + 1)); echo $n > {count}\n"
        f'at=$(cut -d" " -f1 {slow} 2>/dev/null); s=$(cut -s -d" " -f2 {slow} 2>/dev/null)\n'
        '[ "$n" = "$at" ] && sleep "${s:-2}"\n'
        'exec /usr/bin/python3 "$@"\n'
    )
    python.chmod(0o755)
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


@pytest.mark.timeout(120)
def test_a_revert_never_overwrites_what_someone_else_wrote_after_the_fix(
    cron_hangs: LoopbackFleet, tmp_path: Path
) -> None:
    """`readiness remediate -c environment --apply` whose fix is then reverted (the running
    service's own environment overrides the env file), while the app writes its env file
    between the fix and the revert (the host's `python3` holds the re-audit for 2 s).
    Before, the revert wrote the snapshot back over the whole file: the app's new line was
    lost, and the report said "the snapshot was restored". Now a file that no longer holds
    what the fix wrote is left as it is, and the report says so and names the backup."""
    host = cron_hangs.hosts[0]
    root = host.app_root
    write_app(root, env={"MAHAVISHNU_AUTH__SECRET": "changeme"})
    env_file = root / ".env"
    for stale in root.glob(".env.readiness-bak.*"):
        stale.unlink()
    service = subprocess.Popen(
        ["sleep", "120"],
        env={"MAHAVISHNU_AUTH__SECRET": "changeme", "PATH": "/usr/bin:/bin"},
        start_new_session=True,
    )
    (host.dir / "count").write_text("0\n")
    (host.dir / "slow-at").write_text("4\n")  # 1 audit, 2 read, 3 apply, 4 re-audit, 5 revert
    try:
        (root / "run").mkdir(exist_ok=True)
        (root / "run" / "app.pid").write_text(f"{service.pid}\n")
        profile = {
            "app_root": str(root),
            "pidfile": "run/app.pid",
            "env_file_in_process_env": False,
        }
        inv = write_inventory(
            tmp_path / "inv.yml", {host.name: host_entry(cron_hangs, host, readiness=profile)}
        )
        args = ["remediate", "-i", str(inv), "-H", host.name, "-c", "environment", "--apply"]
        args += ["-q", "--store", "none", "--known-hosts", str(cron_hangs.known_hosts)]
        args += ["--audit-log", str(tmp_path / "a.jsonl")]
        cli = LiveCli(args, cwd=tmp_path, env={**os.environ, "HOME": str(cron_hangs.root / "home")})
        try:
            deadline = time.monotonic() + 60
            while (host.dir / "count").read_text().strip() != "4":
                assert time.monotonic() < deadline, "the re-audit never started"
                time.sleep(0.02)
            assert b"MAHAVISHNU_AUTH__SECRET=changeme" not in env_file.read_bytes()  # fixed
            with env_file.open("a") as f:  # the app writes its file meanwhile
                f.write("APP_ADDED_LATER=1\n")
            out, err = cli.finish(within=60)
        finally:
            cli.close()
    finally:
        (host.dir / "slow-at").write_text("0\n")
        service.kill()
        service.wait(timeout=10)
    assert cli.proc.returncode == 1, out + err
    assert "APP_ADDED_LATER=1" in env_file.read_text(), "the revert overwrote the app's write"
    assert "the snapshot was restored" not in out, out
    # a refusal to overwrite the app's newer content, said as such, with what to do
    assert "restore failed" not in out, out
    assert f"not restored, newer content kept: {env_file} changed since this fix wrote it; " in out
    assert "merge by hand, then re-run remediate" in out, out
    backups = list(root.glob(".env.readiness-bak.*"))
    assert len(backups) == 1 and str(backups[0]) in out, out
    assert b"MAHAVISHNU_AUTH__SECRET=changeme" in backups[0].read_bytes()


@pytest.mark.timeout(120)
def test_a_host_given_up_while_its_fix_is_verified_says_the_change_may_stay(
    cron_hangs: LoopbackFleet, tmp_path: Path
) -> None:
    """`--host-deadline 4` lands in the re-audit that verifies an applied fix (the host's
    `python3` holds it for 20 s): the applier had finished, so nothing on the host undoes
    the change any more. The report and the audit log must not claim the applier undoes it
    (what a fix cut short while being applied gets): they say the change may stay,
    unverified, and name its backup."""
    host = cron_hangs.hosts[0]
    root = host.app_root
    write_app(root, env={"MAHAVISHNU_AUTH__SECRET": None})
    for stale in root.glob(".env.readiness-bak.*"):
        stale.unlink()
    (host.dir / "count").write_text("0\n")
    (host.dir / "slow-at").write_text("4 20\n")  # 1 audit, 2 read, 3 apply, 4 re-audit
    inv = write_inventory(
        tmp_path / "inv.yml",
        {host.name: host_entry(cron_hangs, host, readiness={"app_root": str(root)})},
    )
    try:
        res = run_cli(
            "remediate", "-i", str(inv), "-H", host.name, "-c", "environment", "--apply",
            "-q", "--store", "none", "--known-hosts", str(cron_hangs.known_hosts),
            "--audit-log", str(tmp_path / "a.jsonl"), "--host-deadline", "4",
            env={**os.environ, "HOME": str(cron_hangs.root / "home")},
        )  # fmt: skip
    finally:
        (host.dir / "slow-at").write_text("0\n")
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    log = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [(e["check"], e["outcome"]) for e in log] == [("environment", "failed")], log
    message = log[0]["message"]
    backups = list(root.glob(".env.readiness-bak.*"))
    assert len(backups) == 1, out
    assert message.startswith(
        "host deadline of 4s exceeded after the fix was applied, before it was verified; the "
        f"host was hung up, so the change may stay on the host unverified (backups: {backups[0]})"
    ), message
    assert "The applier undoes" not in message
    assert message in out
    assert wait_for_no_leftovers(cron_hangs, within=30) == {}
