"""The backup schedule fixer's crontab path, on a real crontab of a throwaway user.

The applier runs as root on the test machine, so ``backup_cron_user`` points it at
``crontab -u <user>`` of a user created for this module (and removed afterwards):
no other crontab on the machine is read or written.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from readiness.model import Status
from readiness.remediate import remediate, render
from readiness.remediate.apply import run_applier
from readiness.remediate.plan import CrontabEntry
from readiness.transport import LocalTransport

from ...services.apps import LocalTestHost, audit_local, one, write_app
from ..helpers import tree_hash

EXISTING = b'MAILTO=""\n# nightly report, kept as it is\n15 4 * * * /usr/bin/true --report\n'


def _crontab(user: str) -> bytes | None:
    """The user's crontab as ``crontab -l`` prints it; None when there is none."""
    res = subprocess.run(["crontab", "-u", user, "-l"], capture_output=True, check=False)
    return res.stdout if res.returncode == 0 else None


def _install(user: str, data: bytes) -> None:
    subprocess.run(["crontab", "-u", user, "-"], input=data, check=True, capture_output=True)


@pytest.fixture(scope="module")
def cron_user() -> Iterator[str]:
    """A system user that exists only for this module, without home or shell."""
    name = f"rdy_{uuid.uuid4().hex[:10]}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    try:
        yield name
    finally:
        subprocess.run(["crontab", "-u", name, "-r"], capture_output=True, check=False)
        subprocess.run(["userdel", name], capture_output=True, check=True)


@pytest.fixture
def crontab_of(cron_user: str) -> Iterator[str]:
    """The throwaway user, its crontab put back byte for byte after the test."""
    before = _crontab(cron_user)
    try:
        yield cron_user
    finally:
        if before is None:
            subprocess.run(["crontab", "-u", cron_user, "-r"], capture_output=True, check=False)
        else:
            _install(cron_user, before)
        assert _crontab(cron_user) == before


def _profile(root: Path, user: str, token: str) -> dict[str, Any]:
    return {
        "app_root": str(root),
        "backup_command": f"/usr/local/bin/{token}-backup",
        "backup_schedule_pattern": f"{token}-matches-nothing",  # only the command line counts
        "backup_cron_user": user,
    }


def _remediate(profile: dict[str, Any], tmp_path: Path) -> Any:
    return remediate(
        [LocalTestHost()],
        ["backup_restore"],
        profile_overrides=profile,
        apply=True,
        audit_log=tmp_path / "audit.jsonl",
        log_stream=io.StringIO(),
    )


def test_schedule_is_added_once_to_the_users_real_crontab_keeping_its_lines(
    crontab_of: str, tmp_path: Path
) -> None:
    token = f"readiness-{uuid.uuid4().hex}"
    _install(crontab_of, EXISTING)
    root = write_app(tmp_path / "app", files={"backups/db-1.sql": "-- dump\n"})
    profile = _profile(root, crontab_of, token)
    before = one(audit_local(root, ["backup_restore"], profile))
    assert "no backup schedule found" in " ".join(before.details["warnings"])
    first = _remediate(profile, tmp_path)
    outcome = first.hosts[0].outcomes[0]
    assert outcome.outcome == "applied", render(first)
    line = f"0 2 * * * /usr/local/bin/{token}-backup"
    assert f"add to the crontab of {crontab_of}: {line}: crontab line added" in outcome.details
    assert _crontab(crontab_of) == EXISTING + line.encode() + b"\n"
    after = one(audit_local(root, ["backup_restore"], profile))
    assert after.status is Status.READY, after.message
    assert after.details["schedule"]["cron"] == [
        {"source": f"/var/spool/cron/crontabs/{crontab_of}", "line": line}
    ]
    second = _remediate(profile, tmp_path)
    assert second.hosts[0].outcomes == ()
    assert _crontab(crontab_of) == EXISTING + line.encode() + b"\n"


def test_applying_the_entry_twice_changes_the_crontab_once(crontab_of: str) -> None:
    _install(crontab_of, EXISTING)
    change = CrontabEntry("0 2 * * * /usr/local/bin/app-backup", crontab_of).request()
    request = {"op": "apply", "changes": [change]}
    first = run_applier(LocalTransport(), request, timeout_s=20)
    second = run_applier(LocalTransport(), request, timeout_s=20)
    assert (first["results"], second["results"]) == (["crontab line added"], [""])
    assert _crontab(crontab_of) == EXISTING + b"0 2 * * * /usr/local/bin/app-backup\n"


@pytest.mark.parametrize("existing", [EXISTING, None], ids=["with-a-crontab", "without-one"])
def test_reverting_the_fix_restores_the_previous_crontab_exactly(
    crontab_of: str, existing: bytes | None
) -> None:
    if existing is not None:
        _install(crontab_of, existing)
    assert _crontab(crontab_of) == existing
    change = CrontabEntry("0 2 * * * /usr/local/bin/app-backup", crontab_of).request()
    t = LocalTransport()
    applied = run_applier(t, {"op": "apply", "changes": [change]}, timeout_s=20)
    assert applied["ok"], applied
    assert (_crontab(crontab_of) or b"").endswith(b"0 2 * * * /usr/local/bin/app-backup\n")
    undo = {"op": "restore", "snapshot": applied["snapshot"], "created": applied["created"]}
    assert run_applier(t, undo, timeout_s=20)["ok"]
    assert _crontab(crontab_of) == existing


def test_a_fix_failing_after_its_crontab_change_leaves_the_crontab_as_it_was(
    crontab_of: str, tmp_path: Path
) -> None:
    _install(crontab_of, EXISTING)
    changes = [
        CrontabEntry("0 2 * * * /usr/local/bin/app-backup", crontab_of).request(),
        {"kind": "chmod", "path": str(tmp_path / "missing"), "mode": 0o600},
    ]
    answer = run_applier(LocalTransport(), {"op": "apply", "changes": changes}, timeout_s=20)
    assert not answer["ok"]
    assert "does not exist" in answer["error"]
    assert answer["restore_errors"] == []
    assert _crontab(crontab_of) == EXISTING


def test_a_crontab_user_that_could_be_read_as_an_option_is_refused(crontab_of: str) -> None:
    _install(crontab_of, EXISTING)
    change = CrontabEntry("0 2 * * * /usr/local/bin/app-backup", "-r").request()
    answer = run_applier(LocalTransport(), {"op": "apply", "changes": [change]}, timeout_s=20)
    assert not answer["ok"]
    assert "invalid crontab user name '-r'" in answer["error"]
    assert _crontab(crontab_of) == EXISTING


@pytest.fixture
def system_cron_file() -> Iterator[Path]:
    """A path in the real /etc/cron.d (system format: a user field), removed afterwards."""
    path = Path("/etc/cron.d") / f"readiness-test-{uuid.uuid4().hex[:10]}"
    assert not path.exists()
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_a_system_cron_file_gets_the_user_field_and_the_check_then_sees_the_schedule(
    tmp_path: Path, system_cron_file: Path, cron_user: str
) -> None:
    root = write_app(tmp_path / "app")
    token = uuid.uuid4().hex[:8]
    profile = {**_profile(root, cron_user, token), "backup_cron_files": [str(system_cron_file)]}
    report = _remediate(profile, tmp_path)
    outcome = report.hosts[0].outcomes[0]
    assert outcome.outcome == "applied", outcome.message
    lines = system_cron_file.read_text().splitlines()
    assert f"0 2 * * * {cron_user} /usr/local/bin/{token}-backup" in lines
    assert system_cron_file.stat().st_uid == 0  # /etc/cron.d is root's: so is the file


def test_a_system_cron_file_without_a_backup_user_is_refused_not_written(
    tmp_path: Path, system_cron_file: Path
) -> None:
    root = write_app(tmp_path / "app")
    profile = {
        "app_root": str(root),
        "backup_command": "/usr/local/bin/app-backup",
        "backup_cron_files": [str(system_cron_file)],
    }
    report = remediate(
        [LocalTestHost()],
        ["backup_restore"],
        profile_overrides=profile,
        audit_log=tmp_path / "audit.jsonl",
        log_stream=io.StringIO(),
    )
    text = render(report)
    assert f"refused: {system_cron_file} is a system cron file" in text
    assert "set backup_cron_user" in text
    assert not system_cron_file.exists()


def test_a_crontab_spool_file_is_never_edited_directly(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    profile = {
        "app_root": str(root),
        "backup_command": "/usr/local/bin/app-backup",
        "backup_cron_files": ["/var/spool/cron/crontabs/nobody"],
    }
    report = remediate(
        [LocalTestHost()],
        ["backup_restore"],
        profile_overrides=profile,
        audit_log=tmp_path / "audit.jsonl",
        log_stream=io.StringIO(),
    )
    assert "refused: /var/spool/cron/crontabs/nobody is a crontab spool file" in render(report)


def test_a_backup_command_of_several_lines_is_refused_for_a_crontab_too(
    crontab_of: str, tmp_path: Path
) -> None:
    """A real `readiness remediate -c backup_restore` with the schedule going to a crontab
    (`crontab -u`, no backup_cron_files): a backup_command holding a newline was refused only
    for cron files; for a crontab the plan promised the fix, and --apply installed its
    second line as a cron entry of its own (here: every minute) or failed on "bad minute".
    Now both the dry run and --apply refuse it in the plan (--apply exits 1) and the
    crontab is left as it was."""
    import yaml

    from ...services.cli import local_inventory, run_cli

    token = f"readiness-{uuid.uuid4().hex}"
    _install(crontab_of, EXISTING)
    root = write_app(tmp_path / "app", files={"backups/db-1.sql": "-- dump\n"})
    profile = _profile(root, crontab_of, token)
    profile["backup_command"] += f"\n* * * * * /usr/bin/true {token}-every-minute"
    inventory = local_inventory(tmp_path / "inv.yml", root)
    data = yaml.safe_load(inventory.read_text())
    data["all"]["hosts"]["local"]["readiness"].update(profile)
    inventory.write_text(yaml.safe_dump(data))
    common = ["remediate", "-i", str(inventory), "--hosts", "local", "-c", "backup_restore"]
    common += ["--store", "none", "--audit-log", str(tmp_path / "a.jsonl")]
    refusal = "refused: backup_command spans several lines; a cron entry is one line"
    dry = run_cli(*common)
    assert dry.returncode == 0 and refusal in dry.stdout, dry.stdout + dry.stderr
    assert "crontab" not in dry.stdout.replace(refusal, "")  # no crontab change is promised
    done = run_cli(*common, "--apply")
    assert done.returncode == 1 and refusal in done.stdout, done.stdout + done.stderr
    assert _crontab(crontab_of) == EXISTING


def test_a_percent_in_the_backup_command_is_escaped_so_cron_runs_all_of_it(
    crontab_of: str, tmp_path: Path
) -> None:
    """cron ends a command at an unescaped '%' (crontab(5): the rest becomes its input), and
    `date +%F` is how backup file names are usually dated. A real `readiness remediate
    --apply` wrote `... > /backups/db-$(date +%F).sql` as it was: cron ran
    `... > /backups/db-$(date +` every night, no backup was made, and the re-audit called the
    schedule in place. Now the line has `\\%`, and the check reads cron lines as cron does."""
    import yaml

    from ...services.cli import local_inventory, run_cli

    token = f"readiness-{uuid.uuid4().hex}"
    _install(crontab_of, EXISTING)
    root = write_app(tmp_path / "app", files={"backups/db-1.sql": "-- dump\n"})
    profile = _profile(root, crontab_of, token)
    profile["backup_command"] += " > /var/backups/db-$(date +%F).sql"
    inventory = local_inventory(tmp_path / "inv.yml", root)
    data = yaml.safe_load(inventory.read_text())
    data["all"]["hosts"]["local"]["readiness"].update(profile)
    inventory.write_text(yaml.safe_dump(data))
    common = ["-i", str(inventory), "--hosts", "local", "-c", "backup_restore"]
    done = run_cli(
        "remediate", *common, "--store", "none", "--audit-log", str(tmp_path / "a.jsonl"), "--apply"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    escaped = f"0 2 * * * /usr/local/bin/{token}-backup > /var/backups/db-$(date +\\%F).sql"
    assert _crontab(crontab_of) == EXISTING + escaped.encode() + b"\n"
    check = run_cli("validate", *common, "--store", "none", "--format", "json")
    result = json.loads(check.stdout)["hosts"][0]["checks"][0]
    assert result["details"]["schedule"]["sources"] == ["cron"], result

    # the line as the old fix wrote it: cron would run only up to the '%'
    _install(crontab_of, EXISTING + escaped.replace("\\%", "%").encode() + b"\n")
    check = run_cli("validate", *common, "--store", "none", "--format", "json")
    result = json.loads(check.stdout)["hosts"][0]["checks"][0]
    assert result["status"] == "degraded", result
    assert "stops at an unescaped '%'" in result["message"], result
    assert "cron" not in result["details"]["schedule"]["sources"]


def test_a_password_in_the_backup_command_stays_out_of_the_report_and_the_audit_log(
    crontab_of: str, tmp_path: Path
) -> None:
    """`readiness remediate -c backup_restore --apply --format json` installing
    `PGPASSWORD=... pg_dump` in a user's crontab: the diff was masked, but each change's
    summary ("add to the crontab of USER: 0 2 * * * PGPASSWORD=...") went unmasked into the
    JSON report's `changes` and into the audit log. Now both are masked like the diff; the
    crontab itself holds the command as given (cron must run it)."""
    from ...services.cli import local_inventory, run_cli

    password = f"Pg-Dump-Pw-{uuid.uuid4().hex[:8]}"
    token = f"readiness-{uuid.uuid4().hex}"
    root = write_app(tmp_path / "app", files={"backups/db-1.sql": "-- dump\n"})
    profile = _profile(root, crontab_of, token)
    profile["backup_command"] = f"PGPASSWORD={password} /usr/local/bin/{token}-backup"
    profile.pop("app_root")
    inv = local_inventory(tmp_path / "inv.yml", root, **profile)
    log = tmp_path / "audit.jsonl"
    res = run_cli(
        "remediate", "-i", str(inv), "-c", "backup_restore", "--apply", "--format", "json",
        "--audit-log", str(log),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    changes = json.loads(res.stdout)["hosts"][0]["fixes"][0]["changes"]
    assert [c for c in changes if f"PGPASSWORD=*** /usr/local/bin/{token}-backup" in c], changes
    assert password not in res.stdout + res.stderr
    assert password not in log.read_text()
    assert password.encode() in (_crontab(crontab_of) or b"")


def test_a_crontab_that_does_not_answer_fails_the_fix_and_undoes_all_of_it(
    tmp_path: Path,
) -> None:
    """`readiness remediate -c backup_restore --apply` where `crontab -` hangs (a stuck
    spool lock, an NFS spool): the applier's 10 s timeout escaped as a traceback, so the
    snapshot was never restored - the backup directory created just before stayed - and the
    report and the audit log showed a Python traceback. Now the fix fails with one line and
    is undone like any failed change. (A stand-in `crontab` first on PATH: `-l` answers,
    anything else hangs; no real crontab is touched.)"""
    from ...services.cli import local_inventory, run_cli

    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\nfor a in "$@"; do [ "$a" = -l ] && { echo "no crontab" >&2; exit 1; }; done\n'
        "exec sleep 60\n"
    )
    fake.chmod(0o755)
    root = write_app(tmp_path / "app")
    inv = local_inventory(tmp_path / "inv.yml", root, backup_command="/usr/local/bin/app-backup")
    log = tmp_path / "audit.jsonl"
    before = tree_hash(root)
    res = run_cli(
        "remediate", "-i", str(inv), "-c", "backup_restore", "--apply", "--audit-log", str(log),
        env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    assert "backup_restore: failed" in res.stdout, res.stdout
    assert "crontab" in res.stdout and "did not finish within 10 s" in res.stdout, res.stdout
    assert "Traceback" not in res.stdout + res.stderr + log.read_text()
    assert tree_hash(root) == before
    assert not (root / "backups").exists()
