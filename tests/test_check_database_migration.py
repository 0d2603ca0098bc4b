"""The ``database_migration`` check against a real PostgreSQL 15 cluster on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from readiness.appconfig import AppConfig
from readiness.checks import database_migration as dbm
from readiness.model import CheckResult, Status
from readiness.profile import Profile, deep_merge
from readiness.registry import CheckContext, default_profile
from readiness.report import FORMATS, render
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory, run_cli, validate_check
from tests.services.ports import closed_port
from tests.services.postgres import PgCluster, Role

pytestmark = pytest.mark.postgres

CHECK = "database_migration"
REV1, REV2, REV3 = "1a2b3c4d5e6f", "9f8e7d6c5b4a", "c0ffee123456"
ALEMBIC_SCRIPTS = {
    f"migrations/versions/{REV1}_create_workflows.py": (
        f'"""create workflows\n\nRevision ID: {REV1}\nRevises:\n"""\n'
        f'revision = "{REV1}"\ndown_revision = None\n\n\ndef upgrade():\n    pass\n'
    ),
    # The newer Alembic template: annotated assignments and a trailing comment.
    f"migrations/versions/{REV2}_add_runs.py": (
        "from typing import Union\n"
        f"revision: str = '{REV2}'\n"
        f"down_revision: Union[str, None] = '{REV1}'  # create workflows\n"
    ),
    "migrations/versions/__init__.py": "",
    "migrations/env.py": "# alembic environment\n",
}
SQL_SCRIPTS = {
    "migrations/0001_create_users.sql": "CREATE TABLE users (id int);\n",
    "migrations/0002_add_email.sql": "ALTER TABLE users ADD email text;\n",
    "migrations/0003_create_orders.sql": "CREATE TABLE orders (id int);\n",
    "migrations/README.md": "not a migration\n",
}


@pytest.fixture(scope="module")
def app_role(pg_cluster: PgCluster) -> Role:
    return pg_cluster.new_role("app")


@pytest.fixture
def app_db(pg_cluster: PgCluster, app_role: Role) -> Iterator[str]:
    """A fresh database owned by the app's role (so it has CREATE on public)."""
    name = f"db_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name, owner=app_role.name)
    yield name
    pg_cluster.admin(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass(frozen=True)
class AppDb:
    """The app's database for one test: its cluster, the owning role and the name."""

    cluster: PgCluster
    role: Role
    name: str

    @property
    def dsn(self) -> str:
        return self.cluster.dsn(self.role.name, self.role.password, self.name)

    def run(self, *statements: str) -> None:
        run_as(self.cluster, self.name, self.role.name, *statements)

    def alembic_at(self, *heads: str) -> None:
        alembic_schema(self.cluster, self.name, self.role.name, *heads)


@pytest.fixture
def db(pg_cluster: PgCluster, app_role: Role, app_db: str) -> AppDb:
    return AppDb(pg_cluster, app_role, app_db)


def run_as(cluster: PgCluster, db: str, role: str | None, *statements: str) -> None:
    """Run setup SQL in ``db`` as ``role`` (so the role owns what it creates)."""
    with psycopg.connect(
        host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname=db, autocommit=True
    ) as conn:
        if role:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        for statement in statements:
            conn.execute(statement.encode())


def alembic_schema(cluster: PgCluster, db: str, role: str, *heads: str) -> None:
    run_as(
        cluster,
        db,
        role,
        "CREATE TABLE workflows (id bigint PRIMARY KEY, name text)",
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
        *(f"INSERT INTO alembic_version VALUES ('{h}')" for h in heads),  # noqa: S608 - test constants
    )


def db_settings(dsn: str) -> dict[str, Any]:
    return {"database": {"url": dsn}}


def audit(
    app_tree: Callable[..., Path],
    *,
    dsn: str | None = None,
    files: dict[str, str] | None = None,
    env: dict[str, str | None] | None = None,
    settings: dict[str, Any] | None = None,
    profile: dict[str, Any] | None = None,
) -> CheckResult:
    root = app_tree(
        settings=settings if settings is not None else db_settings(dsn or ""),
        env=env,
        files=files,
    )
    return one(audit_local(root, CHECK, profile))


# --- connecting ---------------------------------------------------------------------------


def test_good_dsn_with_every_alembic_revision_applied_is_ready(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    db.alembic_at(REV2)
    dsn = db.dsn
    result = audit(app_tree, dsn=dsn, files=ALEMBIC_SCRIPTS)
    assert result.status is Status.READY, result
    d = result.details
    assert d["connection"]["connected"] is True
    assert d["connection"]["role"] == db.role.name
    assert d["database"]["source"] == "database.url (settings file)"
    assert d["privileges"]["database"]["CONNECT"] is True
    assert d["privileges"]["schema"] == {
        "name": "public",
        "exists": True,
        "USAGE": True,
        "CREATE": True,
    }
    assert d["privileges"]["tables"]["SELECT"] == {"alembic_version": True, "workflows": True}
    assert d["migrations"]["style"] == "alembic"
    assert d["migrations"]["table"] == "public.alembic_version"
    assert d["migrations"]["pending"] == []
    assert db.role.password not in json.dumps(result.to_dict())


def test_the_check_never_writes_and_runs_in_a_read_only_transaction(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    """The role owns everything (it could write), yet nothing changes and the session is read-only."""
    db.alembic_at(REV1)
    db.run("INSERT INTO workflows VALUES (1, 'a'), (2, 'b')")
    snapshot = (
        "SELECT (SELECT count(*) FROM workflows), (SELECT array_agg(version_num) FROM alembic_version),"
        " (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)"
    )
    before = db.cluster.admin(snapshot, db=db.name)
    result = audit(
        app_tree,
        dsn=db.dsn,
        files=ALEMBIC_SCRIPTS,
    )
    assert result.status is Status.NOT_READY  # REV2 pending: nothing was "fixed" behind our back
    assert result.details["connection"]["transaction_read_only"] == "on"
    assert db.cluster.admin(snapshot, db=db.name) == before
    left = None
    for _ in range(50):  # a closed backend leaves pg_stat_activity asynchronously
        # this database only: the history store's tests also connect as 'readiness', and
        # one of them holds a backend behind a deliberately silent proxy
        left = db.cluster.admin(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'readiness' AND datname = %s",
            (db.name,),
        )
        if left == [(0,)]:
            break
        time.sleep(0.1)
    assert left == [(0,)]  # the connection was closed, not leaked


def test_env_variable_overrides_the_settings_database_url(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    db.alembic_at(REV2)
    good = db.dsn
    result = audit(
        app_tree,
        dsn=f"postgresql://nobody:nothing@127.0.0.1:{closed_port()}/nowhere",
        env={"MAHAVISHNU_DATABASE__URL": good},
        files=ALEMBIC_SCRIPTS,
    )
    assert result.status is Status.READY, result
    assert result.details["database"]["source"] == "MAHAVISHNU_DATABASE__URL (env file)"


def test_otel_storage_connection_string_is_the_fallback(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    db.alembic_at(REV2)
    dsn = db.dsn
    result = audit(
        app_tree, settings={"otel_storage": {"connection_string": dsn}}, files=ALEMBIC_SCRIPTS
    )
    assert result.status is Status.READY, result
    assert result.details["database"]["source"] == "otel_storage.connection_string (settings file)"


def test_profile_database_dsn_wins_over_the_app_settings(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    db.alembic_at(REV2)
    result = audit(
        app_tree,
        dsn=db.cluster.dsn(db.role.name, db.role.password, "not_this_one"),
        files=ALEMBIC_SCRIPTS,
        profile={"database_dsn": db.dsn},
    )
    assert result.status is Status.READY, result
    assert result.details["database"]["source"] == "profile key database_dsn"


def test_wrong_password_is_an_authentication_failure_that_never_leaks_the_password(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    wrong = "Wr0ng-Zebra-Pa55phrase"
    root = app_tree(settings=db_settings(db.cluster.dsn(db.role.name, wrong, db.name)))
    report = audit_local(root, CHECK)
    result = one(report)
    assert result.status is Status.NOT_READY
    assert f"authentication failed for database user '{db.role.name}'" in result.message
    assert result.details["connection"]["reason"] == "authentication"
    assert any("pg_hba.conf" in r for r in result.recommendations)
    for fmt in FORMATS:
        rendered = render(report, fmt)
        assert wrong not in rendered, fmt
        # table shortens messages; prometheus carries metrics only, no messages
        assert db.role.name in rendered or fmt in ("table", "prometheus"), fmt


def test_unknown_database_is_named_with_a_createdb_recommendation(
    pg_cluster: PgCluster, app_role: Role, app_tree: Callable[..., Path]
) -> None:
    dsn = pg_cluster.dsn(app_role.name, app_role.password, "no_such_db")
    result = audit(app_tree, dsn=dsn)
    assert result.status is Status.NOT_READY
    assert "database 'no_such_db' does not exist" in result.message
    assert result.details["connection"]["reason"] == "unknown_database"
    assert any(f"createdb -O {app_role.name} no_such_db" in r for r in result.recommendations)


def test_closed_port_reports_the_server_as_down(app_tree: Callable[..., Path]) -> None:
    port = closed_port()
    result = audit(app_tree, dsn=f"postgresql://app:S3cret-Value@127.0.0.1:{port}/app")
    assert result.status is Status.NOT_READY
    assert f"not listening at 127.0.0.1:{port} (connection refused)" in result.message
    assert result.details["connection"]["reason"] == "server_down"
    assert "S3cret-Value" not in json.dumps(result.to_dict())


def test_a_silent_server_times_out_after_the_configured_connect_timeout(
    app_tree: Callable[..., Path],
) -> None:
    """A socket that accepts TCP but never speaks PostgreSQL: the timeout must bound the wait."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = audit(
            app_tree,
            dsn=f"postgresql://app:pw-x@127.0.0.1:{port}/app",
            profile={"thresholds": {"db_connect_timeout_s": 2}},
        )
        elapsed = time.monotonic() - started
    assert result.status is Status.NOT_READY
    assert "timed out after 2s" in result.message
    assert result.details["connection"]["reason"] == "timeout"
    assert elapsed < 15


def test_a_server_stopped_between_audits_is_reported_down_then_ready_again(
    pg_stoppable: PgCluster, app_tree: Callable[..., Path]
) -> None:
    pg = pg_stoppable
    pg.create_role("svc", "svc-Passw0rd-x")
    pg.create_database("svc", owner="svc")
    run_as(pg, "svc", "svc", "CREATE TABLE schema_migrations (version text PRIMARY KEY)")
    dsn = pg.dsn("svc", "svc-Passw0rd-x", "svc")
    assert audit(app_tree, dsn=dsn, files={"migrations/0001_init.sql": ""}).status is (
        Status.NOT_READY
    )  # 0001 not yet recorded
    run_as(pg, "svc", "svc", "INSERT INTO schema_migrations VALUES ('0001')")
    assert audit(app_tree, dsn=dsn).status is Status.READY
    pg.stop()
    down = audit(app_tree, dsn=dsn)
    assert down.status is Status.NOT_READY
    assert down.details["connection"]["reason"] == "server_down"
    pg.start()
    again = audit(app_tree, dsn=dsn)
    assert again.status is Status.READY, again.to_dict()


# --- privileges -----------------------------------------------------------------------------


def test_role_without_create_or_select_is_not_ready_with_grant_statements(
    pg_cluster: PgCluster, app_role: Role, app_tree: Callable[..., Path]
) -> None:
    """PostgreSQL 15 no longer grants CREATE on public to everyone; the admin's table is unreadable."""
    db = f"db_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(db)  # owned by postgres, not by the app's role
    try:
        run_as(
            pg_cluster,
            db,
            None,
            "CREATE TABLE workflows (id int)",
            "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
            f"INSERT INTO alembic_version VALUES ('{REV2}')",  # noqa: S608 - test constant
            f'GRANT SELECT ON alembic_version TO "{app_role.name}"',
        )
        result = audit(
            app_tree,
            dsn=pg_cluster.dsn(app_role.name, app_role.password, db),
            files=ALEMBIC_SCRIPTS,
        )
    finally:
        pg_cluster.admin(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
    assert result.status is Status.NOT_READY
    privileges = result.details["privileges"]
    assert privileges["schema"]["USAGE"] is True
    assert privileges["schema"]["CREATE"] is False
    assert privileges["tables"]["SELECT"] == {"alembic_version": True, "workflows": False}
    problems = result.details["problems"]
    assert f"role '{app_role.name}' lacks CREATE on schema 'public'" in problems
    assert f"role '{app_role.name}' lacks SELECT on public.workflows" in problems
    assert f'GRANT CREATE ON SCHEMA "public" TO "{app_role.name}";' in result.recommendations
    assert (
        f'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "{app_role.name}";'
        in result.recommendations
    )
    assert result.details["migrations"]["pending"] == []  # migrations are fine; privileges are not


def test_listed_tables_missing_from_the_schema_are_reported(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    db.alembic_at(REV2)
    result = audit(
        app_tree,
        dsn=db.dsn,
        files=ALEMBIC_SCRIPTS,
        profile={"database_tables": ["workflows", "workflow_runs"]},
    )
    assert result.status is Status.NOT_READY
    assert "table(s) missing from schema 'public': workflow_runs" in result.message
    assert result.details["privileges"]["tables"]["SELECT"] == {
        "workflows": True,
        "workflow_runs": "missing",
    }


def test_a_missing_app_schema_is_not_ready(db: AppDb, app_tree: Callable[..., Path]) -> None:
    db.alembic_at(REV2)
    result = audit(
        app_tree,
        dsn=db.dsn,
        files=ALEMBIC_SCRIPTS,
        profile={"database_schema": "orchestration"},
    )
    assert result.status is Status.NOT_READY
    assert "schema 'orchestration' does not exist" in result.message


# --- migrations -----------------------------------------------------------------------------


def test_pending_alembic_revision_is_named(db: AppDb, app_tree: Callable[..., Path]) -> None:
    db.alembic_at(REV1)
    result = audit(
        app_tree,
        dsn=db.dsn,
        files=ALEMBIC_SCRIPTS,
    )
    assert result.status is Status.NOT_READY
    assert f"1 pending migration(s): versions/{REV2}_add_runs.py ({REV2})" in result.message
    assert result.details["migrations"]["heads"] == [REV1]
    assert any("alembic upgrade head" in r for r in result.recommendations)


def test_a_database_head_unknown_to_the_scripts_is_not_ready(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    db.alembic_at(REV3)
    result = audit(
        app_tree,
        dsn=db.dsn,
        files=ALEMBIC_SCRIPTS,
    )
    assert result.status is Status.NOT_READY
    assert f"database is at revision(s) {REV3}, unknown to the scripts" in result.message


def test_merged_alembic_branches_are_all_applied_below_the_merge_head(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    branch = dict(ALEMBIC_SCRIPTS)
    branch["migrations/versions/b1_branch.py"] = f'revision = "b1"\ndown_revision = "{REV1}"\n'
    branch["migrations/versions/m1_merge.py"] = (
        f'revision = "m1"\ndown_revision = ("{REV2}", "b1")\n'
    )
    db.alembic_at("m1")
    dsn = db.dsn
    assert audit(app_tree, dsn=dsn, files=branch).status is Status.READY
    db.run("UPDATE alembic_version SET version_num = 'b1'")
    result = audit(app_tree, dsn=dsn, files=branch)
    assert result.status is Status.NOT_READY
    assert result.details["migrations"]["pending"] == [
        f"versions/{REV2}_add_runs.py ({REV2})",
        "versions/m1_merge.py (m1)",
    ]


def test_schema_migrations_versions_missing_from_the_table_are_pending(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    db.run(
        "CREATE TABLE schema_migrations (version bigint PRIMARY KEY)",
        "INSERT INTO schema_migrations VALUES (1), (2)",  # golang-migrate style: no zero padding
    )
    dsn = db.dsn
    result = audit(app_tree, dsn=dsn, files=SQL_SCRIPTS)
    assert result.status is Status.NOT_READY
    assert result.message.endswith("1 pending migration(s): 0003_create_orders.sql")
    assert result.details["migrations"]["style"] == "sql"
    assert result.details["migrations"]["applied"] == ["1", "2"]
    db.run("INSERT INTO schema_migrations VALUES (3)")
    assert audit(app_tree, dsn=dsn, files=SQL_SCRIPTS).status is Status.READY


def test_down_scripts_are_not_migrations(db: AppDb, app_tree: Callable[..., Path]) -> None:
    """golang-migrate's up/down pairs: a down script was counted as one more pending
    migration ("2 pending migration(s): 0002_add_email.down.sql, …"), and with version 2
    applied it stayed listed among the scripts."""
    files = {
        "migrations/0001_create_users.up.sql": "CREATE TABLE users (id int);\n",
        "migrations/0001_create_users.down.sql": "DROP TABLE users;\n",
        "migrations/0002_add_email.up.sql": "ALTER TABLE users ADD email text;\n",
        "migrations/0002_add_email.down.sql": "ALTER TABLE users DROP email;\n",
    }
    db.run(
        "CREATE TABLE schema_migrations (version bigint PRIMARY KEY)",
        "INSERT INTO schema_migrations VALUES (1)",
    )
    result = audit(app_tree, dsn=db.dsn, files=files)
    assert result.status is Status.NOT_READY
    assert result.message.endswith("1 pending migration(s): 0002_add_email.up.sql")
    db.run("INSERT INTO schema_migrations VALUES (2)")
    assert audit(app_tree, dsn=db.dsn, files=files).status is Status.READY


def test_a_named_migrations_table_in_the_app_schema_is_used(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    db.run(
        "CREATE SCHEMA app",
        "CREATE TABLE app.applied (version text PRIMARY KEY)",
        "INSERT INTO app.applied VALUES ('0001'), ('0002'), ('0003')",
    )
    result = audit(
        app_tree,
        dsn=db.dsn,
        files=SQL_SCRIPTS,
        profile={"migrations_table": "app.applied", "database_schema": "app"},
    )
    assert result.status is Status.READY, result
    assert result.details["migrations"]["table"] == "app.applied"


def test_without_a_migrations_table_every_script_is_pending(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    result = audit(app_tree, dsn=db.dsn, files=SQL_SCRIPTS)
    assert result.status is Status.NOT_READY
    assert "3 pending migration(s) (the database has no migrations table)" in result.message
    assert result.details["migrations"]["table"] is None


def test_missing_migrations_dir_is_degraded_with_a_recommendation(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    result = audit(app_tree, dsn=db.dsn)
    assert result.status is Status.DEGRADED
    assert "migrations directory" in result.message
    assert "does not exist" in result.message
    assert result.details["migrations"]["exists"] is False
    assert result.details["connection"]["connected"] is True
    assert any(
        r.startswith("Create database migration scripts if needed") for r in result.recommendations
    )


# --- the connection string -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("postgresql://app:Hidden-Pw-9@:5432/app", "no host"),
        ("mysql://app:Hidden-Pw-9@127.0.0.1:3306/app", "scheme 'mysql'"),
        ("postgresql://app:Hidden-Pw-9@127.0.0.1:notaport/app", "port 'notaport' is not a number"),
        ("postgresql://app:Hidden-Pw-9@127.0.0.1:5432/", "no database name"),
    ],
)
def test_malformed_dsn_is_not_ready_and_hides_the_password(
    app_tree: Callable[..., Path], dsn: str, problem: str
) -> None:
    root = app_tree(settings=db_settings(dsn))
    report = audit_local(root, CHECK)
    result = one(report)
    assert result.status is Status.NOT_READY
    assert (
        "database connection string from database.url (settings file) is not valid"
        in result.message
    )
    assert problem in result.message
    assert "connection" not in result.details  # never tried to connect
    for fmt in FORMATS:
        assert "Hidden-Pw-9" not in render(report, fmt), fmt


def test_no_connection_string_at_all_is_not_ready(app_tree: Callable[..., Path]) -> None:
    result = audit(app_tree, settings={})
    assert result.status is Status.NOT_READY
    assert "no database connection string configured" in result.message
    assert any("MAHAVISHNU_DATABASE__URL" in r for r in result.recommendations)


# --- pure logic: fleet correctness, missing driver, parsing -----------------------------------


def context(
    *, settings: dict[str, Any], profile: dict[str, Any] | None = None, is_local: bool
) -> CheckContext:
    return CheckContext(
        host="db-host-1",
        profile=Profile(deep_merge(default_profile(), profile or {})),
        facts={dbm.DIR_FACT: {"exists": False, "path": "/opt/mahavishnu/migrations"}},
        app=AppConfig(settings=settings, env_prefix="MAHAVISHNU_"),
        is_local=is_local,
    )


def test_loopback_dsn_on_a_remote_host_is_degraded_without_connecting() -> None:
    """The controller's 127.0.0.1 is not the host's: the check must not even try to connect."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as trap:
        trap.bind(("127.0.0.1", 0))
        trap.listen(8)
        trap.settimeout(0.3)
        port = trap.getsockname()[1]
        ctx = context(
            settings=db_settings(f"postgresql://app:Loop-Pw-1@localhost:{port}/app"),
            is_local=False,
        )
        outcome = dbm.evaluate(ctx)
        with pytest.raises(TimeoutError):
            trap.accept()  # nobody knocked
    assert outcome.status is Status.DEGRADED
    assert outcome.message.startswith(
        "Database has 2 issue(s) that should be addressed: cannot determine from the controller"
    )
    assert any("Set database_dsn in the profile" in r for r in outcome.recommendations)
    assert "connection" not in outcome.details
    assert "Loop-Pw-1" in ctx.secrets


@pytest.mark.parametrize("host", ["127.0.0.2", "[::1]", "localhost", "%2Frun%2Fpostgresql"])
def test_every_host_local_address_counts_as_loopback(host: str) -> None:
    ctx = context(settings=db_settings(f"postgresql://app:pw@{host}:5432/app"), is_local=False)
    outcome = dbm.evaluate(ctx)
    assert "cannot determine from the controller" in outcome.message


def test_profile_dsn_on_a_remote_host_is_trusted_and_connects(
    pg_cluster: PgCluster, app_role: Role, app_db: str
) -> None:
    """database_dsn is written from the controller's point of view (e.g. an SSH tunnel)."""
    alembic_schema(pg_cluster, app_db, app_role.name, REV1)
    ctx = context(
        settings=db_settings("postgresql://app:pw@127.0.0.1:5432/app"),
        profile={"database_dsn": pg_cluster.dsn(app_role.name, app_role.password, app_db)},
        is_local=False,
    )
    outcome = dbm.evaluate(ctx)
    assert outcome.details["connection"]["connected"] is True
    assert outcome.status is Status.DEGRADED  # only the migrations dir is missing
    assert app_role.password in ctx.secrets


def test_missing_psycopg_is_reported_as_undeterminable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` raise ImportError
    outcome = dbm.evaluate(
        context(settings=db_settings("postgresql://app:pw@127.0.0.1:5432/app"), is_local=True)
    )
    assert outcome.status is Status.DEGRADED
    assert "psycopg is not installed on the controller" in outcome.message
    assert "pip install 'psycopg[binary]>=3.2,<4'" in " ".join(outcome.recommendations)


def test_alembic_revision_lines_are_parsed_without_executing_the_script() -> None:
    text = (
        "import os\nos.system('false')\n"
        'revision: str = "abc"  # the id\n'
        "down_revision: Union[str, Sequence[str], None] = ('x', 'y')\n"
    )
    assert dbm._parse_alembic("versions/abc.py", text) == dbm.Script(
        "versions/abc.py", "abc", ("x", "y")
    )
    assert dbm._parse_alembic("versions/none.py", "down_revision = None\n") is None


def test_a_huge_version_value_is_read_only_up_to_its_head(
    db: AppDb, app_tree: Callable[..., Path]
) -> None:
    """The versions table is the app's (its user can write anything there): a 20 MB
    version_num was read whole by the controller (PostgreSQL allows 1 GB per value, 100,000
    rows were read). Only the first MAX_VERSION_CHARS characters are, and such a value
    matches no script."""
    db.run(
        "CREATE TABLE schema_migrations (version text)",
        "INSERT INTO schema_migrations VALUES ('1'), (repeat('9', 20000000))",
    )
    result = audit(app_tree, dsn=db.dsn, files=SQL_SCRIPTS)
    applied = result.details["migrations"]["applied"]
    assert max(len(v) for v in applied) <= dbm.MAX_VERSION_CHARS
    assert result.status is Status.NOT_READY  # 0002 and 0003 are pending


def test_golang_migrate_records_only_the_current_version(
    db: AppDb, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """golang-migrate's schema_migrations holds one row, the version the schema is at, and a
    `dirty` flag: a database at version 3 with scripts 1-3 was NOT_READY "2 pending
    migration(s): 0001_create_users.sql, 0002_add_email.sql". A dirty version (a migration
    that failed part-way) is NOT_READY; a newer script is pending."""
    db.run(
        "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
        "INSERT INTO schema_migrations VALUES (3, false)",
    )
    root = app_tree(settings=db_settings(db.dsn), files=SQL_SCRIPTS)
    inv = local_inventory(tmp_path / "inv.yml", root)

    def validate() -> dict[str, Any]:
        res = run_cli("validate", "-i", str(inv), "-c", CHECK, "--format", "json")
        assert db.role.password not in res.stdout + res.stderr
        result: dict[str, Any] = json.loads(res.stdout)["hosts"][0]["checks"][0]
        return result

    result = validate()
    assert result["status"] == "ready", result["message"]
    assert result["details"]["migrations"]["current_version"] == 3
    assert result["details"]["migrations"]["pending"] == []
    db.run("UPDATE schema_migrations SET version = 2, dirty = true")
    result = validate()
    assert result["status"] == "not_ready"
    assert (
        "migration 2 did not complete: public.schema_migrations is marked dirty"
        in (result["message"])
    )
    assert result["details"]["migrations"]["pending"] == ["0003_create_orders.sql"]


def test_no_connection_string_names_the_variable_the_app_reads(
    app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """With env_prefix MHV_ the recommendation said "or MAHAVISHNU_DATABASE__URL", a
    variable the app never reads."""
    root = app_tree()
    host = {"app_root": str(root), "env_prefix": "MHV_"}
    inv = tmp_path / "inv.yml"
    inv.write_text(
        json.dumps(
            {"all": {"hosts": {"local": {"ansible_connection": "local", "readiness": host}}}}
        )
    )
    result = validate_check(inv, CHECK)
    assert result["status"] == "not_ready"
    assert "or MHV_DATABASE__URL in the service environment" in result["recommendations"][0]


def test_a_merge_whose_parents_black_wrote_one_per_line_is_read(
    db: AppDb, app_tree: Callable[..., Path], tmp_path: Path
) -> None:
    """`alembic merge` then `black`: down_revision = (\\n "…",\\n "…",\\n) on several lines
    was read as no parents, so with the database at the merge head both merged branches
    were NOT_READY "2 pending migration(s)"."""
    branch = dict(ALEMBIC_SCRIPTS)
    branch["migrations/versions/b1_branch.py"] = f'revision = "b1"\ndown_revision = "{REV1}"\n'
    branch["migrations/versions/m1_merge.py"] = (
        'revision: str = "m1"\n'
        "down_revision: Union[str, Sequence[str], None] = (\n"
        f'    "{REV2}",  # add runs\n'
        '    "b1",\n'
        ")\n"
        "branch_labels = None\n"
    )
    db.alembic_at("m1")
    root = app_tree(settings=db_settings(db.dsn), files=branch)
    inv = local_inventory(tmp_path / "inv.yml", root)
    result = validate_check(inv, CHECK)
    assert result["status"] == "ready", result["message"]
    assert result["details"]["migrations"]["pending"] == []
