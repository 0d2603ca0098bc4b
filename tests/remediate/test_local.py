"""Remediation on the local host: real files and real processes; pure logic with plain data."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from readiness.errors import UsageError
from readiness.model import Status
from readiness.remediate import ConfirmationRefused, remediate, render
from readiness.remediate.apply import run_applier
from readiness.remediate.plan import SetEnvVar
from readiness.remediate.yamltext import YamlEditError, insert_missing
from readiness.transport import LocalTransport

from ..services.apps import LocalTestHost, audit_local, one, running_service, write_app
from .helpers import listing, tree_hash

SETTINGS_WITH_COMMENTS = """\
# Mahavishnu settings: production
server_name: prod-1  # shown in logs
max_concurrent_workflows: 10
resilience:
  # retries for adapters
  retry:
    max_attempts: 3

pools:
  enabled: true
"""


def _profile(root: Path, **extra: Any) -> dict[str, Any]:
    return {"app_root": str(root), **extra}


def _fix(root: Path, checks: list[str], tmp: Path, **kw: Any) -> Any:
    """Remediate the local host; the audit log's stderr lines land in ``tmp/stderr.txt``."""
    stream = io.StringIO()
    report = remediate(
        [LocalTestHost()],
        checks,
        profile_overrides=_profile(root, **kw.pop("profile", {})),
        audit_log=tmp / "audit.jsonl",
        log_stream=stream,
        **kw,
    )
    with (tmp / "stderr.txt").open("a") as fh:
        fh.write(stream.getvalue())
    return report


# --- pure logic ---------------------------------------------------------------------


def test_missing_yaml_keys_are_inserted_as_text_keeping_every_comment() -> None:
    text = insert_missing(SETTINGS_WITH_COMMENTS, "resilience.retry.backoff_base_s", 1.0)
    text = insert_missing(text, "resilience.error_categories", ["transient", "timeout"])
    text = insert_missing(text, "workflow_timeout", 600)
    for line in SETTINGS_WITH_COMMENTS.splitlines():
        assert line in text.splitlines()
    data = yaml.safe_load(text)
    assert data["resilience"]["retry"] == {"max_attempts": 3, "backoff_base_s": 1.0}
    assert data["resilience"]["error_categories"] == ["transient", "timeout"]
    assert data["workflow_timeout"] == 600
    assert data["pools"] == {"enabled": True}


def test_present_keys_are_left_alone_and_flow_mappings_are_refused() -> None:
    assert insert_missing(SETTINGS_WITH_COMMENTS, "resilience.retry.max_attempts", 9) == (
        SETTINGS_WITH_COMMENTS
    )
    with pytest.raises(YamlEditError, match="not a block mapping"):
        insert_missing("limits: {a: 1}\n", "limits.b", 2)


def test_a_generated_secret_is_described_in_the_plan_and_never_shown() -> None:
    change = SetEnvVar("/srv/app/.env", "MAHAVISHNU_AUTH__SECRET", current_sha256="ab" * 32)
    assert "MAHAVISHNU_AUTH__SECRET=<generated on apply: 64 chars>" in change.diff()
    assert "<current value hidden>" in change.diff()
    assert "value" not in change.request() or change.request().get("value") is None


# --- local host, real files ------------------------------------------------------------


def test_dry_run_prints_a_diff_and_changes_nothing(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": None})
    before = tree_hash(root)
    report = _fix(root, ["environment", "documentation", "error_handling"], tmp_path)
    text = render(report)
    assert tree_hash(root) == before
    assert "+MAHAVISHNU_AUTH__SECRET=<generated on apply: 64 chars>" in text
    assert f"+++ b{root}/README.md" in text
    assert "+resilience:" in text
    assert report.exit_code == 0
    assert not (tmp_path / "audit.jsonl").exists()


def test_documentation_and_error_handling_become_ready_after_apply(tmp_path: Path) -> None:
    root = write_app(
        tmp_path / "app",
        settings_text=yaml.safe_dump({"server_name": "x", "auth": {"enabled": True}})
        + "# keep me: operators' note\n",
        files={"README.md": "# App\n\n## Installation\n\npip install app\n"},
    )
    checks = ["documentation", "error_handling", "resource_limits"]
    before = {r.check_name: r.status for r in audit_local(root, checks).results}
    assert before == {
        "documentation": Status.DEGRADED,
        "error_handling": Status.NOT_READY,
        "resource_limits": Status.NOT_READY,
    }
    report = _fix(root, checks, tmp_path, apply=True)
    assert [o.outcome for o in report.hosts[0].outcomes] == ["applied"] * 3, render(report)
    after = audit_local(root, checks)
    assert {r.check_name: r.status for r in after.results} == dict.fromkeys(checks, Status.READY)
    readme = (root / "README.md").read_text()
    assert readme.startswith("# App\n\n## Installation\n\npip install app\n")
    assert "## Usage" in readme and "## Configuration" in readme
    settings = (root / "settings" / "mahavishnu.yaml").read_text()
    assert "# keep me: operators' note" in settings
    assert (root / "data" / "dlq").is_dir()
    backups = sorted(p.name for p in (root / "settings").iterdir() if ".readiness-bak." in p.name)
    assert len(backups) == 2  # one per fix that rewrote the settings file
    assert report.exit_code == 0


def test_second_apply_changes_nothing_and_says_so(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": "changeme"})
    checks = ["environment", "documentation", "monitoring"]
    first = _fix(root, checks, tmp_path, apply=True)
    assert {o.outcome for o in first.hosts[0].outcomes} == {"applied"}
    before = tree_hash(root)
    second = _fix(root, checks, tmp_path, apply=True)
    assert tree_hash(root) == before
    assert second.hosts[0].outcomes == ()
    text = render(second)
    # What no fixer can do (Prometheus is not running here) is listed, never "nothing to fix".
    assert "nothing to fix" not in text
    assert "  nothing a fixer could change: see what remains below" in text
    assert "  - monitoring: no fixer: Prometheus at " in text
    assert "Applied on 1 of 1 host(s): 1 host(s) with nothing a fixer could change." in text
    assert "Remaining:\n  local: 2 no fixer" in text
    log = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert log[-1]["outcome"] == "noop"
    assert log[-1]["message"] == "nothing a fixer could change; 2 finding(s) remain"
    assert [r["why"] for r in second.to_dict()["hosts"][0]["remaining"]] == ["no fixer"] * 2


def test_new_jwt_secret_is_strong_and_never_printed_or_logged(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": "changeme"})
    report = _fix(root, ["environment"], tmp_path, apply=True)
    assert one(audit_local(root, ["environment"])).status is Status.READY
    env = (root / ".env").read_text()
    secret = next(
        ln.split("=", 1)[1] for ln in env.splitlines() if ln.startswith("MAHAVISHNU_AUTH__SECRET=")
    )
    assert len(secret) == 64
    assert (root / ".env").stat().st_mode & 0o777 == 0o600
    outputs = [
        render(report),
        render(report, "json"),
        (tmp_path / "audit.jsonl").read_text(),
        (tmp_path / "stderr.txt").read_text(),
    ]
    assert all(secret not in out for out in outputs)
    assert "restart the service" in render(report)
    entry = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[0])
    assert {"ts", "user", "host", "check", "changes", "outcome"} <= set(entry)
    assert (entry["host"], entry["check"], entry["outcome"]) == ("local", "environment", "applied")


def test_secret_files_are_tightened_to_0600_and_never_loosened(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    (root / ".env").chmod(0o644)
    (root / "tls.key").write_text("KEY")
    (root / "tls.key").chmod(0o440)
    report = _fix(root, ["security_settings"], tmp_path, apply=True)
    assert report.hosts[0].outcomes[0].outcome == "applied"
    assert (root / ".env").stat().st_mode & 0o777 == 0o600
    assert (root / "tls.key").stat().st_mode & 0o777 == 0o400  # 0440 & 0600: never adds bits
    problems = one(audit_local(root, ["security_settings"])).details.get("problems") or []
    assert not [p for p in problems if "accessible to group/others" in p]


def test_backup_setup_schedules_the_profile_command_and_documents_restore(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app", files={"backups/db-1.sql": "-- dump\n"})
    profile = {"backup_command": "/usr/local/bin/app-backup", "backup_cron_files": ["cron/app"]}
    assert one(audit_local(root, ["backup_restore"], profile)).status is Status.DEGRADED
    report = _fix(root, ["backup_restore"], tmp_path, apply=True, profile=profile)
    assert report.hosts[0].outcomes[0].outcome == "applied"
    assert one(audit_local(root, ["backup_restore"], profile)).status is Status.READY
    assert "0 2 * * * /usr/local/bin/app-backup" in (root / "cron" / "app").read_text()
    assert "Restore" in (root / "docs" / "runbooks" / "backup-restore.md").read_text()


def test_missing_backup_directory_is_created_owned_like_the_app(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    report = _fix(root, ["backup_restore"], tmp_path, apply=True)
    assert report.hosts[0].outcomes[0].outcome == "applied"
    st = (root / "backups").stat()
    assert (st.st_mode & 0o777, st.st_uid) == (0o750, root.stat().st_uid)
    problems = one(audit_local(root, ["backup_restore"])).details.get("problems") or []
    assert not [p for p in problems if "does not exist" in p]


def test_generated_alert_rules_pass_promtool_and_the_monitoring_check(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    _fix(root, ["monitoring"], tmp_path, apply=True)
    rules = root / "config" / "alerts.yml"
    proc = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    details = one(audit_local(root, ["monitoring"])).details
    assert details["alert_rules"]["alerts"] == 2
    assert details["dashboards"]["valid"] == 1


def test_migrations_directory_is_created_without_adding_a_pending_script(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    report = _fix(root, ["database_migration"], tmp_path, apply=True)
    assert report.hosts[0].outcomes[0].outcome == "applied"
    assert sorted(p.name for p in (root / "migrations").iterdir()) == [
        "0001_init.sql.template",
        "README.md",
    ]
    warnings = one(audit_local(root, ["database_migration"])).details.get("warnings") or []
    assert not [w for w in warnings if "does not exist" in w]


def test_a_file_changed_after_planning_is_not_overwritten(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    path = root / "settings" / "mahavishnu.yaml"
    request = {
        "op": "apply",
        "changes": [
            {"kind": "edit_file", "path": str(path), "content": "x: 1\n", "expect_sha256": "0" * 64}
        ],
    }
    before = tree_hash(root)
    answer = run_applier(LocalTransport(), request, timeout_s=20)
    assert not answer["ok"]
    assert "changed since the plan" in answer["error"]
    assert tree_hash(root) == before


def test_applier_restore_is_byte_identical_and_removes_only_what_it_created(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    (root / "notes.txt").write_text("keep\n")
    before, names = tree_hash(root), listing(root)
    changes = [
        {"kind": "append_lines", "path": str(root / "notes.txt"), "lines": ["added"]},
        {"kind": "create_file", "path": str(root / "docs/a/b.md"), "content": "x\n", "mode": 0o644},
        {"kind": "chmod", "path": str(root / "settings" / "mahavishnu.yaml"), "mode": 0o600},
    ]
    t = LocalTransport()
    applied = run_applier(t, {"op": "apply", "changes": changes}, timeout_s=20)
    assert applied["ok"], applied
    assert (root / "notes.txt").read_text() == "keep\nadded\n"
    assert any(".readiness-bak." in p for p in listing(root) - names)
    undone = run_applier(
        t,
        {"op": "restore", "snapshot": applied["snapshot"], "created": applied["created"]},
        timeout_s=20,
    )
    assert undone["ok"], undone
    assert tree_hash(root) == before


def test_checks_without_a_fixer_are_refused_with_the_list_of_fixers(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no fixer for configuration"):
        _fix(tmp_path, ["configuration"], tmp_path)


def test_applying_to_several_hosts_without_yes_or_a_terminal_is_refused(tmp_path: Path) -> None:
    root = write_app(tmp_path / "app")
    before = tree_hash(root)
    hosts = [LocalTestHost(), LocalTestHost(name="local2")]
    with pytest.raises(ConfirmationRefused, match="--yes"):
        remediate(hosts, ["documentation"], profile_overrides=_profile(root), apply=True)
    with pytest.raises(ConfirmationRefused, match="not confirmed"):
        remediate(
            hosts,
            ["documentation"],
            profile_overrides=_profile(root),
            apply=True,
            confirm=lambda names: False,
        )
    assert tree_hash(root) == before
    assert ConfirmationRefused("x").exit_code == 2


def test_defects_in_checks_without_a_fixer_are_listed_as_remaining(tmp_path: Path) -> None:
    """Without -c, the validate checks that have no fixer are audited too, so what is left
    on the host is listed with its reason instead of "nothing to fix"."""
    root = write_app(tmp_path / "app", settings={"pools": {"min_workers": 9, "max_workers": 2}})
    report = _fix(root, [], tmp_path, apply=True)
    host = report.hosts[0]
    assert "configuration" not in report.checks  # no fixer: audited, never fixed
    assert host.before["configuration"] is Status.NOT_READY
    settings = root / "settings" / "mahavishnu.yaml"
    assert host.plan.unfixable["configuration"][0] == (
        "pools.min_workers (9) > pools.max_workers (2) (from pools.min_workers and "
        f"pools.max_workers in settings file {settings})"
    )
    text = render(report)
    assert "  - configuration: no fixer: pools.min_workers (9) > pools.max_workers (2)" in text
    assert "  - graceful_shutdown: no fixer: no service process configured" in text
    data = json.loads(render(report, "json"))
    whys = {(r["check"], r["why"]) for r in data["hosts"][0]["remaining"]}
    assert {("configuration", "no fixer"), ("graceful_shutdown", "no fixer")} <= whys


def test_a_settings_fix_for_a_running_service_is_fixed_on_disk_restart_needed(
    tmp_path: Path,
) -> None:
    root = write_app(tmp_path / "app")  # no resilience section: error_handling NOT_READY
    profile = {"thresholds": {"stale_config_grace_s": 0.2}}
    with running_service(root) as (proc, pidfile):
        time.sleep(0.3)  # the fix comes later than the start, as in real life
        report = _fix(
            root,
            ["error_handling"],
            tmp_path,
            apply=True,
            profile={**profile, "pidfile": str(pidfile)},
        )
    outcome = report.hosts[0].outcomes[0]
    assert outcome.outcome == "applied", render(report)
    assert outcome.after is Status.DEGRADED
    assert outcome.message.startswith(
        "fixed on disk, restart needed: check is DEGRADED (running with stale configuration: "
        f"settings file {root / 'settings' / 'mahavishnu.yaml'} changed at "
    ), outcome.message
    assert f"after process {proc.pid} started" in outcome.message
    text = render(report)
    assert "1 applied (1 need(s) a restart of the service)" in text
    assert "  - error_handling: restart needed: configure error handling" in text


def test_a_refused_fix_is_listed_once_as_refused_with_its_reason(tmp_path: Path) -> None:
    """`readiness remediate --apply` on a tree whose settings file is a symlink: the
    remaining line read "error_handling: refused: refused: ... is a symlink"."""
    from ..services.cli import local_inventory, run_cli

    root = write_app(tmp_path / "app", settings_text="server_name: x\n")
    settings = root / "settings" / "mahavishnu.yaml"
    settings.rename(settings.with_name("real.yaml"))
    settings.symlink_to("real.yaml")
    inv = local_inventory(tmp_path / "inv.yml", root)
    res = run_cli(
        "remediate", "-i", str(inv), "--hosts", "local", "-c", "error_handling", "--apply",
        "--store", "none", "--audit-log", str(tmp_path / "a.jsonl"),
    )  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr  # refused: the host is left unfixed
    line = f"- error_handling: refused: {settings} is a symlink; readiness does not edit"
    assert line in res.stdout, res.stdout
    assert "refused: refused" not in res.stdout
    assert settings.is_symlink() and settings.resolve().read_text() == "server_name: x\n"


def test_a_settings_file_that_is_not_utf8_is_refused_in_the_plan_not_failed_forever(
    tmp_path: Path,
) -> None:
    """`readiness remediate -c error_handling` on a settings file with a Latin-1 comment: the
    plan was made on text decoded with replacement characters, so every `--apply` failed
    with "changed since the plan was made; re-run remediate" (exit 1), run after run. Now
    the dry run and the apply say the file is not UTF-8 text, and the file is untouched."""
    from ..services.cli import local_inventory, run_cli

    root = write_app(tmp_path / "app", settings_text="server_name: x\n")
    settings = root / "settings" / "mahavishnu.yaml"
    data = b"# r\xe9glages (caf\xe9)\nserver_name: x\n"
    settings.write_bytes(data)
    inv = local_inventory(tmp_path / "inv.yml", root)
    common = ["remediate", "-i", str(inv), "--hosts", "local", "-c", "error_handling"]
    common += ["--store", "none", "--audit-log", str(tmp_path / "a.jsonl")]
    reason = f"- error_handling: refused: {settings} is not UTF-8 text; add resilience by hand"
    dry = run_cli(*common)
    assert dry.returncode == 0 and reason in dry.stdout, dry.stdout + dry.stderr
    done = run_cli(*common, "--apply")  # refused: the host is left unfixed (exit 1)
    assert done.returncode == 1 and reason in done.stdout, done.stdout + done.stderr
    assert "changed since the plan was made" not in done.stdout
    assert settings.read_bytes() == data
    assert not list(settings.parent.glob("*.readiness-bak.*"))


def test_the_dry_run_and_the_applier_agree_on_the_bits_a_secret_file_loses() -> None:
    """The applier is host-side source (sent, never imported by the planner): its constant
    and the planner's copy, which the dry run shows, must stay the same."""
    from readiness import applier
    from readiness.remediate import plan

    assert plan.SECRET_FILE_NOT_FOR == applier.SECRET_FILE_NOT_FOR == 0o007


SPOOL_REFUSAL = "is a crontab spool file, edited only through crontab"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_apply_exits_1_when_a_fixer_refuses_part_of_a_fix(tmp_path: Path, fmt: str) -> None:
    """A real `readiness remediate -c backup_restore` of a local tree with no backup
    directory and the schedule asked in a crontab spool file (never edited directly): the
    directory was created, the schedule refused, and --apply exited 0 with the schedule
    listed as "no fixer". Now the schedule is "refused" with its reason and --apply exits 1,
    as for a failed fix; the dry run, which changes nothing, still exits 0."""
    from ..services.cli import local_inventory, run_cli

    root = write_app(tmp_path / "app")
    shutil.rmtree(root / "backups", ignore_errors=True)
    inv = local_inventory(tmp_path / "inv.yml", root)
    data = yaml.safe_load(inv.read_text())
    data["all"]["hosts"]["local"]["readiness"].update(
        backup_command="/usr/local/bin/backup-app",
        backup_cron_files=[f"/var/spool/cron/crontabs/readiness-test-{tmp_path.name}"],
    )
    inv.write_text(yaml.safe_dump(data))
    common = ["remediate", "-i", str(inv), "--hosts", "local", "-c", "backup_restore"]
    common += ["--store", "none", "--audit-log", str(tmp_path / "a.jsonl"), "--format", fmt]
    dry = run_cli(*common)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert not (root / "backups").exists()
    done = run_cli(*common, "--apply")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (root / "backups").is_dir()  # what was not refused is made
    if fmt == "json":
        doc = json.loads(done.stdout)
        assert doc["exit_code"] == 1
        [host] = doc["hosts"]
        assert [f["outcome"] for f in host["fixes"]] == ["applied"]
        [left] = [r for r in host["remaining"] if r["check"] == "backup_restore"]
        assert left["why"] == "refused" and SPOOL_REFUSAL in left["reason"], left
    else:
        assert "- backup_restore: refused: no backup schedule found" in done.stdout
        assert SPOOL_REFUSAL in done.stdout and "no fixer" not in done.stdout
        assert "left unchanged (exit 1): local." in done.stdout


def test_a_host_left_with_a_refusal_by_apply_is_counted_failed_by_the_progress_line() -> None:
    """The progress summary (`remediation of 3 hosts in 0s: 3 succeeded`) counted a host
    whose fix was refused as succeeded, beside exit 1; the dry run still counts it planned."""
    from readiness.remediate.plan import HostPlan
    from readiness.remediate.run import HostRemediation

    plan = HostPlan("h", refused={"backup_restore": (f"refused: /x {SPOOL_REFUSAL}",)})
    assert HostRemediation("h", plan, applied=True).progress_status() is Status.NOT_READY
    assert HostRemediation("h", plan).progress_status() is Status.READY
    waiting = HostPlan("h", refused={"database_migration": ("pending migrations are only run",)})
    assert HostRemediation("h", waiting, applied=True).progress_status() is Status.READY


def test_a_reverted_fix_leaves_the_older_backups_as_they_were(tmp_path: Path) -> None:
    """`readiness remediate -c environment --apply` whose fix is reverted (the running
    service's own environment keeps `changeme`), with `remediate_keep_backups: 1` and one
    backup of the env file from an earlier run. Before, the applier pruned the older backup
    as soon as the new one was written, before the fix was verified: the revert removed the
    new one, "the snapshot was restored", and the earlier backup was gone for good. Now
    backups are pruned only once the fix is verified, so a reverted fix changes nothing."""
    from ..services.cli import local_inventory, run_cli

    root = write_app(tmp_path / "app", env={"MAHAVISHNU_AUTH__SECRET": "changeme"})
    earlier = root / ".env.readiness-bak.20200101T000000Z"
    earlier.write_text("MAHAVISHNU_AUTH__SECRET=older\n")
    earlier.chmod(0o600)
    with running_service(root, {"MAHAVISHNU_AUTH__SECRET": "changeme"}) as (_proc, pidfile):
        inv = local_inventory(
            tmp_path / "inv.yml",
            root,
            pidfile=str(pidfile.relative_to(root)),
            env_file_in_process_env=False,
            remediate_keep_backups=1,
        )
        before = tree_hash(root)
        res = run_cli(
            "remediate", "-i", str(inv), "-c", "environment", "--apply",
            "--audit-log", str(tmp_path / "audit.jsonl"),
        )  # fmt: skip
        assert res.returncode == 1, res.stdout + res.stderr
        assert "environment: reverted" in res.stdout, res.stdout
        assert earlier.exists(), listing(root)
        assert earlier.read_text() == "MAHAVISHNU_AUTH__SECRET=older\n"
        assert tree_hash(root) == before


def test_the_help_says_a_refused_fix_exits_1_on_apply() -> None:
    """`readiness remediate --help` listed exit 1 for a failed or reverted fix and an
    unreachable host, not for a fixer's refusal on --apply (which exits 1 since the
    refusal was made to fail CI): a user reading it expected 0 for a refused fix."""
    from ..services.cli import run_cli

    res = run_cli("remediate", "--help")
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "a fixer refused part of a fix (--apply)" in text, text


def test_a_failed_fix_does_not_fail_the_next_fix_of_the_same_file(tmp_path: Path) -> None:
    """`readiness remediate -c error_handling -c resource_limits --apply`: both add keys to
    the settings file, the second planned on the text the first produces. The first failed
    (its dead letter queue directory cannot be made: `data/` is immutable), its edit was
    undone, and the second then failed with "changed since the plan was made; re-run
    remediate" - on every re-run, so resource_limits could never be fixed while
    error_handling failed. Now what follows a failed fix on the same file is planned again
    on the file as it is, and applied."""
    from ..services.apps import BASE_SETTINGS
    from ..services.cli import local_inventory, run_cli

    settings = {
        k: v for k, v in BASE_SETTINGS.items() if k not in ("resilience", "workflow_timeout")
    }
    root = write_app(tmp_path / "app", settings_text=yaml.safe_dump(settings))
    data = root / "data"
    data.mkdir()
    subprocess.run(["chattr", "+i", str(data)], check=True)
    try:
        inv = local_inventory(tmp_path / "inv.yml", root)
        res = run_cli(
            "remediate", "-i", str(inv), "-c", "error_handling", "-c", "resource_limits",
            "--apply", "--format", "json", "--audit-log", str(tmp_path / "audit.jsonl"),
        )  # fmt: skip
    finally:
        subprocess.run(["chattr", "-i", str(data)], check=True)
    assert res.returncode == 1, res.stdout + res.stderr
    fixes = {f["check"]: f for f in json.loads(res.stdout)["hosts"][0]["fixes"]}
    assert fixes["error_handling"]["outcome"] == "failed", fixes["error_handling"]
    assert fixes["resource_limits"]["outcome"] == "applied", fixes["resource_limits"]
    text = (root / "settings" / "mahavishnu.yaml").read_text()
    assert "workflow_timeout" in text and "dead_letter_queue" not in text
    assert not (data / "dlq").exists()


def test_a_write_the_host_refuses_names_the_file_not_a_temporary_one(tmp_path: Path) -> None:
    """`readiness remediate -c documentation --apply` on an app tree whose directory is
    immutable (`chattr +i`, as a read-only file system): the fix failed with
    "OSError: [Errno 1] Operation not permitted: '.readiness-tmp-3f2c…'", a temporary name
    that no longer exists, so the message did not say which file could not be written. Now
    it names the README."""
    from ..services.cli import local_inventory, run_cli

    root = write_app(tmp_path / "app", files={"README.md": "# app\n"})
    inv = local_inventory(tmp_path / "inv.yml", root)
    subprocess.run(["chattr", "+i", str(root)], check=True)
    try:
        res = run_cli(
            "remediate", "-i", str(inv), "-c", "documentation", "--apply",
            "--audit-log", str(tmp_path / "audit.jsonl"),
        )  # fmt: skip
    finally:
        subprocess.run(["chattr", "-i", str(root)], check=True)
    assert res.returncode == 1, res.stdout + res.stderr
    failed = [line for line in res.stdout.splitlines() if "documentation: failed" in line]
    assert failed and f"{root}/README.md: Operation not permitted" in failed[0], res.stdout
    assert ".readiness-tmp-" not in res.stdout + res.stderr
    assert listing(root) == {".env", "README.md", "settings", "settings/mahavishnu.yaml"}


@pytest.mark.parametrize(
    ("check", "rel"),
    [
        ("environment", ".env"),
        ("error_handling", "settings/mahavishnu.yaml"),
        ("documentation", "README.md"),
    ],
)
def test_a_file_with_several_hard_links_is_never_split_by_a_rewrite(
    tmp_path: Path, check: str, rel: str
) -> None:
    """`readiness remediate -c CHECK --apply` as root where the file the fix rewrites is also
    another name's (a hard link, e.g. the env file the service reads from /etc): before, the
    dry run promised the edit, and the apply renamed a new file over this name only, so the
    other name kept the old text (no secret, no resilience section) while the fix said
    `applied`, check READY. Now the dry run refuses it, `--apply` refuses it
    (exit 1) and both names are still one unchanged file."""
    from ..services.cli import local_inventory, run_cli

    root = write_app(
        tmp_path / "app",
        # no resilience section for error_handling to add
        settings_text="server_name: x\n" if check == "error_handling" else None,
        env={"MAHAVISHNU_AUTH__SECRET": None},
        files={"README.md": "# app\n"},
    )
    target = root / rel
    other = tmp_path / "elsewhere"
    other.hardlink_to(target)
    data = target.read_bytes()
    inv = local_inventory(tmp_path / "inv.yml", root)
    common = ["remediate", "-i", str(inv), "--hosts", "local", "-c", check]
    common += ["--store", "none", "--audit-log", str(tmp_path / "a.jsonl")]
    reason = f"refused: {target} has 2 hard links; readiness does not rewrite a file that also"
    dry = run_cli(*common)
    assert dry.returncode == 0 and reason in dry.stdout, dry.stdout + dry.stderr
    # refused in the plan itself, as a refusal: no change planned (the environment fixer
    # planned the edit with a "will be refused" note beside its diff)
    assert "will be refused" not in dry.stdout, dry.stdout
    assert re.search(r"\n  local: \d+ refused", dry.stdout), dry.stdout
    if check != "documentation":  # (its other fixes, the missing documents, are planned)
        assert "Dry run: 0 fix(es) planned" in dry.stdout, dry.stdout
    done = run_cli(*common, "--apply")
    assert done.returncode == 1 and reason in done.stdout, done.stdout + done.stderr
    assert target.stat().st_ino == other.stat().st_ino
    assert target.read_bytes() == data
    assert not list(target.parent.glob("*.readiness-bak.*"))
