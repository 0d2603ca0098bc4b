"""``backup_restore``: real backup files, real write tests, real cron files and crontabs."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from readiness import probe
from readiness.appconfig import AppConfig
from readiness.checks.backup_restore import (
    CRON_FACT,
    DIR_FACT,
    DOCS_FACT,
    FILES_FACT,
    TIMERS_FACT,
)
from readiness.model import Status
from readiness.profile import merge_layers
from readiness.registry import CheckContext, default_profile, get
from tests.services.apps import audit_local, one
from tests.services.cli import run_cli

RUNBOOK = "# Backup and restore\n\nRun the dump; restore with psql.\n"
HOUR = 3600.0


@pytest.fixture
def token() -> str:
    """A schedule pattern nothing else on this machine's crontabs can match."""
    return f"readiness-sched-{uuid.uuid4().hex}"


def _backup(root: Path, name: str, *, age_h: float = 1.0, size: int = 64) -> Path:
    path = root / "backups" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age_h * HOUR
    os.utime(path, (when, when))
    return path


def _app(root: Path, *, runbook: bool = True, cron: str | None = None) -> Path:
    (root / "backups").mkdir(parents=True, exist_ok=True)
    if runbook:
        doc = root / "docs" / "runbooks" / "backup-restore.md"
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(RUNBOOK)
    if cron is not None:
        (root / "cron").write_text(cron)
    return root


def _audit(root: Path, token: str, **profile: Any) -> Any:
    base = {"backup_schedule_pattern": token, "backup_cron_files": ["cron"]}
    return one(audit_local(root, "backup_restore", {**base, **profile}))


def test_recent_scheduled_documented_backups_are_ready(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path, cron=f"0 2 * * * root /usr/local/bin/{token} --all\n")
    _backup(root, "db-new.sql.gz", age_h=2)
    _backup(root, "db-old.sql.gz", age_h=26)
    r = _audit(root, token)
    assert r.status is Status.READY, r.message
    assert r.details["backup_dir"]["writable"] is True
    assert r.details["schedule"]["sources"] == ["cron"]
    assert r.details["schedule"]["cron"][0]["source"] == str(root / "cron")
    recent = r.details["backups"]["recent"]
    assert [b["name"] for b in recent] == ["db-new.sql.gz", "db-old.sql.gz"]
    assert recent[0]["size"] == 64
    assert 1.9 < recent[0]["age_hours"] < 2.1
    assert r.details["documentation"]["found"] == ["runbooks/backup-restore.md"]


def test_a_schedule_is_found_by_the_profiles_backup_command(tmp_path: Path, token: str) -> None:
    command = f"/opt/{token}/bin/dump"
    root = _app(tmp_path, cron=f"30 1 * * * {command}\n")
    _backup(root, "a.dump")
    r = _audit(root, f"{token}-never-matches", backup_command=command)
    assert r.status is Status.READY, r.message
    assert r.details["schedule"]["cron"][0]["line"] == f"30 1 * * * {command}"


def test_a_declared_schedule_in_the_profile_counts(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    _backup(root, "a.bak")
    r = _audit(root, token, backup_schedule="Velero, daily at 02:00")
    assert r.status is Status.READY, r.message
    assert r.details["schedule"]["sources"] == ["profile"]
    assert r.details["schedule"]["declared"] == "Velero, daily at 02:00"


@pytest.fixture
def nobody_crontab() -> Iterator[None]:
    """Lets a test install a real crontab for ``nobody``; the previous one is restored."""
    before = subprocess.run(["crontab", "-u", "nobody", "-l"], capture_output=True, check=False)
    yield
    if before.returncode == 0:
        subprocess.run(["crontab", "-u", "nobody", "-"], input=before.stdout, check=True)
    else:
        subprocess.run(["crontab", "-u", "nobody", "-r"], capture_output=True, check=False)


def test_a_real_user_crontab_in_the_cron_spool_is_found(
    tmp_path: Path, token: str, nobody_crontab: None
) -> None:
    line = f"15 3 * * * /usr/local/bin/{token}"
    subprocess.run(["crontab", "-u", "nobody", "-"], input=f"{line}\n".encode(), check=True)
    root = _app(tmp_path)
    _backup(root, "a.sql")
    r = _audit(root, token, backup_cron_files=[])
    assert r.status is Status.READY, r.message
    assert r.details["schedule"]["cron"] == [
        {"source": "/var/spool/cron/crontabs/nobody", "line": line}
    ]


def test_no_schedule_anywhere_degrades_with_a_cron_example(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    _backup(root, "a.sql")
    r = _audit(root, token)
    assert r.status is Status.DEGRADED
    assert r.details["schedule"]["sources"] == []
    assert r.recommendations[0].startswith("Schedule regular backups using cron or similar")
    assert "0 2 * * *" in r.recommendations[0]


def test_no_backups_is_not_ready(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    (root / "backups" / "notes.txt").write_text("not a backup")
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.NOT_READY
    assert r.details["backups"]["found"] == 0
    assert r.recommendations[0].startswith("Create initial backup before production deployment")


def test_a_stale_newest_backup_degrades(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    _backup(root, "a.sql.gz", age_h=48)
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.DEGRADED
    assert 47.9 < r.details["backups"]["newest"]["age_hours"] < 48.1
    assert "48.0 h old" in r.message


def test_the_age_threshold_comes_from_the_profile(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    _backup(root, "a.sql.gz", age_h=48)
    r = _audit(root, token, backup_schedule="cron", thresholds={"backup_max_age_hours": 72})
    assert r.status is Status.READY, r.message


def test_an_empty_newest_backup_is_not_ready(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    _backup(root, "new.sql", age_h=1, size=0)
    _backup(root, "old.sql", age_h=5)
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.NOT_READY
    assert "new.sql is empty" in r.message
    assert r.details["backups"]["newest"]["name"] == "old.sql"


def test_an_empty_older_backup_degrades(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    _backup(root, "new.sql", age_h=1)
    _backup(root, "old.sql", age_h=5, size=0)
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.DEGRADED
    assert "old.sql" in r.message


def test_the_recent_backup_listing_is_bounded(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    for i in range(15):
        _backup(root, f"nightly/{i:02d}.tar.gz", age_h=i + 1)
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.READY, r.message
    assert r.details["backups"]["found"] == 15
    assert len(r.details["backups"]["recent"]) == 10
    assert r.details["backups"]["recent"][0]["name"] == "nightly/00.tar.gz"


def test_a_missing_backup_directory_is_not_ready(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    r = _audit(root, token, backup_dir="no-such-dir", backup_schedule="cron")
    assert r.status is Status.NOT_READY
    assert "does not exist" in r.message
    assert f"mkdir -p {root}/no-such-dir" in r.recommendations[0]


def test_a_backup_dir_that_is_a_regular_file_is_not_ready(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path)
    (root / "backups.tar").write_text("oops")
    r = _audit(root, token, backup_dir="backups.tar", backup_schedule="cron")
    assert r.status is Status.NOT_READY
    assert "is not a directory" in r.message


@pytest.fixture
def immutable_dir(tmp_path: Path) -> Iterator[Path]:
    """A real directory even root cannot create files in (ext4 immutable flag)."""
    path = tmp_path / "app" / "backups"
    path.mkdir(parents=True)
    _backup(tmp_path / "app", "a.sql")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    yield path
    subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_unwritable_backup_directory_is_not_ready(immutable_dir: Path, token: str) -> None:
    """Tests run as root, so write permission bits would not stop us: the dir is immutable."""
    root = _app(immutable_dir.parent)
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.NOT_READY
    assert "is not writable" in r.message
    assert "Operation not permitted" in r.details["backup_dir"]["write_error"]
    assert any("write permissions" in x for x in r.recommendations)
    assert not any(p.name.startswith(".readiness") for p in immutable_dir.iterdir())


def test_docs_mentioning_backup_and_restore_in_their_content_count(
    tmp_path: Path, token: str
) -> None:
    root = _app(tmp_path, runbook=False)
    (root / "docs").mkdir()
    (root / "docs" / "operations.md").write_text(
        "# Ops\n\n## Backups\nNightly.\n\n## Restoring\npsql < dump\n"
    )
    _backup(root, "a.sql")
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.READY, r.message
    assert r.details["documentation"]["found"] == ["operations.md"]


def test_docs_that_never_mention_restore_degrade(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path, runbook=False)
    (root / "docs").mkdir()
    (root / "docs" / "backup.md").write_text("We take backups nightly.\n")
    _backup(root, "a.sql")
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.DEGRADED
    assert "backup-restore.md" in r.recommendations[0]


def test_a_missing_docs_directory_degrades(tmp_path: Path, token: str) -> None:
    root = _app(tmp_path, runbook=False)
    _backup(root, "a.sql")
    r = _audit(root, token, backup_schedule="cron")
    assert r.status is Status.DEGRADED
    assert "does not exist" in r.message


def test_the_example_deployment_is_honestly_not_ready_without_backups() -> None:
    """Committed files get a fresh mtime at checkout, so the example ships no backups."""
    report = audit_local(
        Path(__file__).resolve().parents[1] / "examples" / "mahavishnu", "backup_restore"
    )
    r = one(report)
    assert r.status is Status.NOT_READY
    assert r.details["backups"]["found"] == 0
    assert r.details["backup_dir"]["writable"] is True
    assert "runbooks/backup-restore.md" in r.details["documentation"]["found"]


# Pure logic below: judging facts without a host.


def _judge(facts: dict[str, Any], *, now: float | None, **profile: Any) -> Any:
    merged = merge_layers(default_profile(), [("test", {"app_root": "/srv/app", **profile})])
    ctx = CheckContext(
        host="h",
        profile=merged,
        facts=facts,
        app=AppConfig(),
        meta={} if now is None else {"now": now},
    )
    return get("backup_restore").evaluate(ctx)


def _facts(mtime: float, *, timers: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = {"name": "a.sql", "type": "file", "size": 10, "mtime": mtime}
    return {
        DIR_FACT: {"exists": True, "type": "dir", "write_ok": True, "mode": 0o750},
        FILES_FACT: {"exists": True, "type": "dir", "entries": [entry]},
        CRON_FACT: {"entries": [], "errors": []},
        TIMERS_FACT: timers or {"available": False, "error": "no systemd"},
        DOCS_FACT: {
            "exists": True,
            "type": "dir",
            "entries": [{"name": "backup-restore.md", "type": "file"}],
        },
    }


def test_backup_age_is_judged_on_the_hosts_clock_not_the_controllers() -> None:
    mtime = 1_000_000.0
    fresh = _judge(_facts(mtime), now=mtime + 2 * HOUR, backup_schedule="cron")
    stale = _judge(_facts(mtime), now=mtime + 30 * HOUR, backup_schedule="cron")
    assert fresh.details["backups"]["newest"]["age_hours"] == 2.0
    assert stale.details["backups"]["newest"]["age_hours"] == 30.0
    assert fresh.status is Status.READY, fresh.message
    assert stale.status is Status.DEGRADED


def test_an_unknown_host_clock_is_never_guessed_ready() -> None:
    out = _judge(_facts(1_000_000.0), now=None, backup_schedule="cron")
    assert out.status is Status.DEGRADED
    assert "clock was not reported" in out.message


def test_a_systemd_timer_counts_as_a_schedule() -> None:
    timers = {
        "available": True,
        "lines": ["Tue 2025-01-07 02:00:00 UTC 5h left - - pg-backup.timer pg-backup.service"],
    }
    out = _judge(_facts(1_000_000.0, timers=timers), now=1_000_000.0 + HOUR)
    assert out.details["schedule"]["sources"] == ["systemd timer"]
    assert out.details["schedule"]["timers"] == timers["lines"]


def test_an_invalid_schedule_pattern_is_refused_with_the_profile() -> None:
    """Refused before any host is contacted (it was each host's NOT_READY finding);
    tests/test_profile.py has the command's exit 2."""
    from readiness.errors import ProfileError

    with pytest.raises(ProfileError, match="'backup_schedule_pattern' must be a valid regular"):
        _judge(_facts(1_000_000.0), now=1_000_000.0, backup_schedule_pattern="back(up")


def test_a_password_on_a_cron_line_never_reaches_the_result(tmp_path: Path, token: str) -> None:
    """Cron lines are shown in the details; a secret assignment on one is masked there."""
    canary = f"canary-{uuid.uuid4().hex}"
    root = _app(tmp_path, cron=f"0 2 * * * root PGPASSWORD={canary} /usr/local/bin/{token}\n")
    _backup(root, "db-new.sql.gz", age_h=2)
    r = _audit(root, token)
    assert r.status is Status.READY, r.message
    shown = repr((r.message, r.details, r.recommendations))
    assert token in shown and "PGPASSWORD=***" in shown
    assert canary not in shown


def _validate(root: Path, inv: Path, **profile: Any) -> dict[str, Any]:
    """A real ``readiness validate -c backup_restore --format json`` of the local app."""
    host = {"ansible_connection": "local", "readiness": {"app_root": str(root), **profile}}
    inv.write_text(json.dumps({"all": {"hosts": {"local": host}}}))
    res = run_cli("validate", "-i", str(inv), "-c", "backup_restore", "--format", "json")
    assert res.returncode in (0, 1), res.stderr
    result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
    return result


def test_the_newest_of_more_backups_than_the_listing_holds_is_judged(tmp_path: Path) -> None:
    """600 hourly dumps (more than the 500 entries a listing holds): the listing kept the
    first 500 by name, the oldest, and validate said DEGRADED "newest non-empty backup
    mahavishnu-00499.sql.gz is 100.5 h old" beside a dump made half an hour ago."""
    root = _app(tmp_path / "app")
    for i in range(600):
        _backup(root, f"mahavishnu-{i:05d}.sql.gz", age_h=600 - i - 0.5)
    result = _validate(root, tmp_path / "inv.yml", backup_schedule="cron, hourly (elsewhere)")
    assert result["status"] == "ready", result["message"]
    backups = result["details"]["backups"]
    assert backups["newest"]["name"] == "mahavishnu-00599.sql.gz"
    assert backups["newest"]["age_hours"] < 1
    assert backups["found"] == 600
    assert [b["name"] for b in backups["recent"][:2]] == [
        "mahavishnu-00599.sql.gz",
        "mahavishnu-00598.sql.gz",
    ]


def test_a_newest_listing_keeps_the_most_recent_and_says_when_it_stopped_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's `newest` listing: the `max_entries` most recently modified entries, in
    that order, with the count matched; past NEWEST_SCAN it stops and says so (scan_cut)."""
    root = _app(tmp_path)
    for i in range(12):
        _backup(root, f"b-{i:02d}.sql", age_h=12 - i)
    spec = {"op": "list", "path": str(root / "backups"), "patterns": ["*.sql"]}
    got = probe.op_list({**spec, "newest": True, "max_entries": 3})
    assert [e["name"] for e in got["entries"]] == ["b-11.sql", "b-10.sql", "b-09.sql"]
    assert (got["matched"], got["truncated"], got.get("scan_cut")) == (12, True, None)
    assert [e["name"] for e in probe.op_list({**spec, "max_entries": 3})["entries"]] == [
        "b-00.sql",
        "b-01.sql",
        "b-02.sql",
    ]
    monkeypatch.setattr(probe, "NEWEST_SCAN", 5)
    got = probe.op_list({**spec, "newest": True, "max_entries": 3})
    assert (got["matched"], got["truncated"], got["scan_cut"]) == (5, True, True)
    assert [e["name"] for e in got["entries"]] == ["b-04.sql", "b-03.sql", "b-02.sql"]


@pytest.mark.parametrize("name", ["db-2026-11-28.sql.zst", "db.sql.xz", "db.backup", "db.tgz"])
def test_a_compressed_dump_is_a_backup(tmp_path: Path, name: str) -> None:
    """`pg_dump | zstd > db.sql.zst` (or xz, pgAdmin's .backup, a .tgz archive) is a backup:
    validate said NOT_READY "no backups in … matching *.sql, *.sql.gz, …"."""
    root = _app(tmp_path / "app")
    _backup(root, name, age_h=2)
    result = _validate(root, tmp_path / "inv.yml", backup_schedule="cron, nightly (elsewhere)")
    assert result["status"] == "ready", result["message"]
    assert result["details"]["backups"]["newest"]["name"] == name


def test_a_cron_line_cut_short_by_an_unescaped_percent_is_no_schedule(
    tmp_path: Path, token: str
) -> None:
    """crontab(5): an unescaped '%' ends the command (the rest becomes its input). A line
    running `dump > /b/db-$(date +%F).sql` runs `dump > /b/db-$(date +` and never makes a
    backup; it counted as the schedule (READY). Escaped as `\\%`, it is one."""
    command = f"/opt/{token}/dump > /var/backups/db-$(date +%F).sql"
    root = _app(tmp_path / "app", cron=f"0 2 * * * {command}\n")
    _backup(root, "db.sql")
    broken = _validate(
        root, tmp_path / "inv.yml", backup_command=command, backup_cron_files=["cron"]
    )
    assert broken["status"] == "degraded", broken["message"]
    assert "stops at an unescaped '%'" in broken["message"]
    assert broken["details"]["schedule"]["sources"] == []
    by_pattern = _validate(root, tmp_path / "inv.yml", backup_cron_files=["cron"])  # "backup"
    assert by_pattern["status"] == "degraded", by_pattern["message"]
    assert "stops at an unescaped '%'" in by_pattern["message"]
    (root / "cron").write_text(f"0 2 * * * {command.replace('%', chr(92) + '%')}\n")
    fixed = _validate(
        root, tmp_path / "inv.yml", backup_command=command, backup_cron_files=["cron"]
    )
    assert fixed["status"] == "ready", fixed["message"]
    assert fixed["details"]["schedule"]["sources"] == ["cron"]


def test_a_nightly_pg_dump_is_a_backup_schedule(tmp_path: Path) -> None:
    """`0 2 * * * postgres pg_dump -Fc mahavishnu > …` (or restic, borgmatic, wal-g…) is
    a backup schedule though the line never says "backup": validate said DEGRADED "no
    backup schedule found"."""
    root = _app(tmp_path / "app")
    _backup(root, "mahavishnu.dump", age_h=3)
    line = "0 2 * * * postgres pg_dump -Fc mahavishnu -f /srv/dumps/mahavishnu.dump"
    (root / "cron").write_text(line + "\n")
    result = _validate(root, tmp_path / "inv.yml", backup_cron_files=["cron"])
    schedule = result["details"]["schedule"]
    assert "cron" in schedule["sources"], schedule
    assert any(e["line"] == line for e in schedule["cron"]), schedule
    assert result["status"] == "ready", result["message"]


def test_a_disaster_recovery_runbook_documents_backup_and_restore(tmp_path: Path) -> None:
    """docs/runbooks/disaster-recovery.md, recovering the database from the nightly
    backups, is the procedure the seed asks for ("backup/restore documentation exists"):
    validate said DEGRADED "docs directory … has no document describing both backup and
    restore"."""
    root = _app(tmp_path / "app", runbook=False)
    runbook = root / "docs" / "runbooks" / "disaster-recovery.md"
    runbook.parent.mkdir(parents=True)
    runbook.write_text(
        "# Disaster recovery\n\nNightly backups land in /srv/dumps. To recover the database,"
        " stop the service and load the newest dump into a fresh database.\n"
    )
    _backup(root, "mahavishnu.dump", age_h=3)
    result = _validate(root, tmp_path / "inv.yml", backup_schedule="cron, nightly")
    assert result["status"] == "ready", result["message"]
    assert result["details"]["documentation"]["found"] == ["runbooks/disaster-recovery.md"]


def test_the_ready_message_says_how_the_schedule_was_known(tmp_path: Path, token: str) -> None:
    """Through `readiness validate`: a schedule only declared in the profile was READY
    "scheduled" like a cron line found on the host."""
    from tests.services.cli import local_inventory, validate_check

    results = {}
    for name, cron, declared in (
        ("cron", f"0 2 * * * root /usr/local/bin/{token}\n", None),
        ("declared", None, "Velero, daily at 02:00"),
    ):
        root = _app(tmp_path / name, cron=cron)
        _backup(root, "a.dump")
        profile: dict[str, Any] = {"backup_schedule_pattern": token, "backup_cron_files": ["cron"]}
        if declared:
            profile["backup_schedule"] = declared
        inventory = local_inventory(tmp_path / f"{name}.yml", root, **profile)
        results[name] = validate_check(inventory, "backup_restore")
    assert results["cron"]["status"] == "ready", results["cron"]["message"]
    assert results["cron"]["message"] == (
        "Backups are writable, scheduled (by cron), recent and documented"
    )
    assert results["declared"]["status"] == "ready", results["declared"]["message"]
    assert results["declared"]["message"] == (
        "Backups are writable, scheduled (as declared in the profile, not seen on the host), "
        "recent and documented"
    )
