"""``backup_roundtrip`` against a real PostgreSQL 15 cluster: dump, scratch restore, drop."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readiness.checks.backup_roundtrip import find_pg_binary
from readiness.errors import ProfileError
from readiness.model import CheckResult, Status
from tests.services.apps import audit_local, one, write_app
from tests.services.cli import local_inventory, validate_check
from tests.services.postgres import PgCluster

pytestmark = pytest.mark.postgres

CHECK = "backup_roundtrip"

# A backup job that runs pg_dump and then loses the second half of the file (disk full).
TRUNCATING_BACKUP = """\
import os, subprocess, sys
out = sys.argv[1]
env = dict(os.environ, PGPASSWORD=open("db.password").read().strip())
subprocess.run([sys.argv[2], "-Fc", "-f", out, "-h", sys.argv[3], "-p", sys.argv[4],
                "-U", sys.argv[5], sys.argv[6]], env=env, check=True, timeout=60)
data = open(out, "rb").read()
open(out, "wb").write(data[: len(data) // 2])
"""

# Plain SQL that turns to garbage half-way; with a NUL byte psql itself would stop silently.
GARBLED_SQL = "CREATE TABLE ok (id int);\nINSERT INTO ok VALUES (1);\n%s garbled ### not sql\n"
GARBLING_BACKUP = "import sys; open(sys.argv[1], 'w').write(sys.argv[2].replace('@NUL@', chr(0)))"


@dataclass(frozen=True)
class AppDb:
    cluster: PgCluster
    role: str
    password: str
    dbname: str

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.role, self.password, self.dbname)


@pytest.fixture
def app_db(pg_cluster: PgCluster) -> Iterator[AppDb]:
    """A database owned by a CREATEDB role, with 2 tables and rows in them."""
    suffix = secrets.token_hex(4)
    db = AppDb(pg_cluster, f"app_{suffix}", secrets.token_urlsafe(12), f"appdb_{suffix}")
    pg_cluster.create_role(db.role, db.password)
    pg_cluster.admin(f'ALTER ROLE "{db.role}" CREATEDB')
    pg_cluster.create_database(db.dbname, owner=db.role)
    with psycopg.connect(db.dsn, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE workflows (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("CREATE TABLE runs (id serial PRIMARY KEY, workflow int, state text)")
        conn.execute("INSERT INTO workflows (name) SELECT 'wf-' || g FROM generate_series(1, 25) g")
        conn.execute(
            "INSERT INTO runs (workflow, state) SELECT g % 25 + 1, 'completed' FROM generate_series(1, 140) g"
        )
    yield db
    pg_cluster.admin(f'DROP DATABASE IF EXISTS "{db.dbname}" WITH (FORCE)')
    pg_cluster.admin(f'DROP ROLE IF EXISTS "{db.role}"')


def scratch_databases(cluster: PgCluster) -> list[str]:
    rows = cluster.admin("SELECT datname FROM pg_database WHERE datname LIKE 'readiness_scratch_%'")
    return [str(r[0]) for r in rows]


def run(tmp_path: Path, db: AppDb, **section: Any) -> CheckResult:
    thresholds = section.pop("thresholds", {})
    app = write_app(tmp_path / "app", files={"db.password": db.password})
    profile = {
        "database_dsn": db.dsn,
        CHECK: {"enabled": True, **section},
        "thresholds": thresholds,
    }
    return one(audit_local(app, CHECK, profile))


def test_good_database_round_trips_ready_with_size_and_times(tmp_path: Path, app_db: AppDb) -> None:
    result = run(tmp_path, app_db)
    assert result.status is Status.READY, result.message
    assert "2 table(s), 165 row(s) match" in result.message
    d = result.details
    assert d["backup_bytes"] > 0
    assert d["backup_s"] >= 0 and d["restore_s"] > 0
    assert d["tables"]["public.workflows"] == {"source": 25, "restored": 25}
    assert d["tables"]["public.runs"] == {"source": 140, "restored": 140}
    scratch = d["scratch_database"]
    assert scratch["name"].startswith("readiness_scratch_") and scratch["dropped"] is True
    assert scratch["name"] not in scratch_databases(app_db.cluster)
    assert "role" not in scratch  # the app's own CREATEDB role restores: no throwaway role
    assert app_db.password not in result.message + str(d)


def test_truncated_backup_fails_with_restore_failed_and_scratch_is_dropped(
    tmp_path: Path, app_db: AppDb
) -> None:
    pg_dump = find_pg_binary("pg_dump")
    assert pg_dump is not None, "pg_dump must be installed"
    app = tmp_path / "app"
    (app / "bin").mkdir(parents=True)
    (app / "bin" / "backup.py").write_text(TRUNCATING_BACKUP)
    c = app_db.cluster
    command = [sys.executable, "bin/backup.py", "backups/db.dump", pg_dump]
    command += [c.host, str(c.port), app_db.role, app_db.dbname]
    (app / "backups").mkdir()
    result = run(tmp_path, app_db, method="command", command=command, dump_file="backups/db.dump")
    assert result.status is Status.NOT_READY, result.message
    assert "restore failed" in result.message
    name = result.details["scratch_database"]["name"]
    assert result.details["scratch_database"]["dropped"] is True
    assert name not in scratch_databases(c)


@pytest.mark.parametrize(
    ("noise", "reason"),
    [("", "is plain SQL, which readiness does not restore"), ("@NUL@", "NUL bytes")],
)
def test_garbled_plain_sql_backup_fails_with_restore_failed(
    tmp_path: Path, app_db: AppDb, noise: str, reason: str
) -> None:
    app = tmp_path / "app"
    command = [sys.executable, "-c", GARBLING_BACKUP, str(app / "db.sql"), GARBLED_SQL % noise]
    result = run(tmp_path, app_db, method="command", command=command, dump_file="db.sql")
    assert result.status is Status.NOT_READY
    assert "restore failed" in result.message
    assert reason in result.message
    assert scratch_databases(app_db.cluster) == []


def test_restore_slower_than_the_objective_is_not_ready(tmp_path: Path, app_db: AppDb) -> None:
    result = run(tmp_path, app_db, thresholds={"restore_max_seconds": 0})
    assert result.status is Status.NOT_READY
    assert "restore took" in result.message and "restore_max_seconds" in result.message


def test_failing_backup_command_is_not_ready_and_creates_no_scratch(
    tmp_path: Path, app_db: AppDb
) -> None:
    command = [sys.executable, "-c", "import sys; sys.stderr.write('disk full'); sys.exit(4)"]
    result = run(tmp_path, app_db, method="command", command=command, dump_file="x.dump")
    assert result.status is Status.NOT_READY
    assert "backup failed" in result.message and "disk full" in result.message
    assert "scratch_database" not in result.details


def test_round_trip_is_skipped_until_the_profile_enables_it(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    result = one(audit_local(app, CHECK, {"database_dsn": "postgresql://u:p@127.0.0.1:1/x"}))
    assert result.status is Status.SKIPPED
    assert "backup_roundtrip.enabled" in result.message


def test_misspelled_setting_is_refused_with_a_hint(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    profile = {CHECK: {"enabled": True, "dump_fle": "x"}}
    # refused when the profile is loaded, before any host is audited (docs/profiles.md)
    with pytest.raises(ProfileError, match=r"dump_fle.*did you mean 'dump_file'"):
        audit_local(app, CHECK, profile)


def test_a_plain_sql_dump_never_runs_psql_commands_on_the_controller(
    tmp_path: Path, app_db: AppDb
) -> None:
    """The host's backup command writes the dump: as plain SQL it was restored with `psql -f`,
    which ran its `\\!` line as a shell command on the controller (as root here). A real
    `readiness run-integration-tests`: the dump is refused, nothing runs."""
    import os
    import subprocess

    import yaml

    marker = tmp_path / "pwned"
    app = write_app(tmp_path / "app")
    sql = f"CREATE TABLE ok (id int);\n\\! id -u > {marker}\n"
    command = [sys.executable, "-c", GARBLING_BACKUP, str(app / "db.sql"), sql]
    section = {"enabled": True, "method": "command", "command": command, "dump_file": "db.sql"}
    profile = {"app_root": str(app), "database_dsn": app_db.dsn, CHECK: section}
    inventory = tmp_path / "inv.yml"
    host = {"ansible_connection": "local", "readiness": profile}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"local": host}}}))
    argv = [str(Path(sys.executable).parent / "readiness"), "run-integration-tests"]
    argv += ["-i", str(inventory), "-c", CHECK, "-q", "--store", "none"]
    res = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert not marker.exists(), f"the dump ran a shell command as uid {marker.read_text()}"
    assert res.returncode == 1, res.stdout + res.stderr
    assert "db.sql is plain SQL, which readiness does not restore" in res.stdout
    assert scratch_databases(app_db.cluster) == []


def test_a_backup_command_the_probe_refuses_to_run_is_undetermined_not_failed(
    tmp_path: Path, app_db: AppDb
) -> None:
    """The app's backup command in a tree anyone may write is not run as root (the probe
    refuses it): validate said NOT_READY "backup failed: refused: ..." with "Run the backup
    by hand and fix it", about a backup that never ran."""
    app = write_app(tmp_path / "app", files={"db.password": app_db.password})
    app.chmod(0o777)
    command = [sys.executable, "-c", "open('x.dump', 'w').write('data')"]
    section = {"enabled": True, "method": "command", "command": command, "dump_file": "x.dump"}
    inventory = local_inventory(
        tmp_path / "inv.yml", app, database_dsn=app_db.dsn, **{CHECK: section}
    )
    result = validate_check(inventory, CHECK)
    assert result["status"] == "degraded", result["message"]
    assert "cannot determine: the backup command was not run" in result["message"]
    assert "writable by group or others" in result["message"]
    assert not (app / "x.dump").exists()
    assert "scratch_database" not in result["details"]


# A backup job on a live database: pg_dump, then the app writes 2 more runs before the
# round trip counts the source (method: command counts after the backup, not in its snapshot).
LIVE_BACKUP = """\
import os, subprocess, sys
out, pg_dump, psql, host, port, user, db = sys.argv[1:8]
env = dict(os.environ, PGPASSWORD=open("db.password").read().strip())
common = ["-h", host, "-p", port, "-U", user]
subprocess.run([pg_dump, "-Fc", "-f", out, *common, db], env=env, check=True, timeout=60)
sql = "INSERT INTO runs (workflow, state) VALUES (1, 'running'), (2, 'running')"
subprocess.run([psql, "-X", "-q", *common, "-d", db, "-c", sql], env=env, check=True, timeout=60)
"""


@pytest.mark.parametrize(
    ("tolerance", "status", "says"),
    [
        # 2 of 142 rows (1.4 %) written after the dump: the check said "the backup is
        # incomplete", with no word of row_count_tolerance_pct
        (
            0,
            "not_ready",
            "row counts differ after restore (any difference): public.runs (142 → 140); the "
            "source was counted after the backup command, not in its snapshot",
        ),
        (
            1,
            "not_ready",
            "row counts differ after restore (more than 1 %): public.runs (142 → 140)",
        ),
        # within the tolerance: READY, but never "167 row(s) match"
        (
            2,
            "ready",
            "2 table(s), 167 row(s) match within the 2 % tolerance (1 table(s) differ)",
        ),
    ],
)
def test_a_live_databases_command_backup_is_judged_with_its_tolerance_and_says_so(
    tmp_path: Path, app_db: AppDb, tolerance: int, status: str, says: str
) -> None:
    pg_dump, psql = find_pg_binary("pg_dump"), find_pg_binary("psql")
    assert pg_dump is not None and psql is not None, "pg_dump and psql must be installed"
    app = write_app(tmp_path / "app", files={"db.password": app_db.password})
    (app / "bin").mkdir()
    (app / "bin" / "backup.py").write_text(LIVE_BACKUP)
    c = app_db.cluster
    command = [sys.executable, "bin/backup.py", "db.dump", pg_dump, psql]
    command += [c.host, str(c.port), app_db.role, app_db.dbname]
    section = {
        "enabled": True,
        "method": "command",
        "command": command,
        "dump_file": "db.dump",
        "row_count_tolerance_pct": tolerance,
    }
    inventory = local_inventory(
        tmp_path / "inv.yml", app, database_dsn=app_db.dsn, **{CHECK: section}
    )
    result = validate_check(inventory, CHECK)
    assert result["status"] == status, result["message"]
    assert says in result["message"]
    if status == "not_ready":
        assert any(
            "set backup_roundtrip.row_count_tolerance_pct" in r and "method: pg_dump" in r
            for r in result["recommendations"]
        ), result["recommendations"]
    else:
        assert result["details"]["within_tolerance"] == {
            "tolerance_pct": 2.0,
            "tables": ["public.runs"],
        }
    assert result["details"]["scratch_database"]["dropped"] is True
