"""Remediation over real SSH: a fleet of loopback sshd hosts with broken app trees.

This module starts its own small fleet (the session fleet's app trees must stay as
other tests expect them) and resets a host's tree at the start of each test.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness import validate
from readiness.loopback import LoopbackFleet, LoopbackHost, start_fleet
from readiness.model import Status
from readiness.remediate import remediate, render
from readiness.runner import RunOptions

from ..services.apps import BASE_SETTINGS, running_service, write_app
from ..services.ports import closed_port
from ..services.sshd import fleet_options, host_entry, write_inventory
from .helpers import tree_hash

pytestmark = pytest.mark.ssh

REPO = Path(__file__).resolve().parents[2]
FIXED = ["environment", "documentation", "error_handling", "resource_limits", "backup_restore"]
CHECKS = [*FIXED, "security_settings"]
BACKUP_PROFILE = {"backup_command": "/usr/local/bin/app-backup", "backup_cron_files": ["cron/app"]}


def _break(root: Path, **env: str | None) -> Path:
    """A tree that fails every fixable check: no JWT secret, loose .env, no docs, no resilience."""
    if root.exists():
        shutil.rmtree(root)
    settings = {k: v for k, v in BASE_SETTINGS.items() if k != "workflow_timeout"}
    write_app(
        root,
        settings_text=yaml.safe_dump(settings),
        env={"MAHAVISHNU_AUTH__SECRET": None, **env},
        files={"backups/db-1.sql": "-- dump\n"},
    )
    (root / ".env").chmod(0o644)
    return root


@pytest.fixture(scope="module")
def fleet() -> Iterator[LoopbackFleet]:
    with start_fleet(3, app_writer=lambda _i, root: _break(root) and None) as f:
        yield f


def _inventory(tmp_path: Path, fleet: LoopbackFleet, **extra: dict[str, Any]) -> str:
    hosts = {
        h.name: host_entry(
            fleet,
            h,
            readiness={"app_root": str(h.app_root), **BACKUP_PROFILE, **extra.get(h.name, {})},
        )
        for h in fleet.hosts
    }
    return str(write_inventory(tmp_path / "inventory.yml", hosts))


def _options(fleet: LoopbackFleet) -> RunOptions:
    return fleet_options(fleet, command_timeout=30.0, host_deadline=60.0)


def _remediate(fleet: LoopbackFleet, inv: str, hosts: str, tmp_path: Path, **kw: Any) -> Any:
    return remediate(
        hosts,
        kw.pop("checks", CHECKS),
        inventory=inv,
        options=_options(fleet),
        audit_log=tmp_path / "audit.jsonl",
        log_stream=io.StringIO(),
        **kw,
    )


def _statuses(fleet: LoopbackFleet, inv: str, host: str, checks: list[str]) -> dict[str, Status]:
    report = validate(host, checks, inventory=inv, options=_options(fleet))
    return {r.check_name: r.status for r in report.results}


def test_broken_host_is_remediated_over_ssh_and_becomes_ready_on_the_fixed_checks(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    target, other = fleet.hosts[0], fleet.hosts[1]
    _break(target.app_root)
    _break(other.app_root)
    other_before = tree_hash(other.app_root)
    inv = _inventory(tmp_path, fleet)
    assert set(_statuses(fleet, inv, target.name, FIXED).values()) <= {
        Status.NOT_READY,
        Status.DEGRADED,
    }
    report = _remediate(fleet, inv, target.name, tmp_path, apply=True)
    assert [h.host for h in report.hosts] == [target.name]
    outcomes = {o.fix.check: o.outcome for o in report.hosts[0].outcomes}
    assert outcomes == dict.fromkeys(CHECKS, "applied"), render(report)
    assert _statuses(fleet, inv, target.name, FIXED) == dict.fromkeys(FIXED, Status.READY)
    security = validate(target.name, ["security_settings"], inventory=inv, options=_options(fleet))
    problems = security.results[0].details.get("problems") or []
    assert not [p for p in problems if "accessible to group/others" in p]
    assert (target.app_root / ".env").stat().st_mode & 0o777 == 0o600
    assert tree_hash(other.app_root) == other_before  # outside the pattern: untouched
    log = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert {(e["host"], e["outcome"]) for e in log} == {(target.name, "applied")}
    assert report.exit_code == 0


def test_dry_run_over_ssh_changes_nothing_on_the_host(fleet: LoopbackFleet, tmp_path: Path) -> None:
    host = fleet.hosts[1]
    _break(host.app_root)
    inv = _inventory(tmp_path, fleet)
    before = tree_hash(host.app_root)
    report = _remediate(fleet, inv, host.name, tmp_path)
    assert tree_hash(host.app_root) == before
    assert {o.outcome for o in report.hosts[0].outcomes} == {"planned"}
    assert len(report.hosts[0].outcomes) == len(CHECKS)
    text = render(report)
    assert "MAHAVISHNU_AUTH__SECRET=<generated on apply: 64 chars>" in text
    assert "nothing was changed" in text
    assert not (tmp_path / "audit.jsonl").exists()


def _times(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime, ctime) in ns of every directory under ``root``: what a file made and
    removed in it changes even when the tree's contents end as they were."""
    out = {}
    for dirpath, _dirs, _files in os.walk(root):
        st = os.lstat(dirpath)
        out[dirpath] = (st.st_mtime_ns, st.st_ctime_ns)
    return out


def test_a_dry_run_and_an_audit_leave_every_directory_untouched(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """`readiness remediate` (dry run) and `readiness validate` over sshd as root, on an app
    with a backup directory and a dead letter queue: before, the write test of each made
    and removed `.readiness-write-test-*` in it, so the dry run that promises "nothing was
    changed" changed both directories' mtime and ctime, and for a moment put a file there
    (a path unit or an inotify watch on a spool directory fires on it). Now the write test
    opens an unnamed O_TMPFILE inode there, which is never linked into the directory."""
    host = fleet.hosts[2]
    root = _break(host.app_root)
    settings = yaml.safe_load((root / "settings" / "mahavishnu.yaml").read_text())
    settings["resilience"] = {"dead_letter_queue": {"enabled": True, "path": "data/dlq"}}
    (root / "settings" / "mahavishnu.yaml").write_text(yaml.safe_dump(settings))
    (root / "data" / "dlq").mkdir(parents=True)
    inv = _inventory(tmp_path, fleet)
    time.sleep(0.05)  # a change now would show in the nanosecond times
    before = _times(root)
    dry = _remediate_cli(
        fleet, tmp_path, inv, host.name, "-c", "backup_restore", "-c", "error_handling"
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "nothing was changed" in dry.stdout
    audit = _remediate_cli(fleet, tmp_path, inv, host.name, "-c", "backup_restore")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    from ..services.cli import run_cli

    res = run_cli(
        "validate", "-i", inv, "-H", host.name, "-c", "backup_restore", "-c", "error_handling",
        "--format", "json", "--store", "none", "--known-hosts", str(fleet.known_hosts),
        env={**os.environ, "HOME": str(fleet.root / "home")},
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stderr
    checks = {c["check_name"]: c for c in json.loads(res.stdout)["hosts"][0]["checks"]}
    # the directories were judged writable all the same
    assert checks["backup_restore"]["details"]["backup_dir"]["writable"] is True, checks
    dlq = checks["error_handling"]["details"]["dead_letter_queue"]["path"]
    assert dlq["writable"] is True, checks
    assert "not writable" not in json.dumps(checks)
    assert _times(root) == before
    assert not list(root.rglob(".readiness-write-test-*"))


def test_fix_that_cannot_make_its_check_pass_is_reverted_byte_identically(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """The app reads its env file itself (``env_file_in_process_env: false``) and the running
    service's own environment overrides it, so a new secret in the file cannot fix the
    check: the fix is undone and the tree is as it was."""
    host = fleet.hosts[2]
    root = _break(host.app_root, MAHAVISHNU_AUTH__SECRET="changeme")
    (root / ".env").chmod(0o600)
    env = {**os.environ, "MAHAVISHNU_AUTH__SECRET": "changeme"}
    service = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], env=env, start_new_session=True
    )
    try:
        (root / "run").mkdir()
        (root / "run" / "app.pid").write_text(f"{service.pid}\n")
        own = {"pidfile": "run/app.pid", "env_file_in_process_env": False}
        inv = _inventory(tmp_path, fleet, **{host.name: own})
        before = tree_hash(root)
        report = _remediate(fleet, inv, host.name, tmp_path, checks=["environment"], apply=True)
        outcome = report.hosts[0].outcomes[0]
        assert outcome.outcome == "reverted", render(report)
        assert "insecure default" in outcome.message
        assert tree_hash(root) == before
        assert report.exit_code == 1
        log = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
        assert [(e["check"], e["outcome"]) for e in log] == [("environment", "reverted")]
    finally:
        service.kill()
        service.wait(timeout=10)


def test_second_apply_over_ssh_is_a_noop(fleet: LoopbackFleet, tmp_path: Path) -> None:
    host = fleet.hosts[0]
    _break(host.app_root)
    inv = _inventory(tmp_path, fleet)
    first = _remediate(fleet, inv, host.name, tmp_path, apply=True)
    assert {o.outcome for o in first.hosts[0].outcomes} == {"applied"}
    before = tree_hash(host.app_root)
    second = _remediate(fleet, inv, host.name, tmp_path, apply=True)
    assert tree_hash(host.app_root) == before
    assert second.hosts[0].outcomes == ()
    text = render(second)
    assert "  - security_settings: no fixer: access control is not enabled" in text
    assert "nothing to fix" not in text
    assert second.exit_code == 0


def test_only_hosts_selected_by_the_pattern_are_touched(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    for h in fleet.hosts:
        _break(h.app_root)
    inv = _inventory(tmp_path, fleet)
    before = {h.name: tree_hash(h.app_root) for h in fleet.hosts}
    skipped: LoopbackHost = fleet.hosts[1]
    report = _remediate(
        fleet,
        inv,
        f"fleet:!{skipped.name}",
        tmp_path,
        checks=["documentation"],
        apply=True,
        yes=True,
    )
    assert [h.host for h in report.hosts] == [h.name for h in fleet.hosts if h is not skipped]
    after = {h.name: tree_hash(h.app_root) for h in fleet.hosts}
    assert after[skipped.name] == before[skipped.name]
    assert all(after[n] != before[n] for n in after if n != skipped.name)


def _invoke(fleet: LoopbackFleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "invoke"), "remediate", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(fleet.root / "home")},
        check=False,
    )


def _remediate_cli(
    fleet: LoopbackFleet, tmp_path: Path, inv: str, host: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """`readiness remediate ARGS` on one host of ``fleet``, as a user runs it: quiet, no
    store, the fleet's known_hosts, an audit log under ``tmp_path``, the fleet's HOME."""
    from ..services.cli import run_cli

    return run_cli(
        "remediate", "-i", inv, "-H", host, *args, "-q", "--store", "none",
        "--known-hosts", str(fleet.known_hosts), "--audit-log", str(tmp_path / "a.jsonl"),
        env={**os.environ, "HOME": str(fleet.root / "home")},
    )  # fmt: skip


def test_cli_refuses_to_apply_to_several_hosts_without_a_terminal_or_yes(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    for h in fleet.hosts:
        _break(h.app_root)
    inv = _inventory(tmp_path, fleet)
    before = [tree_hash(h.app_root) for h in fleet.hosts]
    common = ["--hosts", "fleet", "-i", inv, "--known-hosts", str(fleet.known_hosts)]
    refused = _invoke(fleet, *common, "--apply", "--audit-log", str(tmp_path / "a.jsonl"))
    assert refused.returncode == 2, refused.stderr
    assert "--yes" in refused.stderr
    assert [tree_hash(h.app_root) for h in fleet.hosts] == before
    dry = _invoke(fleet, *common, "-c", "documentation", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    doc = json.loads(dry.stdout)
    assert doc["mode"] == "dry-run"
    assert [h["host"] for h in doc["hosts"]] == [h.name for h in fleet.hosts]
    assert all(h["fixes"][0]["outcome"] == "planned" for h in doc["hosts"])
    assert [tree_hash(h.app_root) for h in fleet.hosts] == before


def test_a_fix_the_running_service_has_not_loaded_is_fixed_on_disk_restart_needed(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """The service manager exports the env file (the default): the new secret is in the file,
    the running process still has the old one. Not READY, not reverted: fixed on disk,
    restart needed; after a restart the check is READY."""
    host = fleet.hosts[2]
    root = _break(host.app_root, MAHAVISHNU_AUTH__SECRET="changeme")
    (root / ".env").chmod(0o600)
    inv = _inventory(tmp_path, fleet, **{host.name: {"pidfile": "run/mahavishnu.pid"}})
    with running_service(root) as (proc, _):
        before = _statuses(fleet, inv, host.name, ["environment"])
        assert before == {"environment": Status.NOT_READY}
        report = _remediate(fleet, inv, host.name, tmp_path, checks=["environment"], apply=True)
        outcome = report.hosts[0].outcomes[0]
        assert outcome.outcome == "applied", render(report)
        assert outcome.message.startswith(
            "fixed on disk, restart needed: check is DEGRADED (running with stale configuration: "
        ), outcome.message
        assert outcome.after is Status.DEGRADED
        assert "changeme" not in (root / ".env").read_text()
        text = render(report)
        assert "1 applied (1 need(s) a restart of the service)" in text
        r = validate(host.name, ["environment"], inventory=inv, options=_options(fleet))
        assert r.results[0].status is Status.DEGRADED
        assert r.results[0].details["restart_needed"] is True
        assert r.results[0].details["stale"]["differing"] == ["MAHAVISHNU_AUTH__SECRET"]
        assert proc.pid == r.results[0].details["stale"]["process"]
    with running_service(root):  # the restart: the service loads the env file again
        assert _statuses(fleet, inv, host.name, ["environment"]) == {"environment": Status.READY}
    log = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["check"], e["outcome"]) for e in log] == [("environment", "applied")]
    assert log[0]["message"].startswith("fixed on disk, restart needed")


def test_the_summary_lists_what_remains_per_host_and_why_matching_the_audit_log(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """A broken host, a clean host, and a host that cannot be reached (closed port)."""
    broken, clean = fleet.hosts[0], fleet.hosts[1]
    _break(broken.app_root)
    _remediate(fleet, _inventory(tmp_path, fleet), clean.name, tmp_path, apply=True)
    (tmp_path / "audit.jsonl").unlink()
    inv = Path(_inventory(tmp_path, fleet))
    doc = yaml.safe_load(inv.read_text())
    hosts = doc["all"]["children"]["fleet"]["hosts"]
    hosts["gone"] = {**hosts[broken.name], "ansible_port": closed_port(broken.address)}
    inv.write_text(yaml.safe_dump(doc))
    names = f"{broken.name},{clean.name},gone"
    report = _remediate(fleet, str(inv), names, tmp_path, apply=True, yes=True)
    text = render(report)
    by_host = {h.host: h for h in report.hosts}
    assert by_host["gone"].unreachable
    gone = text.split("== gone\n", 1)[1].split("\n\n", 1)[0]
    assert gone.startswith("  ? unreachable: ") and "nothing to fix" not in gone
    log = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    applied = sum(1 for e in log if e["outcome"] == "applied")
    assert applied == len(CHECKS) and {e["host"] for e in log} == {broken.name, clean.name}
    summary = text.rsplit("\n\n", 1)[1].splitlines()
    assert summary[0].startswith(f"Applied on 2 of 3 host(s): {applied} applied")
    assert summary[1] == "1 host(s) could not be remediated (unreachable or stopped): gone."
    assert "  gone: 1 unreachable" in summary
    data = json.loads(render(report, "json"))
    remaining = {h["host"]: h["remaining"] for h in data["hosts"]}
    assert [r["why"] for r in remaining["gone"]] == ["unreachable"]
    # Left on the clean host: what no fixer can do (RBAC off), listed with its reason.
    assert {(r["check"], r["why"]) for r in remaining[clean.name]} == {
        ("security_settings", "no fixer")
    }
    assert report.exit_code == 1
    # The same, as a user types it.
    res = _invoke(
        fleet,
        *("--hosts", f"{clean.name},gone", "-i", str(inv), "-c", "documentation"),
        *("--known-hosts", str(fleet.known_hosts), "--apply", "--yes"),
        *("--audit-log", str(tmp_path / "cli.jsonl")),
    )
    assert res.returncode == 1, res.stderr
    assert "== gone\n  ? unreachable: " in res.stdout
    assert "Applied on 1 of 2 host(s): 1 host(s) with nothing to fix." in res.stdout
    assert res.stdout.rstrip().endswith("Remaining:\n  gone: 1 unreachable")
    cli_log = (tmp_path / "cli.jsonl").read_text().splitlines()
    assert [json.loads(line)["host"] for line in cli_log] == [clean.name]


def test_a_new_secret_is_never_written_into_an_env_file_others_can_read(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """`readiness remediate -c environment` over sshd on a 0644 `.env`: the generated JWT
    secret went into a file every local user could read (the mode was kept as it was).
    Now the file loses the bits for others (0640), the dry run shows it, and a revert-free
    second run changes nothing."""

    host = fleet.hosts[1]
    root = _break(host.app_root)
    env_file = root / ".env"
    env_file.chmod(0o644)
    inv = _inventory(tmp_path, fleet)
    common = (fleet, tmp_path, inv, host.name, "-c", "environment")
    before = tree_hash(root)
    dry = _remediate_cli(*common)
    assert dry.returncode == 0, dry.stderr
    assert f"~ chmod 0640 {env_file} (was 0644)" in dry.stdout, dry.stdout
    assert tree_hash(root) == before
    done = _remediate_cli(*common, "--apply")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "environment: applied" in done.stdout, done.stdout
    assert env_file.stat().st_mode & 0o777 == 0o640
    assert "MAHAVISHNU_AUTH__SECRET=" in env_file.read_text()
    backups = list(root.glob(".env.readiness-bak.*"))
    assert [b.stat().st_mode & 0o777 for b in backups] == [0o600]
    again = _remediate_cli(*common, "--apply")
    assert again.returncode == 0, again.stdout + again.stderr
    assert env_file.stat().st_mode & 0o777 == 0o640
    assert len(list(root.glob(".env.readiness-bak.*"))) == 1


def test_an_existing_dead_letter_queue_directory_keeps_its_owner(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """`readiness remediate -c error_handling --apply` over sshd as root, on an app tree owned
    by `nobody` whose `data/dlq` already exists and belongs to another account (`daemon`,
    0700): the dry run promised `mkdir data/dlq` and the apply chowned that directory to the
    app's owner. Now an existing directory is neither planned nor touched."""

    host = fleet.hosts[2]
    root = _break(host.app_root)
    dlq = root / "data" / "dlq"
    dlq.mkdir(parents=True)
    for path in [root, *root.rglob("*")]:
        os.lchown(path, 65534, 65534)
    os.chown(dlq, 1, 1)
    dlq.chmod(0o700)
    inv = _inventory(tmp_path, fleet)
    common = (fleet, tmp_path, inv, host.name, "-c", "error_handling")
    dry = _remediate_cli(*common)
    assert dry.returncode == 0, dry.stderr
    assert "~ error_handling" in dry.stdout and "mkdir" not in dry.stdout, dry.stdout
    done = _remediate_cli(*common, "--apply")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error_handling: applied" in done.stdout, done.stdout
    st = dlq.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1, 1, 0o700)
    assert "dead_letter_queue" in (root / "settings" / "mahavishnu.yaml").read_text()


def test_a_secret_fix_the_applier_could_not_make_is_failed_never_already_in_place(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """`readiness remediate -c environment --apply` over sshd. Before: on an env file line
    `export MAHAVISHNU_AUTH__SECRET='changeme'  # default` the applier read the value another
    way than the plan, changed nothing, and the fix was reported "noop - already in place"
    with exit 0 while `changeme` stayed. Now that line gets a new secret (keeping `export`),
    and a value the applier still reads differently (`${BASE}`, expanded by dotenv) is
    re-audited: "failed", exit 1, nothing changed."""

    host = fleet.hosts[0]
    root = _break(host.app_root)
    env_file = root / ".env"
    kept = env_file.read_text()
    inv = _inventory(tmp_path, fleet)
    common = (fleet, tmp_path, inv, host.name, "-c", "environment", "--apply")
    env_file.write_text(kept + "export MAHAVISHNU_AUTH__SECRET='changeme'  # default\n")
    fixed = _remediate_cli(*common)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "environment: applied" in fixed.stdout, fixed.stdout
    line = env_file.read_text().splitlines()[-1]
    assert line.startswith("export MAHAVISHNU_AUTH__SECRET=") and "changeme" not in line
    assert len(line.split("=", 1)[1]) == 64

    env_file.write_text(kept + "BASE=changeme\nMAHAVISHNU_AUTH__SECRET=${BASE}\n")
    before = tree_hash(root)
    refused = _remediate_cli(*common)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "environment: failed" in refused.stdout, refused.stdout
    assert "already in place" not in refused.stdout
    assert "MAHAVISHNU_AUTH__SECRET uses an insecure default credential" in refused.stdout
    assert tree_hash(root) == before
    log = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in log] == ["applied", "failed"]


def _states(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every path under ``root``: mode, owner, group and bytes (mtimes left out: the audit
    itself probes that the backup and DLQ directories are writable)."""
    out = {}
    for p in [root, *root.rglob("*")]:
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        out[str(p)] = (st.st_mode, st.st_uid, st.st_gid, data)
    return out


def _named_in(diff: str) -> set[str]:
    """The paths a fix's diff says it creates, rewrites or chmods."""
    named = set()
    for line in diff.splitlines():
        for mark in ("+++ b", "+ mkdir -m ", "~ chmod "):
            if line.startswith(mark):
                rest = line[len(mark) :].split("    #")[0].split(" (was ")[0]
                named.add(rest.split()[-1] if mark != "+++ b" else rest)
    return named


def test_the_dry_run_names_every_path_the_apply_changes_for_every_registered_fixer(
    fleet: LoopbackFleet, tmp_path: Path
) -> None:
    """`readiness remediate` (dry run, JSON) then `--apply` over sshd, on a tree that fails
    every check that has a fixer (the registry: a new fixer must be broken here too). The
    dry run changes nothing; the apply changes exactly the paths the dry run named (its
    backups aside) and shows the same diff. Before, the missing parent directories the
    applier creates (docs/, docs/runbooks/, config/, dashboards/, data/) were never shown."""
    from readiness.remediate.fixers import all_fixers

    host = fleet.hosts[2]
    root = _break(host.app_root)
    inv = _inventory(tmp_path, fleet)
    common = (fleet, tmp_path, inv, host.name, "--format", "json")
    before = _states(root)
    dry = _remediate_cli(*common)
    assert dry.returncode == 0, dry.stderr
    planned = {f["check"]: f["diff"] for f in json.loads(dry.stdout)["hosts"][0]["fixes"]}
    assert set(planned) == set(all_fixers()), "break this fixer's check in _break()"
    assert _states(root) == before
    done = _remediate_cli(*common, "--apply")
    assert done.returncode == 0, done.stdout + done.stderr
    fixes = json.loads(done.stdout)["hosts"][0]["fixes"]
    assert {f["check"]: f["outcome"] for f in fixes} == dict.fromkeys(planned, "applied")
    assert {f["check"]: f["diff"] for f in fixes} == planned
    after = _states(root)
    changed = {p for p in {*before, *after} if before.get(p) != after.get(p)}
    named = set().union(*(_named_in(d) for d in planned.values()))
    assert {p for p in changed if ".readiness-bak." not in p} == named


@pytest.mark.parametrize(
    "command",
    [
        "{script}",
        "/bin/sh {script}",
        "/usr/bin/env A=1 {script}",
        "nice -n 10 {script}",
        "make -C {root}/bin backup",
        "sh -c '{script} --full >/dev/null 2>&1'",
        "cd {root} && ./bin/backup.sh",
        "cd /tmp; cd {root}/bin && sh backup.sh",
        'flock -n /run/backup.lock bash -c "cd {root} && exec ./bin/backup.sh"',
        "pg_dump app > /tmp/db-$(cd {root}/bin && ./backup.sh).sql",
    ],
    ids=[
        "program",
        "interpreter-script",
        "env-program",
        "nice-program",
        "make-C",
        "sh-c",
        "cd-and",
        "cd-twice",
        "wrapped-shell",
        "substitution",
    ],
)
def test_a_root_cron_line_never_runs_a_backup_script_the_app_user_can_change(
    fleet: LoopbackFleet, tmp_path: Path, command: str
) -> None:
    """`readiness remediate -c backup_restore --apply` over sshd as root, the profile asking
    for the schedule in /etc/cron.d as root and the backup command the app's own
    `bin/backup.sh` (owned by `nobody`, like the tree): before, remediate installed
    `0 2 * * * root <app>/bin/backup.sh`, so whoever controls the app user got root at 2 am.
    Now the fix is refused on the host, nothing is written anywhere, and the report says
    why (exit 1). The same through an interpreter (`/bin/sh <app>/bin/backup.sh`): only
    root's `/bin/sh` was judged, and the line was installed. And through what cron's shell
    runs: `make -C <app>/bin`, `sh -c '...'`, `cd <app> && ./bin/backup.sh`, a command
    substitution: the line was installed, as only its first word was judged."""

    host = fleet.hosts[0]
    root = _break(host.app_root)
    script = root / "bin" / "backup.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho dump > backups/x.sql\n")
    script.chmod(0o755)
    for path in [root, *root.rglob("*")]:
        os.lchown(path, 65534, 65534)
    cron_file = Path("/etc/cron.d") / f"readiness-test-{os.urandom(4).hex()}"
    command = command.format(script=script, root=root)
    profile = {"backup_command": command, "backup_cron_files": [str(cron_file)]}
    inv = _inventory(tmp_path, fleet, **{host.name: {**profile, "backup_cron_user": "root"}})
    before = tree_hash(root)
    try:
        dry = _remediate_cli(fleet, tmp_path, inv, host.name, "-c", "backup_restore")
        assert tree_hash(root) == before
        res = _remediate_cli(fleet, tmp_path, inv, host.name, "-c", "backup_restore", "--apply")
        assert not cron_file.exists()
    finally:
        cron_file.unlink(missing_ok=True)
    # The dry run already says the schedule will be refused (the applier judges it on the
    # host for the plan): it never promises the line the apply refuses.
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"root {command}" not in dry.stdout, dry.stdout
    assert res.returncode == 1, res.stdout + res.stderr
    for out in (dry.stdout, res.stdout):
        assert "refused: `" in out, out
        assert f"would run as root from cron, but nobody can change {root}" in out
        if command.startswith(str(script)) or command.split()[-1] == str(script):
            assert f"refused: `{script}` would run as root from cron" in out


@pytest.fixture
def deploy_account() -> Iterator[tuple[str, str]]:
    """(user, group): a login account that is a member of a second group, the service's,
    created for one test and removed after it (the loopback sshd lets any account with a
    usable password field in with the fleet's key)."""
    import uuid

    tag = uuid.uuid4().hex[:8]
    user, group = f"rdyd_{tag}", f"rdys_{tag}"
    subprocess.run(["groupadd", group], check=True, capture_output=True)
    subprocess.run(
        ["useradd", "-M", "-p", "*", "-s", "/bin/sh", "-G", group, user],
        check=True,
        capture_output=True,
    )
    try:
        yield user, group
    finally:
        for _ in range(50):  # its sshd session may still be closing
            gone = subprocess.run(["userdel", user], capture_output=True, check=False)
            if gone.returncode in (0, 6):
                break
            time.sleep(0.1)
        subprocess.run(["groupdel", group], capture_output=True, check=False)


def test_a_rewrite_without_root_keeps_the_files_group_or_is_refused(
    fleet: LoopbackFleet, tmp_path: Path, deploy_account: tuple[str, str]
) -> None:
    """`readiness remediate -c environment --apply` over sshd as a deploy account (no root):
    the env file is the deploy user's, group the service's (0640), the way the service reads
    it. Before, the rewritten file got the deploy user's own group (0640 kept), so the
    service could no longer read its env file, and the fix said "applied". Now the group is
    kept, and a file whose owner the account cannot give back (a group it is not in) is
    refused: the dry run says so (before, it promised the edit), --apply exits 1, the file,
    its mode and its owner as they were, no backup left."""
    import grp
    import pwd

    user, group = deploy_account
    host = fleet.hosts[2]
    root = _break(host.app_root)
    uid, own_gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    service_gid = grp.getgrnam(group).gr_gid
    for path in [root, *root.rglob("*")]:
        os.lchown(path, uid, own_gid)
    env_file = root / ".env"
    os.chown(env_file, uid, service_gid)
    env_file.chmod(0o640)
    entry = host_entry(fleet, host, ansible_user=user, readiness={"app_root": str(root)})
    inv = str(write_inventory(tmp_path / "deploy.yml", {host.name: entry}))
    common = (fleet, tmp_path, inv, host.name, "-c", "environment", "--apply")

    kept = _remediate_cli(*common)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "environment: applied" in kept.stdout, kept.stdout
    st = env_file.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, service_gid, 0o640)
    assert "changeme" not in env_file.read_text()

    env_file.write_text(env_file.read_text() + "MAHAVISHNU_AUTH__SECRET=changeme\n")
    os.chown(env_file, uid, 0)  # a group the deploy account is not in
    settings = root / "settings" / "mahavishnu.yaml"
    os.chown(settings, uid, 0)
    before = tree_hash(root)
    # the dry run says so up front, for the env file as for the settings file
    dry = _remediate_cli(fleet, tmp_path, inv, host.name, "-c", "environment,error_handling")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"refused: {env_file} belongs to {user}:root" in dry.stdout, dry.stdout
    assert "will be refused" not in dry.stdout, dry.stdout
    assert f"refused: {settings} belongs to {user}:root" in dry.stdout, dry.stdout
    assert tree_hash(root) == before
    refused = _remediate_cli(*common)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"refused: {env_file} belongs to {user}:root" in refused.stdout, refused.stdout
    assert tree_hash(root) == before
    st = env_file.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, 0, 0o640)


def test_a_chmod_without_root_of_another_users_file_is_refused_in_the_plan(
    fleet: LoopbackFleet, tmp_path: Path, deploy_account: tuple[str, str]
) -> None:
    """`readiness remediate -c security_settings` over sshd as a deploy account (no root),
    on a 0644 env file that belongs to the service's account: only the owner (or root) may
    chmod it. The dry run promised `chmod 0600`, and --apply failed with "Operation not
    permitted". Now the dry run refuses it and says why; --apply exits 1, nothing changed."""
    import pwd

    user, _group = deploy_account
    host = fleet.hosts[2]
    root = _break(host.app_root)
    uid = pwd.getpwnam(user).pw_uid
    for path in [root, *root.rglob("*")]:
        os.lchown(path, uid, uid)
    env_file = root / ".env"
    os.chown(env_file, 65534, 65534)  # the service's (nobody), readable by all (0644)
    entry = host_entry(fleet, host, ansible_user=user, readiness={"app_root": str(root)})
    inv = str(write_inventory(tmp_path / "deploy.yml", {host.name: entry}))
    common = (fleet, tmp_path, inv, host.name, "-c", "security_settings")
    before = tree_hash(root)
    dry = _remediate_cli(*common)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"chmod 0600 {env_file}" not in dry.stdout, dry.stdout
    assert f"refused: {env_file} belongs to nobody; {user} cannot chmod it" in dry.stdout
    done = _remediate_cli(*common, "--apply")
    assert done.returncode == 1, done.stdout + done.stderr
    assert tree_hash(root) == before
    assert env_file.stat().st_mode & 0o777 == 0o644
