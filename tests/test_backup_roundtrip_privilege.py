"""``backup_roundtrip`` never runs a host's archive with more privilege than the app has.

The app's user controls what its database (so its dump) holds. A real PostgreSQL 15, a real
``pg_dump -Fc`` of it, a real ``readiness validate -c backup_roundtrip --format json``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from readiness.checks.backup_roundtrip import find_pg_binary
from tests.services.apps import write_app
from tests.services.cli import LiveCli, run_cli
from tests.services.postgres import PgCluster, Role

pytestmark = pytest.mark.postgres

CHECK = "backup_roundtrip"

# What the app's user puts in its own database: a CHECK constraint that pg_restore evaluates
# for every row it loads (COPY), as the role it restores as. In the app's database the
# function does nothing; in a scratch database it tries to get a shell on the DB server,
# to make the app's role a superuser and to let it run programs (each attempt's error
# swallowed, so the restore itself succeeds and the counts are read too).
HOSTILE = """
CREATE FUNCTION public.evil(i integer) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  IF pg_catalog.current_database() NOT LIKE 'readiness\\_scratch\\_%' THEN RETURN true; END IF;
  BEGIN
    EXECUTE pg_catalog.format('COPY (SELECT 1) TO PROGRAM %L', 'id -un > {marker}');
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN
    RESET SESSION AUTHORIZATION;
    RESET ROLE;
    EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', '{app}');
  EXCEPTION WHEN OTHERS THEN NULL; END;
  BEGIN
    EXECUTE pg_catalog.format('GRANT pg_execute_server_program TO %I', '{app}');
  EXCEPTION WHEN OTHERS THEN NULL; END;
  RETURN true;
END $f$;
CREATE TABLE public.jobs (id integer PRIMARY KEY CHECK (public.evil(id)), name text);
INSERT INTO public.jobs SELECT g, 'job-' || g FROM generate_series(1, 12) g;
"""

NORMAL = """
CREATE TABLE public.workflows (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO public.workflows (name) SELECT 'wf-' || g FROM generate_series(1, 25) g;
"""


@dataclass(frozen=True)
class AppDb:
    cluster: PgCluster
    role: Role
    dbname: str

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.role.name, self.role.password, self.dbname)


def _app_db(cluster: PgCluster, content: str) -> Iterator[AppDb]:
    """The app's own role (no CREATEDB: the admin_dsn makes the scratch database) and its
    database, filled by the app's role itself."""
    role = cluster.new_role("app")
    db = AppDb(cluster, role, f"appdb_{secrets.token_hex(4)}")
    cluster.create_database(db.dbname, owner=role.name)
    with psycopg.connect(db.dsn, connect_timeout=10) as conn:
        conn.execute(content.replace("{app}", role.name))
    try:
        yield db
    finally:
        cluster.admin(f'DROP DATABASE IF EXISTS "{db.dbname}" WITH (FORCE)')
        cluster.admin(f'DROP ROLE IF EXISTS "{role.name}"')


@pytest.fixture
def marker(pg_cluster: PgCluster) -> Path:
    """Where the archive's shell command would write: a dir the server's OS user can write."""
    return pg_cluster.root / f"pwned-{secrets.token_hex(4)}"


@pytest.fixture
def hostile_db(pg_cluster: PgCluster, marker: Path) -> Iterator[AppDb]:
    yield from _app_db(pg_cluster, HOSTILE.replace("{marker}", str(marker)))


@pytest.fixture
def normal_db(pg_cluster: PgCluster) -> Iterator[AppDb]:
    yield from _app_db(pg_cluster, NORMAL)


@pytest.fixture
def admin_role(pg_cluster: PgCluster, request: pytest.FixtureRequest) -> Iterator[Role]:
    """A login role with the attributes the test's parameter names (default SUPERUSER)."""
    attributes = getattr(request, "param", "SUPERUSER")
    role = pg_cluster.new_role("admin")
    pg_cluster.admin(f'ALTER ROLE "{role.name}" {attributes}')
    yield role
    pg_cluster.admin(f'DROP ROLE IF EXISTS "{role.name}"')


def _leftovers(cluster: PgCluster) -> list[str]:
    rows = cluster.admin(
        "SELECT datname FROM pg_database WHERE datname LIKE 'readiness\\_scratch\\_%'"
        " UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'readiness\\_%'"
    )
    return [str(r[0]) for r in rows]


def _privileged(cluster: PgCluster) -> list[str]:
    """Superusers, and every membership in a role."""
    rows = cluster.admin(
        "SELECT rolname FROM pg_roles WHERE rolsuper UNION ALL"
        " SELECT m.rolname || ' in ' || r.rolname FROM pg_auth_members a"
        " JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member ORDER BY 1"
    )
    return [str(r[0]) for r in rows]


def _inventory(tmp_path: Path, db: AppDb, admin: Role, **section: Any) -> Path:
    """The local app, its scratch database made by ``admin`` (its DSN in admin_dsn)."""
    app = write_app(tmp_path / "app")
    section = {
        "enabled": True,
        "admin_dsn": db.cluster.dsn(admin.name, admin.password, "postgres"),
        **section,
    }
    profile = {"app_root": str(app), "database_dsn": db.dsn, CHECK: section}
    inventory = tmp_path / "inventory.yml"
    host = {"ansible_connection": "local", "readiness": profile}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"local": host}}}))
    return inventory


def _validate(tmp_path: Path, db: AppDb, admin: Role) -> tuple[dict[str, Any], str]:
    """``readiness validate -c backup_roundtrip --format json`` (see :func:`_inventory`)."""
    inventory = _inventory(tmp_path, db, admin)
    res = run_cli("validate", "-i", str(inventory), "-c", CHECK, "--format", "json")
    assert res.returncode in (0, 1), res.stdout + res.stderr
    result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
    shown = res.stdout + res.stderr
    assert admin.password not in shown and db.role.password not in shown
    return result, shown


@pytest.mark.parametrize("admin_role", ["SUPERUSER", "CREATEDB CREATEROLE"], indirect=True)
def test_a_hostile_archive_restored_with_a_privileged_admin_gains_nothing(
    tmp_path: Path, pg_cluster: PgCluster, hostile_db: AppDb, admin_role: Role, marker: Path
) -> None:
    """Before: pg_restore ran as admin_dsn's role, so the archive's CHECK function ran
    `COPY … TO PROGRAM` on the DB server as a superuser (the marker held "postgres") and
    made the app's role a superuser; as a CREATEROLE admin it granted the app's role
    pg_execute_server_program. Now the archive runs as a throwaway role that owns only the
    scratch database: every attempt fails, and the role and the database are gone after."""
    privileged = _privileged(pg_cluster)
    result, _ = _validate(tmp_path, hostile_db, admin_role)
    assert not marker.exists(), f"the archive ran a shell command as {marker.read_text()!r}"
    assert _privileged(pg_cluster) == privileged
    assert _leftovers(pg_cluster) == []
    assert result["status"] == "ready", result["message"]
    scratch = result["details"]["scratch_database"]
    assert scratch["dropped"] is True and scratch["role_dropped"] is True
    assert scratch["role"].startswith("readiness_restore_")
    assert result["details"]["tables"]["public.jobs"] == {"source": 12, "restored": 12}


def test_a_normal_archive_round_trips_ready_with_a_superuser_admin(
    tmp_path: Path, pg_cluster: PgCluster, normal_db: AppDb, admin_role: Role
) -> None:
    result, _ = _validate(tmp_path, normal_db, admin_role)
    assert result["status"] == "ready", result["message"]
    assert "1 table(s), 25 row(s) match" in result["message"]
    assert result["details"]["tables"]["public.workflows"] == {"source": 25, "restored": 25}
    assert result["details"]["scratch_database"]["role"].startswith("readiness_restore_")
    assert _leftovers(pg_cluster) == []


@pytest.mark.parametrize(
    "admin_role",
    ["CREATEDB BYPASSRLS", "CREATEDB REPLICATION"],
    indirect=True,
)
def test_a_privileged_admin_that_cannot_create_a_role_restores_nothing(
    tmp_path: Path, pg_cluster: PgCluster, hostile_db: AppDb, admin_role: Role
) -> None:
    """A privileged admin_dsn without CREATEROLE: readiness cannot make the throwaway role,
    and does not restore as the privileged one; the check says so, and what to change."""
    result, _ = _validate(tmp_path, hostile_db, admin_role)
    assert result["status"] == "degraded", result["message"]
    assert "could not be verified safely" in result["message"]
    assert admin_role.name in result["message"]
    assert len(result["recommendations"]) == 1
    assert "CREATEROLE" in result["recommendations"][0]
    assert "scratch_database" not in result["details"]
    assert "restore_s" not in result["details"]
    assert _leftovers(pg_cluster) == []


def test_a_member_of_pg_execute_server_program_is_privileged(
    tmp_path: Path, pg_cluster: PgCluster, hostile_db: AppDb, marker: Path
) -> None:
    """Membership is privilege: the archive could SET ROLE to any role the restoring role
    is a member of. Before, the archive ran its shell command through it."""
    admin = pg_cluster.new_role("admin")
    pg_cluster.admin(f'ALTER ROLE "{admin.name}" CREATEDB')
    pg_cluster.admin(f'GRANT pg_execute_server_program TO "{admin.name}"')
    try:
        result, _ = _validate(tmp_path, hostile_db, admin)
    finally:
        pg_cluster.admin(f'DROP ROLE IF EXISTS "{admin.name}"')
    assert not marker.exists(), f"the archive ran a shell command as {marker.read_text()!r}"
    assert result["status"] == "degraded", result["message"]
    assert "pg_execute_server_program" in result["message"]
    assert _leftovers(pg_cluster) == []


def test_a_throwaway_login_the_server_refuses_restores_nothing(
    tmp_path: Path, pg_stoppable: PgCluster
) -> None:
    """pg_hba.conf lets only the app's and the admin's roles in: readiness does not fall
    back to restoring as the superuser admin; it says why, and leaves nothing behind."""
    cluster = pg_stoppable
    app_db = _app_db(cluster, NORMAL)
    db = next(app_db)
    admin = cluster.new_role("admin")
    cluster.admin(f'ALTER ROLE "{admin.name}" SUPERUSER')
    hba = cluster.datadir / "pg_hba.conf"
    hba.write_text(
        "local all all trust\n"
        f"host all {db.role.name},{admin.name} {cluster.host}/32 scram-sha-256\n"
    )
    cluster.admin("ALTER SYSTEM SET log_statement = 'ddl'")
    cluster.admin("SELECT pg_reload_conf()")
    result, _ = _validate(tmp_path, db, admin)
    assert result["status"] == "degraded", result["message"]
    assert "could not be verified safely" in result["message"]
    assert "refused the login of the throwaway role readiness_restore_" in result["message"]
    assert len(result["recommendations"]) == 1 and "pg_hba.conf" in result["recommendations"][0]
    assert "restore_s" not in result["details"]
    scratch = result["details"]["scratch_database"]
    assert scratch["dropped"] is True and scratch["role_dropped"] is True
    assert _leftovers(cluster) == []
    # the server's log has every DDL statement: the throwaway password only as a verifier
    log = (cluster.root / "server.log").read_text(errors="replace")
    created = re.findall(r"CREATE ROLE \"?readiness_restore_\w+\"? LOGIN PASSWORD '([^']*)'", log)
    assert len(created) == 1 and created[0].startswith("SCRAM-SHA-256$"), created
    app_db.close()


def _wait_for(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {within}s"
        time.sleep(0.05)


@pytest.mark.timeout(90)
def test_ctrl_c_during_a_throwaway_restore_leaves_no_role_or_database(
    tmp_path: Path, pg_cluster: PgCluster, normal_db: AppDb, admin_role: Role
) -> None:
    """Ctrl-C while pg_restore runs as the throwaway role (a pg_restore that waits 30 s
    first): the run is INTERRUPTED, and the scratch database and the role are both gone.
    The role's password was in pg_restore's environment, never in its argv or the output."""
    real_dump, real_restore = find_pg_binary("pg_dump"), find_pg_binary("pg_restore")
    assert real_dump is not None and real_restore is not None, "PostgreSQL client binaries"
    bin_dir, started = tmp_path / "pgbin", tmp_path / "pg_restore.pid"
    bin_dir.mkdir()
    (bin_dir / "pg_dump").symlink_to(real_dump)
    shim = bin_dir / "pg_restore"
    seen = tmp_path / "pg_restore.seen"
    shim.write_text(
        f'#!/bin/sh\necho "$PGPASSWORD" > {seen}\necho "$@" >> {seen}\n'
        f'echo "$PGUSER" > {started}\nsleep 30\nexec {real_restore} "$@"\n'
    )
    shim.chmod(0o755)
    inventory = _inventory(tmp_path, normal_db, admin_role, pg_bin_dir=str(bin_dir))
    args = ["validate", "-i", str(inventory), "-c", CHECK, "--format", "json"]
    validate = LiveCli(args, cwd=tmp_path, env=dict(os.environ))
    try:
        _wait_for(lambda: started.exists() and started.read_text().strip() != "", 60, "restore")
        assert started.read_text().startswith("readiness_restore_")  # restoring as it
        assert len(_leftovers(pg_cluster)) == 2  # the scratch database and the role
        validate.signal_and_time_the_exit(signal.SIGINT, within=30)
        out, err = validate.streams()
    finally:
        validate.close()
    assert validate.proc.returncode == 130, err
    assert [h["status"] for h in json.loads(out)["hosts"]] == ["interrupted"]
    assert _leftovers(pg_cluster) == []
    # its password reached pg_restore in the environment only: not in argv, not shown
    password, argv = seen.read_text().split("\n", 1)
    assert len(password) >= 32 and password not in argv and password not in out + err
