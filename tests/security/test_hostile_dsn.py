"""A hostile host's DSN never gets the controller's PostgreSQL credentials (#18 item 6).

The host controls its settings file, so it chooses the DSN the controller connects with.
A fake PostgreSQL server on loopback records the password each client sends, while the
controller has ``PGPASSWORD``, a ``~/.pgpass`` (in a temporary ``HOME``) and a service
file with a password. DSNs are parsed by libpq's own rules (#10): unix-socket and
multi-host strings are valid and reach the real PostgreSQL cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import pq, sql

from readiness.checks._common import parse_dsn
from readiness.checks._postgres import NO_PASSFILE, Target, clean_env, connect_args
from readiness.model import Status
from tests.services.apps import audit_local, one
from tests.services.cli import local_inventory
from tests.services.fakepg import FakePostgres
from tests.services.ports import closed_port
from tests.services.postgres import PgCluster, Role

pytestmark = pytest.mark.postgres

CHECK = "database_migration"
BIN = Path(sys.executable).parent
PSQL = Path("/usr/lib/postgresql/15/bin/psql")
ENV_SECRET = "Controller-PGPASSWORD-4711"
PGPASS_SECRET = "Controller-pgpass-4712"
SERVICE_SECRET = "Controller-service-4713"
CONTROLLER_SECRETS = (ENV_SECRET, PGPASS_SECRET, SERVICE_SECRET)


@pytest.fixture
def fake_postgres() -> Iterator[FakePostgres]:
    server = FakePostgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def controller_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The controller user's own libpq credentials: env, ~/.pgpass and a service file."""
    home = tmp_path / "home"
    home.mkdir()
    pgpass = home / ".pgpass"
    pgpass.write_text(f"*:*:*:*:{PGPASS_SECRET}\n")
    pgpass.chmod(0o600)
    service_file = tmp_path / "pg_service.conf"
    service_file.write_text(f"[prod]\npassword={SERVICE_SECRET}\nuser=app\n")
    env = {
        "HOME": str(home),
        "PGPASSWORD": ENV_SECRET,
        "PGSERVICE": "prod",
        "PGSERVICEFILE": str(service_file),
        "PGUSER": "controller-user",
        "PGSSLCERT": str(tmp_path / "controller.crt"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def settings_with(dsn: str) -> dict[str, Any]:
    return {"database": {"url": dsn}}


def no_controller_secret_sent(server: FakePostgres) -> None:
    for password in server.passwords:
        assert password not in CONTROLLER_SECRETS


# --- item 6: exactly the DSN's own credentials ---------------------------------------------


def test_a_host_dsn_without_password_sends_none_of_the_controllers(
    fake_postgres: FakePostgres,
    controller_credentials: dict[str, str],
    app_tree: Callable[..., Path],
) -> None:
    dsn = f"postgresql://app@127.0.0.1:{fake_postgres.port}/app"
    result = one(audit_local(app_tree(settings=settings_with(dsn)), CHECK))
    assert fake_postgres.attempts, "the controller must still try the host's own database"
    assert fake_postgres.passwords == []  # libpq had no password to send
    no_controller_secret_sent(fake_postgres)
    assert fake_postgres.attempts[0].params["user"] == "app"  # not PGUSER or the service's
    assert result.status is Status.NOT_READY
    assert result.details["connection"]["reason"] == "authentication"
    assert "authentication failed for database user 'app'" in result.message


def test_a_host_dsn_with_a_password_sends_exactly_that_password(
    fake_postgres: FakePostgres,
    controller_credentials: dict[str, str],
    app_tree: Callable[..., Path],
) -> None:
    dsn = f"postgresql://app:Host-Own-Pw-1@127.0.0.1:{fake_postgres.port}/app"
    result = one(audit_local(app_tree(settings=settings_with(dsn)), CHECK))
    assert fake_postgres.passwords == ["Host-Own-Pw-1"]
    assert result.details["connection"]["reason"] == "authentication"
    assert "Host-Own-Pw-1" not in json.dumps(result.to_dict())


def test_the_command_line_audit_sends_no_controller_password(
    fake_postgres: FakePostgres,
    controller_credentials: dict[str, str],
    app_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """Through the command a user types, with the controller's credentials in its env."""
    root = app_tree(settings=settings_with(f"postgresql://app@127.0.0.1:{fake_postgres.port}/app"))
    inv = tmp_path / "inv.yml"
    local_inventory(inv, root)
    res = subprocess.run(
        [str(BIN / "readiness"), "validate", "-i", str(inv), "-c", CHECK, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=os.environ.copy(),
        check=False,
        cwd=tmp_path,
    )
    data = json.loads(res.stdout)
    check = data["hosts"][0]["checks"][0]
    assert check["details"]["connection"]["reason"] == "authentication", check
    assert fake_postgres.attempts
    assert fake_postgres.passwords == []
    for secret in CONTROLLER_SECRETS:
        assert secret not in res.stdout + res.stderr


def _psql(dsn: str) -> subprocess.CompletedProcess[str]:
    """The reference: PostgreSQL's own psql, with the controller's environment."""
    return subprocess.run(
        [str(PSQL), dsn, "-Atc", "select 1"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        env=os.environ.copy(),
        check=False,
    )


@pytest.mark.skipif(not PSQL.exists(), reason="needs PostgreSQL's psql")
def test_the_controllers_pgservice_entry_fills_nothing_of_a_host_dsn(
    controller_credentials: dict[str, str],
    app_tree: Callable[..., Path],
    tmp_path: Path,
) -> None:
    """``PGSERVICE=prod`` on the controller: libpq fills every option a connection string
    leaves unset from the service entry. psql shows it (the differential's reference):
    a host DSN naming a unix socket directory is connected to the entry's hostaddr/port,
    with the entry's password, and the entry's ``sslmode=disable`` turns TLS off. Through
    ``readiness validate``, the entry's server is never contacted and TLS is still asked
    for (libpq's default, ``prefer``)."""
    named, elsewhere = FakePostgres(), FakePostgres()
    try:
        service_file = Path(controller_credentials["PGSERVICEFILE"])
        service_file.write_text(
            f"[prod]\nhostaddr=127.0.0.1\nport={elsewhere.port}\npassword={SERVICE_SECRET}\n"
            "user=app\nsslmode=disable\n"
        )
        socket_dsn = f"postgresql:///app?host={tmp_path / 'no-socket-here'}&user=app"
        tcp_dsn = f"postgresql://app@127.0.0.1:{named.port}/app"
        # the reference: libpq takes the entry's address, password and sslmode
        assert _psql(socket_dsn).returncode != 0
        assert [a.password for a in elsewhere.attempts] == [SERVICE_SECRET]
        assert _psql(tcp_dsn).returncode != 0
        assert [a.ssl_requested for a in named.attempts] == [False]
        elsewhere.attempts.clear()
        named.attempts.clear()
        for dsn in (socket_dsn, tcp_dsn):
            inv = local_inventory(tmp_path / "inv.yml", app_tree(settings=settings_with(dsn)))
            res = subprocess.run(
                [str(BIN / "readiness"), "validate", "-i", str(inv), "-c", CHECK, "--json"],
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
                env=os.environ.copy(),
                check=False,
                cwd=tmp_path,
            )
            assert res.returncode in (0, 1), res.stderr
            for secret in CONTROLLER_SECRETS:
                assert secret not in res.stdout + res.stderr
        assert elsewhere.attempts == []  # a server the host never named
        assert [a.ssl_requested for a in named.attempts] == [True]  # TLS still asked for
        assert named.passwords == []
    finally:
        named.stop()
        elsewhere.stop()


def test_a_host_dsn_naming_a_controller_password_file_or_service_is_refused(
    fake_postgres: FakePostgres,
    controller_credentials: dict[str, str],
    app_tree: Callable[..., Path],
) -> None:
    dsn = (
        f"host=127.0.0.1 port={fake_postgres.port} dbname=app user=app "
        f"passfile={controller_credentials['HOME']}/.pgpass service=prod sslkeylogfile=/tmp/k"
    )
    result = one(audit_local(app_tree(settings=settings_with(dsn)), CHECK))
    assert fake_postgres.attempts == []  # refused before connecting
    assert result.status is Status.DEGRADED
    assert "sets passfile, service, sslkeylogfile" in result.message
    assert "refuses it and does not connect" in result.message
    assert result.details["database"]["refused_keys"] == ["passfile", "service", "sslkeylogfile"]


def test_a_host_dsn_may_ask_for_the_system_trust_store_but_not_a_controller_file(
    fake_postgres: FakePostgres, app_tree: Callable[..., Path]
) -> None:
    base = f"postgresql://app@127.0.0.1:{fake_postgres.port}/app"
    system = one(
        audit_local(
            app_tree(settings=settings_with(base + "?sslmode=verify-full&sslrootcert=system")),
            CHECK,
        )
    )
    assert "refused_keys" not in system.details["database"]
    assert system.details["connection"]["connected"] is False  # tried: the fake has no TLS
    path = one(
        audit_local(app_tree(settings=settings_with(base + "?sslrootcert=/dev/zero")), CHECK)
    )
    assert path.details["database"]["refused_keys"] == ["sslrootcert"]
    assert "connection" not in path.details
    assert fake_postgres.attempts == []


def test_a_host_dsn_pointing_hostaddr_elsewhere_is_refused_never_connected(
    fake_postgres: FakePostgres,
    controller_credentials: dict[str, str],
    app_tree: Callable[..., Path],
) -> None:
    """``host`` names some server but libpq would connect to ``hostaddr``: here the fake
    server, which before this fix received the controller's PGPASSWORD."""
    dsn = f"host=db.internal hostaddr=127.0.0.1 port={fake_postgres.port} dbname=app user=app"
    result = one(audit_local(app_tree(settings=settings_with(dsn)), CHECK))
    assert fake_postgres.attempts == []
    assert result.status is Status.DEGRADED
    assert "points at 127.0.0.1:" in result.message
    assert "(hostaddr of db.internal)" in result.message
    assert "never where the host points" in result.message
    assert "database_dsn" in " ".join(result.recommendations)


def test_a_host_dsn_naming_another_server_is_refused(
    fake_postgres: FakePostgres, app_tree: Callable[..., Path]
) -> None:
    dsn = f"postgresql://app@db.internal:{fake_postgres.port}/app"
    result = one(audit_local(app_tree(settings=settings_with(dsn)), CHECK))
    assert result.status is Status.DEGRADED
    assert f"points at db.internal:{fake_postgres.port}" in result.message
    assert fake_postgres.attempts == []


def test_clean_connection_arguments_pin_every_controller_fallback(
    controller_credentials: dict[str, str],
) -> None:
    dsn, _ = parse_dsn("postgresql://app@127.0.0.1:5432/app")
    assert dsn is not None
    args = connect_args(
        Target(dsn, "postgresql://app@127.0.0.1:5432/app", "settings", from_app=True),
        timeout=3,
        application_name="t",
    )
    assert args["password"] == ""
    assert args["passfile"] == NO_PASSFILE
    assert args["sslcertmode"] == "disable"
    assert args["gssdelegation"] == "0"
    assert args["user"] == "app"
    assert args["sslcert"] == ""  # PGSSLCERT is set: pinned to libpq's default
    env = clean_env(args)
    # PGSERVICE is set: every other option is at libpq's built-in default, as a variable too
    defaults = {
        o.envvar.decode(): o.compiled.decode()
        for o in pq.Conninfo.get_defaults()
        if o.envvar and o.compiled is not None
    }
    assert args["sslmode"] == "prefer" and env["PGSSLMODE"] == "prefer"
    assert not {k for k in env if k.startswith("PG") and env[k] != defaults.get(k)} - {
        "PGHOST",
        "PGPORT",
        "PGDATABASE",
        "PGUSER",
        "PGPASSFILE",
        "PGSSLCERTMODE",
        "PGGSSENCMODE",
        "PGGSSDELEGATION",
        "PGREQUIREAUTH",
        "PGCONNECT_TIMEOUT",
        "PGAPPNAME",
    }
    assert env["PGPASSFILE"] == NO_PASSFILE
    assert "PGPASSWORD" not in env
    assert "PGSERVICE" not in env


# --- #10: libpq's own parser ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("postgresql:///mahavishnu?host=/var/run/postgresql", [("/var/run/postgresql", 5432)]),
        ("postgresql://u:p@a:1,b:2/db", [("a", 1), ("b", 2)]),
        ("host=a,b port=7 dbname=db", [("a", 7), ("b", 7)]),
        ("postgresql://u@[::1]:5433/db", [("::1", 5433)]),
    ],
)
def test_libpq_connection_strings_parse(text: str, hosts: list[tuple[str, int]]) -> None:
    dsn, problem = parse_dsn(text)
    assert problem is None
    assert dsn is not None
    assert [(e.host, e.port) for e in dsn.endpoints] == hosts


def test_ipv6_and_socket_targets_render_unambiguously() -> None:
    v6, _ = parse_dsn("postgresql://u:pw@[::1]:5433/db")
    sock, _ = parse_dsn("postgresql:///mahavishnu?host=/var/run/postgresql")
    assert v6 is not None and sock is not None
    assert v6.safe() == "postgresql://u@[::1]:5433/db"
    assert sock.safe() == "postgresql:///mahavishnu?host=/var/run/postgresql&port=5432"


def test_an_at_sign_in_a_password_is_refused_without_leaking_any_part(
    app_tree: Callable[..., Path],
) -> None:
    dsn = "postgresql://app:Sec@ret-Tail-99@127.0.0.1:5432/app"
    result = one(audit_local(app_tree(settings=settings_with(dsn)), CHECK))
    assert result.status is Status.NOT_READY
    assert "unencoded '@'" in result.message
    assert "%40" in result.message
    text = json.dumps(result.to_dict())
    assert "Sec@ret" not in text
    assert "ret-Tail-99" not in text


@pytest.fixture
def socket_db(pg_cluster: PgCluster) -> Iterator[tuple[Role, str]]:
    role = pg_cluster.new_role("sock")
    name = f"db_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name, owner=role.name)
    yield role, name
    pg_cluster.admin(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_unix_socket_dsn_is_ready_against_the_real_postgresql(
    pg_cluster: PgCluster, socket_db: tuple[Role, str], app_tree: Callable[..., Path]
) -> None:
    role, db = socket_db
    dsn = f"postgresql://{role.name}@/{db}?host={pg_cluster.socket_dir}&port={pg_cluster.port}"
    files = {
        "migrations/0001_init.sql": "CREATE TABLE t (id int);\n",
    }
    with pg_cluster_conn(pg_cluster, db, role.name) as conn:
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('0001')")
    result = one(audit_local(app_tree(settings=settings_with(dsn), files=files), CHECK))
    assert result.status is Status.READY, result
    assert result.details["connection"]["connected"] is True
    assert result.details["database"]["target"].endswith(
        f"?host={pg_cluster.socket_dir}&port={pg_cluster.port}"
    )


def test_a_multi_host_dsn_connects_to_the_first_server_that_answers(
    pg_cluster: PgCluster, socket_db: tuple[Role, str], app_tree: Callable[..., Path]
) -> None:
    role, db = socket_db
    dsn = f"postgresql://{role.name}:{role.password}@127.0.0.1:{closed_port()},127.0.0.1:{pg_cluster.port}/{db}"
    with pg_cluster_conn(pg_cluster, db, role.name) as conn:
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('0001')")
    files = {"migrations/0001_init.sql": "CREATE TABLE t (id int);\n"}
    result = one(audit_local(app_tree(settings=settings_with(dsn), files=files), CHECK))
    assert result.status is Status.READY, result
    assert role.password not in json.dumps(result.to_dict())


def pg_cluster_conn(cluster: PgCluster, db: str, role: str) -> Any:
    import psycopg

    conn = psycopg.connect(
        host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname=db, autocommit=True
    )
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
    return conn


# --- through a remote host's tunnel ------------------------------------------------------------


@pytest.fixture(scope="module")
def remote_host() -> Iterator[Any]:
    from readiness.loopback import start_fleet

    with start_fleet(1) as fleet:
        yield fleet


def test_a_remote_hosts_dsn_through_its_tunnel_gets_no_controller_password(
    remote_host: Any,
    fake_postgres: FakePostgres,
    controller_credentials: dict[str, str],
    tmp_path: Path,
) -> None:
    """The host's 127.0.0.1 is reached through its SSH connection: still no PGPASSWORD."""
    from readiness import validate
    from readiness.runner import RunOptions
    from tests.services.apps import write_app

    host = remote_host.hosts[0]
    write_app(
        host.app_root,
        settings=settings_with(f"postgresql://app@127.0.0.1:{fake_postgres.port}/app"),
    )
    options = RunOptions(
        known_hosts=str(remote_host.known_hosts), ssh_config="", connect_timeout=5, progress=False
    )
    report = validate(host.name, [CHECK], inventory=str(remote_host.inventory), options=options)
    result = report.hosts[0].results[0]
    assert result.details["database"]["access"] == f"through an SSH tunnel via {host.name}"
    assert fake_postgres.attempts, "the tunnelled connection reached the (fake) database"
    assert fake_postgres.passwords == []
    assert result.details["connection"]["reason"] == "authentication"
