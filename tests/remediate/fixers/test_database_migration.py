"""``remediate --run-migrations`` against a real PostgreSQL cluster and a real app command.

The app tree holds numbered ``migrations/NNNN_name.sql`` files and its own migration
command, ``migrate.py``: it reads the app's ``.env`` for the database URL, applies every
script not yet in ``schema_migrations`` (one transaction per script) and records it.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from readiness.model import Status
from readiness.remediate import remediate, render
from readiness.remediate.run import RemediationReport

from ...services.apps import GOOD_SECRET, LocalTestHost, audit_local, one, write_app
from ...services.postgres import PgCluster
from ...services.sshd import write_inventory
from ..helpers import tree_hash

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[3]
CHECK = "database_migration"

MIGRATE_PY = """\
import pathlib
import sys

import psycopg

env = dict(
    line.split("=", 1) for line in pathlib.Path(".env").read_text().splitlines() if "=" in line
)
with psycopg.connect(env["MAHAVISHNU_DATABASE__URL"], autocommit=True, connect_timeout=5) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY)")
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for script in sorted(pathlib.Path("migrations").glob("*.sql")):
        version = script.name.split("_", 1)[0]
        if version in done:
            continue
        with conn.transaction():
            conn.execute(script.read_text())
            conn.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))
        print("applied", script.name, flush=True)
print("migrations up to date", file=sys.stderr)
"""

SCRIPTS = {
    "migrations/0001_create_users.sql": "CREATE TABLE users (id int PRIMARY KEY);\n",
    "migrations/0002_add_email.sql": "ALTER TABLE users ADD COLUMN email text;\n",
    "migrations/0003_create_orders.sql": "CREATE TABLE orders (id int PRIMARY KEY);\n",
}


@pytest.fixture(scope="module")
def role(pg_cluster: PgCluster) -> tuple[str, str]:
    name, password = f"mig_{uuid.uuid4().hex[:8]}", f"pw-{secrets.token_urlsafe(18)}"
    pg_cluster.create_role(name, password)
    return name, password


@pytest.fixture
def db(pg_cluster: PgCluster, role: tuple[str, str]) -> Iterator[str]:
    """A fresh database owned by the app's role, with 0001 applied and recorded."""
    name = f"mig_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name, owner=role[0])
    with psycopg.connect(pg_cluster.dsn(role[0], role[1], name), autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY)")
        conn.execute("CREATE TABLE users (id int PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('0001')")
    yield name
    pg_cluster.admin(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _app(tmp_path: Path, dsn: str, **scripts: str) -> Path:
    files = {**SCRIPTS, "migrate.py": MIGRATE_PY}
    files.update({f"migrations/{k}.sql": v for k, v in scripts.items()})
    return write_app(tmp_path / "app", env={"MAHAVISHNU_DATABASE__URL": dsn}, files=files)


@pytest.fixture
def dsn(pg_cluster: PgCluster, role: tuple[str, str], db: str) -> str:
    """The app's database URL (TCP, the role's real password)."""
    return pg_cluster.dsn(role[0], role[1], db)


def _versions(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def _profile(root: Path, **extra: Any) -> dict[str, Any]:
    return {
        "app_root": str(root),
        "migration_command": [sys.executable, "migrate.py"],
        "thresholds": {"migration_timeout_s": 60},
        **extra,
    }


def _remediate(root: Path, tmp_path: Path, profile: dict[str, Any], **kw: Any) -> RemediationReport:
    return remediate(
        [LocalTestHost()],
        [CHECK],
        profile_overrides=profile,
        audit_log=tmp_path / "audit.jsonl",
        log_stream=io.StringIO(),
        **kw,
    )


def test_pending_migrations_run_with_the_apps_own_command_and_the_check_becomes_ready(
    dsn: str, role: tuple[str, str], tmp_path: Path
) -> None:
    root = _app(tmp_path, dsn)
    profile = _profile(root)
    before = one(audit_local(root, CHECK, profile))
    assert before.status is Status.NOT_READY
    assert (
        "2 pending migration(s): 0002_add_email.sql, 0003_create_orders.sql"
        in (before.details["problems"])
    )
    report = _remediate(root, tmp_path, profile, apply=True, run_migrations=True)
    outcome = report.hosts[0].outcomes[0]
    assert outcome.outcome == "applied", render(report)
    assert outcome.after is Status.READY
    assert "applied 0002_add_email.sql\napplied 0003_create_orders.sql" in outcome.output
    assert _versions(dsn) == ["0001", "0002", "0003"]
    assert one(audit_local(root, CHECK, profile)).status is Status.READY
    text = render(report)
    assert "| applied 0003_create_orders.sql" in text
    assert role[1] not in text + render(report, "json")  # the DSN's password never shows
    log = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["check"], e["outcome"]) for e in log] == [(CHECK, "applied")]
    assert log[0]["changes"] == [
        f"run the app's migrations: {sys.executable} migrate.py (in {root}, timeout 60 s)"
    ]
    assert report.exit_code == 0


def test_dry_run_shows_the_exact_command_and_runs_nothing(dsn: str, tmp_path: Path) -> None:
    root = _app(tmp_path, dsn)
    before = tree_hash(root)
    report = _remediate(root, tmp_path, _profile(root), run_migrations=True)
    assert [o.outcome for o in report.hosts[0].outcomes] == ["planned"]
    text = render(report)
    assert f"$ cd {root} && {sys.executable} migrate.py" in text
    assert "not revertible" in text
    assert _versions(dsn) == ["0001"]
    assert tree_hash(root) == before
    assert not (tmp_path / "audit.jsonl").exists()
    assert report.exit_code == 0


def test_a_failing_migration_command_is_reported_failed_and_never_as_reverted(
    dsn: str, tmp_path: Path
) -> None:
    """0002 applies and commits, 0003 is broken: 0002 stays, and the report says so."""
    root = _app(tmp_path, dsn, **{"0003_create_orders": "CREATE TABLE orders (id nosuchtype);\n"})
    report = _remediate(root, tmp_path, _profile(root), apply=True, run_migrations=True)
    outcome = report.hosts[0].outcomes[0]
    assert outcome.outcome == "failed", render(report)
    assert f"`{sys.executable} migrate.py` exited with 1" in outcome.message
    assert "cannot be reverted by remediate: migrations are the app's responsibility" in (
        outcome.message
    )
    assert 'type "nosuchtype" does not exist' in outcome.output
    assert "applied 0002_add_email.sql" in outcome.output
    assert _versions(dsn) == ["0001", "0002"]
    assert "reverted" not in render(report).replace("cannot be reverted", "")
    assert report.exit_code == 1
    log = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [e["outcome"] for e in log] == ["failed"]


def test_a_migration_command_that_overruns_its_timeout_is_killed_and_reported_failed(
    dsn: str, tmp_path: Path
) -> None:
    root = _app(tmp_path, dsn)
    marker = root / "still-running"
    tag = f"slow-migration-{uuid.uuid4().hex}"  # finds the command's process, whatever its pid
    code = f"import time; time.sleep(60); open({str(marker)!r}, 'w')  # {tag}"
    slow = [sys.executable, "-c", code]
    profile = _profile(root, migration_command=slow, thresholds={"migration_timeout_s": 1})
    started = time.monotonic()
    report = _remediate(root, tmp_path, profile, apply=True, run_migrations=True)
    outcome = report.hosts[0].outcomes[0]
    assert outcome.outcome == "failed"
    assert "timed out after 1 s and was killed" in outcome.message
    assert time.monotonic() - started < 30  # killed at its timeout, not waited for (60 s)
    # the process group was killed, not left running (a dying process may take a moment)
    deadline = time.monotonic() + 10
    while _running(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _running(tag) == []
    assert not marker.exists()
    assert _versions(dsn) == ["0001"]


def _running(tag: str) -> list[int]:
    """Live processes whose command line holds ``tag`` (a zombie's command line is empty)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_without_the_flag_pending_migrations_are_reported_with_the_advice_to_rerun_with_it(
    dsn: str, tmp_path: Path
) -> None:
    root = _app(tmp_path, dsn)
    report = _remediate(root, tmp_path, _profile(root), apply=True)
    host = report.hosts[0]
    assert host.outcomes == ()
    left = host.plan.unfixable[CHECK]
    assert any(p.startswith("2 pending migration(s)") for p in left)
    advice = f"re-run with it to run `{sys.executable} migrate.py` in {root} on the host"
    refused = host.plan.refused[CHECK]
    assert any("only run with --run-migrations" in n and advice in n for n in refused), refused
    assert f"  - {CHECK}: refused: 2 pending migration(s)" in render(report)
    assert _versions(dsn) == ["0001"]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (None, "set the profile key migration_command to the app's own migration command"),
        ("alembic upgrade head", "must be an argv list such as"),
    ],
)
def test_with_the_flag_but_no_usable_migration_command_the_profile_key_is_named(
    dsn: str, tmp_path: Path, command: str | None, says: str
) -> None:
    root = _app(tmp_path, dsn)
    profile = _profile(root, migration_command=command)
    report = _remediate(root, tmp_path, profile, apply=True, run_migrations=True)
    assert report.hosts[0].outcomes == ()
    notes = [n for n in report.hosts[0].plan.refused[CHECK] if "were not run" in n]
    assert len(notes) == 1 and says in notes[0], report.hosts[0].plan.refused
    assert f"  - {CHECK}: refused: " in render(report)
    assert "(pending migrations were not run" in render(report)
    assert _versions(dsn) == ["0001"]


def test_the_invoke_task_passes_run_migrations_through_to_the_plan(
    dsn: str, tmp_path: Path
) -> None:
    root = _app(tmp_path, dsn)
    inv = write_inventory(
        tmp_path / "inventory.yml",
        {"app1": {"ansible_connection": "local", "readiness": _profile(root)}},
    )
    argv = [str(REPO / ".venv" / "bin" / "invoke"), "remediate", "--hosts", "app1"]
    argv += ["-i", str(inv), "-c", CHECK, "--run-migrations", "--format", "json"]
    res = subprocess.run(
        argv,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
        check=False,
    )
    assert res.returncode == 0, res.stderr
    fix = json.loads(res.stdout)["hosts"][0]["fixes"][0]
    assert (fix["outcome"], fix["description"]) == ("planned", "run the pending migrations")
    assert fix["changes"] == [
        f"run the app's migrations: {sys.executable} migrate.py (in {root}, timeout 60 s)"
    ]
    assert _versions(dsn) == ["0001"]


LEAKY_MIGRATE_PY = (
    MIGRATE_PY
    + """\
print("connecting with password=" + env["MAHAVISHNU_AUTH__SECRET"], flush=True)
print("api token is", env["MAHAVISHNU_AUTH__SECRET"], file=sys.stderr, flush=True)
"""
)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_secret_the_migration_command_prints_never_reaches_output_report_or_audit_log(
    dsn: str, role: tuple[str, str], tmp_path: Path, fmt: str
) -> None:
    """The command prints the env file's secret (bare and as ``password=``): the host
    run's redactor masks the fix's output before the report and the audit log see it."""
    root = _app(tmp_path, dsn)
    (root / "migrate.py").write_text(LEAKY_MIGRATE_PY)
    secret = GOOD_SECRET
    inv = write_inventory(
        tmp_path / "inventory.yml",
        {"app1": {"ansible_connection": "local", "readiness": _profile(root)}},
    )
    audit_log = tmp_path / "audit.jsonl"
    argv = [str(REPO / ".venv" / "bin" / "readiness"), "remediate", "--hosts", "app1"]
    argv += ["-i", str(inv), "-c", CHECK, "--run-migrations", "--apply", "--yes", "-q"]
    argv += ["--audit-log", str(audit_log), "--store", "none", "--format", fmt]
    res = subprocess.run(
        argv,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert _versions(dsn) == ["0001", "0002", "0003"]  # the command really ran
    assert "applied 0003_create_orders.sql" in res.stdout  # its output is reported ...
    assert "connecting with password=***" in res.stdout  # ... with the secret masked
    assert "api token is ***" in res.stdout
    log = audit_log.read_text()
    assert json.loads(log.splitlines()[0])["outcome"] == "applied"
    for text in (res.stdout, res.stderr, log):
        assert secret not in text
        assert role[1] not in text
