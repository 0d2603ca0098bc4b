"""The monitoring fixer (a starter alert rules file and a dashboard), through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from ...services.apps import write_app
from ...services.cli import local_inventory, run_cli


def test_a_symlink_planted_where_a_file_is_to_be_created_is_refused_in_the_plan(
    tmp_path: Path,
) -> None:
    """`config/alerts.yml` is a dangling symlink the app user planted (to a file it wants
    root to create). The check says the rules file does not exist; the applier never creates
    a file over an existing name, so --apply left it, the re-audit still reported it, and the
    whole fix was reverted - the dashboard with it - while the dry run had promised to create
    both. Now the plan refuses the rules file up front and makes the dashboard; --apply
    exits 1 for the refusal and nothing is created through the link."""
    root = write_app(tmp_path / "app")
    (root / "config").mkdir()
    target = tmp_path / "planted-target"
    link = root / "config" / "alerts.yml"
    link.symlink_to(target)
    inv = local_inventory(tmp_path / "inv.yml", root)
    common = ["remediate", "-i", str(inv), "-c", "monitoring", "--format", "json"]
    dry = run_cli(*common)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    host = json.loads(dry.stdout)["hosts"][0]
    [fix] = host["fixes"]
    assert f"+++ b{link}" not in fix["diff"] and "mahavishnu-overview.json" in fix["diff"]
    assert [r for r in host["refused"]["monitoring"] if r.startswith(f"refused: {link} ")]
    done = run_cli(*common, "--apply", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert done.returncode == 1, done.stdout + done.stderr
    [fix] = json.loads(done.stdout)["hosts"][0]["fixes"]
    assert fix["outcome"] == "applied", fix
    assert (root / "dashboards" / "mahavishnu-overview.json").is_file()
    assert link.is_symlink() and not target.exists()


def test_the_documents_and_the_backup_runbook_refuse_planted_links_the_same_way(
    tmp_path: Path,
) -> None:
    """The same for the documentation fixer's runbooks and backup_restore's runbook: a
    dangling link where one is to be created is refused in the plan, the others are made."""
    root = write_app(tmp_path / "app")
    runbooks = root / "docs" / "runbooks"
    runbooks.mkdir(parents=True)
    links = {name: runbooks / name for name in ("rollback.md", "backup-restore.md")}
    for name, link in links.items():
        link.symlink_to(tmp_path / f"planted-{name}")
    inv = local_inventory(tmp_path / "inv.yml", root, backup_cron_files=["cron/app"])
    checks = ["-c", "documentation", "-c", "backup_restore"]
    common = ["remediate", "-i", str(inv), *checks, "--format", "json"]
    dry = run_cli(*common)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    host = json.loads(dry.stdout)["hosts"][0]
    diffs = "\n".join(f["diff"] for f in host["fixes"])
    refused = [r for notes in host["refused"].values() for r in notes]
    for link in links.values():
        assert f"+++ b{link}" not in diffs
        assert [r for r in refused if r.startswith(f"refused: {link} is a symlink")], refused
    done = run_cli(*common, "--apply", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert done.returncode == 1, done.stdout + done.stderr
    fixes = json.loads(done.stdout)["hosts"][0]["fixes"]
    assert {f["check"]: f["outcome"] for f in fixes} == {
        "documentation": "applied",
        "backup_restore": "applied",
    }, fixes
    assert (runbooks / "incident-response.md").is_file()
    for name, link in links.items():
        assert link.is_symlink() and not (tmp_path / f"planted-{name}").exists()


def test_a_planted_link_above_the_documents_is_one_clear_refusal() -> None:
    """`docs` is a symlink the app user planted, and so is the cron file's directory: the
    dry run listed the same refusal once per document (five times, and again in each
    Remaining line), and the cron file's said "… is not a regular file (refused)". Now each
    refusal is listed once, with the applier's reason.

    The tree sits in a 0755 directory: under tmp_path's root-only parents the app user
    cannot read where `docs` points, so the documentation check (which reads each
    document's head) rightly cannot tell whether the documents exist and plans no fix
    there to refuse."""
    import shutil
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="readiness-planted-"))
    shared.chmod(0o755)
    try:
        _planted_link_above_the_documents(shared)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def _planted_link_above_the_documents(tmp_path: Path) -> None:
    import os

    root = write_app(tmp_path / "app")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "docs").symlink_to(elsewhere)
    (root / "cron").symlink_to(elsewhere)
    for path in [root, *root.rglob("*")]:
        os.lchown(path, 65534, 65534)
    inv = local_inventory(
        tmp_path / "inv.yml",
        root,
        backup_command="/usr/local/bin/app-backup",
        backup_cron_files=["cron/app"],
    )
    dry = run_cli(
        "remediate", "-i", str(inv), "-c", "documentation", "-c", "backup_restore",
        "--format", "json",
    )  # fmt: skip
    assert dry.returncode == 0, dry.stdout + dry.stderr
    refused = json.loads(dry.stdout)["hosts"][0]["refused"]
    docs = f"refused: {root}/docs is a symlink that nobody could have planted"
    [once] = refused["documentation"]
    assert once.startswith(docs), once
    cron = [r for r in refused["backup_restore"] if "/cron" in r]
    assert cron and all("(refused)" not in r for r in cron), cron
    assert any(f"{root}/cron is a symlink that nobody could have planted" in r for r in cron)


def test_the_alert_rules_written_for_any_job_name_pass_promtool(tmp_path: Path) -> None:
    """`prometheus_job: 'api "v2" \\ edge'`: the job went into the rules' PromQL as
    `up{job="api "v2" \\ edge"}`, a file `promtool check rules` (and so Prometheus, at its
    next reload) rejects. Now the label value is quoted as PromQL quotes strings."""
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: see the apt line of .ci/run"
    root = write_app(tmp_path / "app")
    job = 'api "v2" \\ edge'
    inv = local_inventory(tmp_path / "inv.yml", root, prometheus_job=job)
    done = run_cli(
        "remediate", "-i", str(inv), "-c", "monitoring", "--apply",
        "--audit-log", str(tmp_path / "audit.jsonl"),
    )  # fmt: skip
    assert "monitoring: applied" in done.stdout, done.stdout + done.stderr
    rules = root / "config" / "alerts.yml"
    check = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    board = json.loads((root / "dashboards" / "mahavishnu-overview.json").read_text())
    assert board["panels"][0]["targets"][0]["expr"] == 'sum(up{job="api \\"v2\\" \\\\ edge"})'
